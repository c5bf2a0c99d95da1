"""Steps against real things: commands, a real HTTP server for the webhook, and timeouts."""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from watchdog.act.steps import Exec, Incident, Restart, Verify, Webhook, describe
from watchdog.config import ActConfig
from watchdog.errors import StepError, StepInterruptedError

EVENT = Incident("osd.7", "zombie", "client accept path dead", 4242, 1_800_000_000.0)


def test_restart_uses_systemctl_or_the_configured_command():
    assert Restart(ActConfig()).argv(EVENT) == ["systemctl", "restart", "ceph-osd@7"]
    podman = ActConfig(restart_command=["podman", "restart", "ceph-osd-{id}"])
    assert Restart(podman).argv(EVENT) == ["podman", "restart", f"ceph-osd-{7}"]


CEPHADM_CGROUP = (
    "0::/system.slice/system-ceph\\x2d5d4c1f6a-0000-4000-8000-000000000001.slice/"
    "ceph-5d4c1f6a-0000-4000-8000-000000000001@osd.7.service/payload\n"
)


def fake_proc(tmp_path, cgroup: str):
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "cgroup").write_text(cgroup)
    return tmp_path


def test_unit_restarts_the_unit_the_osd_runs_in_as_cephadm_names_it(tmp_path):
    config = ActConfig(restart_unit_template="{unit}")
    restart = Restart(config, proc_root=fake_proc(tmp_path, CEPHADM_CGROUP))
    unit = "ceph-5d4c1f6a-0000-4000-8000-000000000001@osd.7.service"
    assert restart.argv(EVENT) == ["systemctl", "restart", unit]
    # The dry-run plan says what it will resolve, without a process to read.
    assert "systemctl restart {unit}" in describe(config, "osd.7")


def test_unit_on_a_cgroup_v1_host_reads_systemds_own_hierarchy(tmp_path):
    v1 = (
        "12:pids:/system.slice\n"
        "1:name=systemd:/system.slice/system-ceph\\x2dosd.slice/ceph-osd@7.service\n"
    )
    restart = Restart(ActConfig(restart_unit_template="{unit}"), proc_root=fake_proc(tmp_path, v1))
    assert restart.argv(EVENT)[-1] == "ceph-osd@7.service"


def test_unit_outside_any_service_is_a_failed_step_not_a_guess(tmp_path):
    outside = fake_proc(tmp_path, "0::/user.slice/user-0.slice/session-3.scope\n")
    with pytest.raises(StepError, match="runs in no systemd service"):
        Restart(ActConfig(restart_unit_template="{unit}"), proc_root=outside).argv(EVENT)
    gone = Incident("osd.7", "zombie", "", 999999999, 0.0)
    with pytest.raises(StepError, match="cannot read its unit"):
        Restart(ActConfig(restart_unit_template="{unit}"), proc_root=tmp_path).argv(gone)


def test_fsid_without_a_monitor_client_is_a_failed_step_not_a_guess():
    config = ActConfig(restart_unit_template="ceph-{fsid}@osd.{id}")
    with pytest.raises(StepError, match="needs the monitors"):
        Restart(config).argv(EVENT)
    assert Restart(config).argv(EVENT, resolve=False)[-1] == "ceph-{fsid}@osd.7"


def test_a_failing_restart_says_which_command_and_why():
    failing = ActConfig(restart_command=[sys.executable, "-c", "import sys; sys.exit('no unit')"])
    with pytest.raises(StepError, match="exited 1: no unit"):
        Restart(failing).run(EVENT, timeout=10)


def test_a_restart_command_that_cannot_even_start_is_a_failed_step(tmp_path):
    """EACCES here; EMFILE at our own fd limit takes the same path: a failure, not a crash."""
    not_a_program = tmp_path / "a-directory"
    not_a_program.mkdir()
    with pytest.raises(StepError, match="cannot start"):
        Restart(ActConfig(restart_command=[str(not_a_program)])).run(EVENT, timeout=10)


