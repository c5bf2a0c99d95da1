"""Secrets come from files or the environment, and no output ever shows them."""

import json
import sys
import threading

import pytest
from typer.testing import CliRunner

from tests.act.test_steps import EVENT, Hook
from watchdog.act.steps import Exec, Webhook, describe
from watchdog.cli import app
from watchdog.config import ActConfig, ClusterConfig, parse_config
from watchdog.credentials import RESTFUL_KEY_ENV, WEBHOOK_TOKEN_ENV, read_secret, shown_url
from watchdog.daemon import Watchdog
from watchdog.errors import ConfigError, MonitorError, SecretError
from watchdog.export import SnapshotMetrics
from watchdog.exposition import render
from watchdog.monitor import RestfulClient

TOKEN = "tok-3f9a-very-secret"  # noqa: S105 - a fake, to look for in every output
HOOK_PATH = "services/T000/B000/hook-path-secret"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.example.com/services/T0/B0/XYZ", "https://hooks.example.com/<redacted>"),
        ("https://mgr-1:8003", "https://mgr-1:8003"),
        ("https://mgr-1:8003/", "https://mgr-1:8003"),
        ("http://[::1]:9000/hook?token=abc", "http://[::1]:9000/<redacted>"),
        ("https://user:pw@host/x", "https://host/<redacted>"),
        ("https://host:notaport/", "https://host"),
    ],
)
def test_urls_are_shown_without_anything_that_could_be_a_credential(url, shown):
    assert shown_url(url) == shown


def test_a_secret_comes_from_its_file_first_then_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(WEBHOOK_TOKEN_ENV, "from-env")
    token = tmp_path / "token"
    token.write_text(f"{TOKEN}\n")
    assert read_secret(token, WEBHOOK_TOKEN_ENV) == TOKEN
    assert read_secret(None, WEBHOOK_TOKEN_ENV) == "from-env"
    monkeypatch.delenv(WEBHOOK_TOKEN_ENV)
    assert read_secret(None, WEBHOOK_TOKEN_ENV) is None


def test_an_empty_or_unreadable_secret_file_is_an_error_that_shows_no_content(tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(SecretError, match="is empty"):
        read_secret(empty, WEBHOOK_TOKEN_ENV)
    with pytest.raises(SecretError, match=r"cannot read .*absent: FileNotFoundError"):
        read_secret(tmp_path / "absent", WEBHOOK_TOKEN_ENV)


def test_the_webhook_token_from_the_environment_is_sent_and_never_logged(monkeypatch, caplog):
    caplog.set_level("DEBUG")
    monkeypatch.setenv(WEBHOOK_TOKEN_ENV, TOKEN)
    hook = Hook(failures=1)
    try:
        detail = Webhook(ActConfig(webhook_url=hook.url), threading.Event()).run(EVENT, timeout=10)
    finally:
        hook.close()
    assert hook.headers == [f"Bearer {TOKEN}"] * 2
    assert TOKEN not in caplog.text
    assert TOKEN not in detail


def test_commands_we_run_do_not_inherit_our_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv(WEBHOOK_TOKEN_ENV, TOKEN)
    monkeypatch.setenv(RESTFUL_KEY_ENV, TOKEN)
    out = tmp_path / "env.json"
    script = "import json, os, sys; json.dump(dict(os.environ), open(sys.argv[1], 'w'))"
    Exec([sys.executable, "-c", script, str(out)]).run(EVENT, timeout=10)
    env = json.loads(out.read_text())
    assert TOKEN not in json.dumps(env)
    assert env["OSD_WATCHDOG_DAEMON"] == "osd.7"


def test_the_restful_key_comes_from_the_environment_when_no_file_is_set(monkeypatch):
    config = ClusterConfig(source="restful", restful_url="https://127.0.0.1:1")
    monkeypatch.delenv(RESTFUL_KEY_ENV, raising=False)
    with pytest.raises(MonitorError, match=f"restful_key_file or {RESTFUL_KEY_ENV}"):
        RestfulClient(config)
    with pytest.raises(ConfigError, match=RESTFUL_KEY_ENV):
        parse_config({"cluster": {"source": "restful", "restful_url": "https://mgr:8003"}})
    monkeypatch.setenv(RESTFUL_KEY_ENV, TOKEN)
    client = RestfulClient(config)
    try:
        assert client.session.auth == ("admin", TOKEN)
    finally:
        client.close()
    parse_config({"cluster": {"source": "restful", "restful_url": "https://mgr:8003"}})


def test_a_url_with_a_password_in_it_is_refused_without_repeating_the_password():
    with pytest.raises(ConfigError) as caught:
        parse_config({"act": {"webhook_url": f"https://bot:{TOKEN}@chat.example.com/hook"}})
    (problem,) = caught.value.problems
    assert problem.startswith("act.webhook_url: 'https://chat.example.com/<redacted>': no user")
    assert TOKEN not in str(caught.value)


def secret_config(tmp_path):
    token = tmp_path / "token"
    token.write_text(TOKEN)
    key = tmp_path / "restful.key"
    key.write_text(TOKEN)
    config = tmp_path / "watchdog.toml"
    config.write_text(
        "[discovery]\nlocal = false\n"
        f'[cluster]\nsource = "none"\nrestful_url = "https://mgr:8003"\n'
        f'restful_key_file = "{key}"\n'
        f'[act]\nsteps = ["webhook"]\nwebhook_url = "https://chat.example.com/{HOOK_PATH}"\n'
        f'webhook_token_file = "{token}"\nstate_dir = "{tmp_path}"\n'
    )
    return config


def test_check_config_show_prints_the_effective_config_with_secrets_redacted(tmp_path):
    config = secret_config(tmp_path)
    result = CliRunner().invoke(app, ["check-config", str(config), "--show"])
    assert result.exit_code == 0
    shown = json.loads(result.stdout)
    assert shown["act"]["webhook_url"] == "https://chat.example.com/<redacted>"
    assert shown["act"]["webhook_token_file"] == str(tmp_path / "token")  # the path, not the file
    assert shown["loop"]["interval_seconds"] == 1.0  # defaults filled in
    assert TOKEN not in result.stdout
    assert HOOK_PATH not in result.stdout


def test_no_secret_reaches_the_metrics_or_the_dry_run_plan(tmp_path, caplog):
    caplog.set_level("DEBUG")
    config = parse_config(
        {
            "discovery": {"local": False},
            "cluster": {"source": "none"},
            "act": {
                "steps": ["webhook"],
                "webhook_url": f"https://chat.example.com/{HOOK_PATH}",
                "state_dir": str(tmp_path),
            },
        }
    )
    watchdog = Watchdog(config, acting=True)
    watchdog.cycle()
    exposition = render(SnapshotMetrics().families(watchdog.latest())).decode()
    plan = describe(config.act, "osd.1")
    assert plan == "POST the event to https://chat.example.com/<redacted>"
    for text in (exposition, plan, caplog.text):
        assert HOOK_PATH not in text
