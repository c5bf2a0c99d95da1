import re

import pytest

from watchdog.model import Endpoint, FdOutcome, FdSample, Msgr, Outcome, Role, parse_endpoint


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v2:10.0.0.5:6800/1234", Endpoint("10.0.0.5", 6800, Msgr.V2)),
        ("v1:10.0.0.5:6801", Endpoint("10.0.0.5", 6801, Msgr.V1)),
        ("127.0.0.1:6800", Endpoint("127.0.0.1", 6800, Msgr.ANY)),
        ("v2:[::1]:6800/0", Endpoint("::1", 6800, Msgr.V2)),
        ("[fe80::1]:7000", Endpoint("fe80::1", 7000)),
    ],
)
def test_ceph_address_strings_parse_into_endpoints(text, expected):
    assert parse_endpoint(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.0.0.5", "'10.0.0.5' is not HOST:PORT (IPv6 hosts go in brackets)"),
        ("osd-host:6800", "'osd-host:6800': 'osd-host' is not an IP address"),
        ("10.0.0.5:0", "'10.0.0.5:0': port must be 1-65535"),
        ("10.0.0.5:70000", "'10.0.0.5:70000': port must be 1-65535"),
        ("::1:6800", "'::1:6800': an IPv6 address goes in brackets, e.g. [::1]:6800"),
    ],
)
def test_bad_addresses_are_rejected_with_the_reason(text, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        parse_endpoint(text)


def test_endpoint_address_round_trips_through_the_parser():
    endpoint = Endpoint("::1", 6800, Msgr.V2, Role.PUBLIC)
    assert endpoint.address == "v2:[::1]:6800"
    assert parse_endpoint(endpoint.address, Role.PUBLIC) == endpoint


def test_local_errors_are_never_evidence_against_an_osd():
    assert not Outcome.LOCAL_ERROR.is_failure
    assert not Outcome.OK.is_failure
    assert all(o.is_failure for o in Outcome if o not in {Outcome.OK, Outcome.LOCAL_ERROR})


def test_fd_ratio_is_unknown_when_the_process_could_not_be_read():
    assert FdSample(FdOutcome.ACCESS_DENIED).ratio is None
    assert FdSample(FdOutcome.OK, open_fds=50, limit=200).ratio == 0.25
