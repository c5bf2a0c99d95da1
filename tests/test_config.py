import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchdog.config import Config, load_config, parse_config
from watchdog.errors import ConfigError
from watchdog.model import Role

FIXTURES = Path(__file__).parent / "fixtures" / "config"

# One invalid file per rule, and the exact problems it must produce.
INVALID = {
    "unknown-key.toml": ["loop.intervall_seconds: unknown key (did you mean interval_seconds?)"],
    "negative-interval.toml": ["loop.interval_seconds: must be greater than 0, got -1.0"],
    "timeout-too-long.toml": [
        (
            "loop: probe_timeout_seconds must be at most 5x interval_seconds, "
            "or a stuck probe would hide several cycles"
        )
    ],
    "web-hostname.toml": ["web.listen_address: 'localhost:9729': 'localhost' is not an IP address"],
    "static-bad-name.toml": [
        "discovery.static_targets[0].daemon: 'mon.a' is not an OSD name like 'osd.12'"
    ],
    "static-no-endpoints.toml": [
        ("discovery.static_targets[0].endpoints: needs at least 1 item, got 0")
    ],
    "static-bad-role.toml": [
        (
            "discovery.static_targets[0].endpoints[0].role: "
            "must be one of 'public', 'cluster', 'hb_front', 'hb_back' or 'unknown', "
            "got a string 'client'"
        )
    ],
    "static-duplicate.toml": ["discovery: static target names must be unique: osd.1"],
    "zombie-before-suspect.toml": [
        "assess: zombie_after_failures must be >= suspect_after_failures"
    ],
    "clear-above-pressure.toml": [
        "assess: fd_pressure_clear_ratio must be below fd_pressure_ratio"
    ],
    "ratio-above-one.toml": ["assess.fd_pressure_ratio: must be at most 1, got 1.5"],
    "unfence-without-fence.toml": ["act: steps: unfence needs a fence before it"],
    "webhook-without-url.toml": ["act: steps: webhook needs webhook_url"],
    # Any duration is at most an hour; the mgr module refuses a longer report interval.
    "keepalive-too-long.toml": ["report.keepalive_seconds: must be at most 3600, got 7200.0"],
    "not-toml.toml": [
        "not valid TOML: Expected ']' at the end of a table declaration (at line 1, column 6)"
    ],
    "several-problems.toml": [
        "loop.interval_seconds: expected a number, got a string 'fast'",
        "loop.max_in_flight: must be at least 1, got 0",
        "web.port: unknown key",
    ],
}


@pytest.mark.parametrize(("name", "problems"), INVALID.items())
def test_each_invalid_file_is_rejected_with_its_exact_problems(name, problems):
    with pytest.raises(ConfigError) as caught:
        load_config(FIXTURES / name)
    assert caught.value.problems == problems
    assert str(caught.value).startswith(f"invalid configuration in {FIXTURES / name}:\n  - ")


def test_every_invalid_fixture_has_an_expectation():
    on_disk = {p.name for p in FIXTURES.glob("*.toml")} - {"valid-full.toml"}
    assert on_disk == set(INVALID)


def test_a_full_valid_file_loads_with_its_values():
    config = load_config(FIXTURES / "valid-full.toml")
    assert config.loop.interval_seconds == 2.0
    assert config.web.host_port == ("::1", 9729)
    (static,) = config.discovery.static_targets
    endpoints = [e.to_endpoint() for e in static.endpoints]
    assert [e.role for e in endpoints] == [Role.PUBLIC, Role.PUBLIC, Role.HB_FRONT]
    assert endpoints[0].address == "v2:10.0.0.5:6800"


def test_no_file_means_defaults_that_suit_a_standard_ceph_host():
    config = load_config(None)
    assert config == Config()
    assert config.discovery.process_names == ["ceph-osd"]
    assert config.web.listen_address == "127.0.0.1:9729"
    assert config.act.dry_run is True
    assert config.stall_after_seconds == 4.0


def test_a_missing_file_is_a_config_error_naming_it(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "absent.toml")
    assert caught.value.problems[0].startswith("cannot read file: [Errno 2]")


def test_config_is_frozen():
    config = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.loop.interval_seconds = 5  # type: ignore[misc]


toml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
sections = st.sampled_from(["loop", "web", "discovery", "assess", "act", "bogus"])


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(sections, st.dictionaries(st.text(max_size=24), toml_values, max_size=4)))
def test_arbitrary_input_is_either_a_config_or_one_config_error(data):
    try:
        parse_config(data)
    except ConfigError as exc:
        problems = exc.problems
    else:
        return
    assert problems
    assert all(": " in problem for problem in problems)


def test_the_shipped_example_sets_every_key_to_its_default():
    """examples/osd-watchdog.toml is the config reference: it must not drift from the code."""
    example = Path(__file__).resolve().parents[1] / "examples" / "osd-watchdog.toml"
    assert load_config(example) == Config()
    # Every key of every section appears in it (commented out where its default is computed).
    text = example.read_text()
    for section in dataclasses.fields(Config):
        name = section.name
        for key in (f.name for f in dataclasses.fields(getattr(Config(), name))):
            written = (f"\n{key} = ", f"\n# {key} = ", f"\n# [[{name}.{key}]]")
            assert any(form in text for form in written), f"{name}.{key}"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_is_either_a_config_or_one_config_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "watchdog.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_config(path)
    except ConfigError as exc:
        problems = exc.problems
    else:
        return
    assert all(problem.strip() for problem in problems)


def test_the_cephadm_example_is_valid_and_restarts_the_osds_own_unit():
    example = Path(__file__).resolve().parents[1] / "examples" / "cephadm.toml"
    config = load_config(example)
    assert config.act.restart_unit_template == "{unit}"
    assert not config.act.dry_run  # it says so, and how to watch the dry run first
    assert "dry_run = false" in example.read_text()
