"""/metrics behind TLS and basic auth, from an exporter-toolkit web config file."""

import base64
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

import bcrypt
import pytest
import requests
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.conftest import require_tool
from watchdog.cli import app
from watchdog.config import parse_config
from watchdog.errors import ConfigError
from watchdog.export import Health, SnapshotMetrics, serve
from watchdog.webauth import load_web_security, web_security

PASSWORD = "correct horse"  # noqa: S105 - the test's own throw-away credential


@pytest.fixture
def web_config(tmp_path):
    openssl = require_tool("openssl")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(tmp_path / "tls.key"), "-out", str(tmp_path / "tls.crt"),
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    path = tmp_path / "web.yml"
    path.write_text(
        "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n"
        f"basic_auth_users:\n  prometheus: '{hashed}'\n"
    )
    return path


@pytest.fixture
def server(web_config):
    security = load_web_security(web_config)
    httpd = serve(SnapshotMetrics(), Health(lambda: None, 60), ("127.0.0.1", 0), security)
    yield f"https://127.0.0.1:{httpd.server_address[1]}", web_config.parent / "tls.crt", security
    httpd.shutdown()
    httpd.server_close()


def test_metrics_need_tls_and_the_right_password(server):
    url, ca, _ = server
    ok = requests.get(f"{url}/metrics", auth=("prometheus", PASSWORD), verify=ca, timeout=10)
    assert ok.status_code == 200
    assert "osd_watchdog_build_info" in ok.text
    for auth in (None, ("prometheus", "wrong"), ("someone", PASSWORD)):
        denied = requests.get(f"{url}/metrics", auth=auth, verify=ca, timeout=10)
        assert denied.status_code == 401
        assert denied.headers["WWW-Authenticate"] == 'Basic realm="osd-watchdog"'
    with pytest.raises(requests.ConnectionError):
        requests.get(url.replace("https", "http") + "/metrics", timeout=10)


def test_a_flood_of_scrapes_is_served_and_bcrypt_runs_once(server):
    url, ca, security = server
    header = "Basic " + base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()

    def scrape(_):
        return requests.get(
            f"{url}/metrics", headers={"Authorization": header}, verify=ca, timeout=20
        ).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(scrape, range(200)))
    assert codes == [200] * 200
    assert len(security._good) == 1  # cached: later scrapes skip bcrypt entirely
    assert threading.active_count() < 40  # finished request threads do not pile up


def test_check_config_and_run_refuse_a_bad_web_config_file(tmp_path):
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users:\n  alice: plaintext\n")
    config = tmp_path / "watchdog.toml"
    config.write_text(f'[web]\nconfig_file = "{web}"\n[cluster]\nsource = "none"\n')
    for argv in (["check-config", str(config)], ["run", "--config", str(config)]):
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 78, result.output
        assert "web.config_file: " in result.output
        assert "not a bcrypt hash" in result.output


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("tls_server_confg: {}\n", "unsupported key(s): tls_server_confg"),
        ("tls_server_config:\n  cert_file: x\n", "tls_server_config.key_file is required"),
        (
            "tls_server_config:\n  cert_file: 5\n  key_file: [a]\n",
            "tls_server_config.cert_file must be a file name",
        ),
        ("basic_auth_users:\n  alice: plaintext\n", "basic_auth_users.alice: not a bcrypt hash"),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Maybe\n",
            "client_auth_type must be one of",
        ),
    ],
)
def test_a_bad_web_config_is_a_config_error_naming_the_key(tmp_path, content, problem):
    path = tmp_path / "web.yml"
    path.write_text(content)
    config = parse_config({"web": {"config_file": str(path)}})  # validating reads no file
    with pytest.raises(ConfigError) as error:
        web_security(config, "watchdog.toml")
    [message] = error.value.problems
    assert message.startswith("web.config_file: ")
    assert problem in message


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
tls_configs = st.fixed_dictionaries(
    {"cert_file": yaml_values, "key_file": yaml_values},
    optional={
        "client_ca_file": yaml_values,
        "client_auth_type": st.sampled_from(["RequireAndVerifyClientCert", "NoClientCert"])
        | yaml_values,
    },
)


@settings(max_examples=150, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "tls_server_config": tls_configs | yaml_values,
            "basic_auth_users": st.dictionaries(st.text(max_size=8), yaml_values) | yaml_values,
            "other": yaml_values,
        },
    )
    | st.dictionaries(st.integers() | st.booleans(), yaml_values, max_size=3)
)
def test_any_web_config_shape_is_accepted_or_one_value_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("web") / "web.yml"
    path.write_text(yaml.safe_dump(data))
    try:
        load_web_security(path)
    except ValueError as exc:
        message = str(exc)
    else:
        return
    assert message.startswith(f"{path}: ")  # never a TypeError or a traceback