def test_exec_gets_the_event_in_its_environment(tmp_path):
    out = tmp_path / "env.json"
    script = (
        "import json, os, sys; "
        "json.dump({k: v for k, v in os.environ.items() if k.startswith('OSD_WATCHDOG_')}, "
        "open(sys.argv[1], 'w'))"
    )
    Exec([sys.executable, "-c", script, str(out)]).run(EVENT, timeout=10)
    env = json.loads(out.read_text())
    assert env["OSD_WATCHDOG_DAEMON"] == "osd.7"
    assert env["OSD_WATCHDOG_OSD_ID"] == "7"
    assert env["OSD_WATCHDOG_STATE"] == "zombie"
    assert env["OSD_WATCHDOG_PID"] == "4242"


def test_a_command_that_hangs_is_stopped_at_the_timeout():
    with pytest.raises(StepError, match=r"still running after 0\.5s"):
        Exec([sys.executable, "-c", "import time; time.sleep(30)"]).run(EVENT, timeout=0.5)


class Hook:
    """A real webhook receiver on loopback that fails a given number of times first."""

    def __init__(self, failures: int) -> None:
        self.bodies: list[dict] = []
        self.headers: list[str] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                hook.bodies.append(json.loads(self.rfile.read(length)))
                hook.headers.append(self.headers.get("Authorization", ""))
                self.send_response(503 if len(hook.bodies) <= failures else 204)
                self.end_headers()

            def log_message(self, *_):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_the_webhook_retries_server_errors_then_succeeds_with_the_token(tmp_path):
    hook = Hook(failures=2)
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    config = ActConfig(webhook_url=hook.url, webhook_token_file=token, webhook_retries=2)
    try:
        detail = Webhook(config, threading.Event()).run(EVENT, timeout=10)
    finally:
        hook.close()
    assert detail == "webhook: HTTP 204 after 3 attempt(s)"
    assert hook.bodies[-1]["daemon"] == "osd.7"
    assert hook.bodies[-1]["source"] == "ceph-osd-watchdog"
    assert hook.headers == ["Bearer s3cret"] * 3


def test_the_webhook_gives_up_after_its_retries():
    hook = Hook(failures=10)
    config = ActConfig(webhook_url=hook.url, webhook_retries=1)
    try:
        with pytest.raises(StepError, match=r"gave up after 2 attempt\(s\): HTTP 503"):
            Webhook(config, threading.Event()).run(EVENT, timeout=10)
    finally:
        hook.close()
    assert len(hook.bodies) == 2


def cycles(stopping: threading.Event):
    """A stand-in for the loop's cycles: one every 10 ms, none once stopping."""

    def wait_cycle(timeout: float) -> bool:
        stopping.wait(min(timeout, 0.01))
        return not stopping.is_set()

    return wait_cycle


def test_verify_judges_each_cycle_until_a_new_process_answers_or_its_timeout():
    seen = []

    def answered(daemon, old_pid):
        seen.append((daemon, old_pid))
        return len(seen) >= 3

    running = threading.Event()
    assert "answers on every listener" in Verify(answered, cycles(running)).run(EVENT, 5)
    assert seen == [("osd.7", 4242)] * 3  # once per cycle, not polled in between
    with pytest.raises(StepError, match=r"no new process answering within 0\.3s"):
        Verify(lambda *_: False, cycles(running)).run(EVENT, timeout=0.3)


def test_verify_stopped_by_a_shutdown_says_so_and_is_not_a_failure_to_answer():
    stopping = threading.Event()
    stopping.set()
    with pytest.raises(StepInterruptedError, match=r"osd\.7: stopped waiting after 0\.\ds"):
        Verify(lambda *_: False, cycles(stopping)).run(EVENT, timeout=60)


def test_the_default_remediation_in_words():
    assert describe(ActConfig(), "osd.7") == (
        "fence osd.7 (ceph osd add-noup osd.7; ceph osd down 7), then restart it "
        "(systemctl restart ceph-osd@7), then wait until a new process answers on every "
        "listener, then unfence it (ceph osd rm-noup osd.7)"
    )


def test_the_webhook_token_never_reaches_the_logs(tmp_path, caplog):
    caplog.set_level("DEBUG")
    hook = Hook(failures=1)
    token = tmp_path / "token"
    token.write_text("very-secret-token")
    config = ActConfig(webhook_url=hook.url, webhook_token_file=token, webhook_retries=1)
    try:
        detail = Webhook(config, threading.Event()).run(EVENT, timeout=10)
    finally:
        hook.close()
    assert "very-secret-token" not in caplog.text
    assert "very-secret-token" not in detail
