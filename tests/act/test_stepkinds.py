"""One registry of steps: config, guards, journal and audit read the same table."""

from typing import get_args

from watchdog.act.steps import MAKERS, describe
from watchdog.config import ActConfig, StepName
from watchdog.stepkinds import KINDS, fences, marks_down, stops


def test_every_step_is_described_once_and_built_once():
    assert set(KINDS) == set(get_args(StepName)) == set(MAKERS)


def test_what_each_step_does_to_the_osd_decides_the_guards():
    assert marks_down(["fence"])
    assert marks_down(["markdown"])
    assert not marks_down(["restart", "verify", "unfence", "exec", "webhook"])
    assert stops(["restart"])
    assert stops(["fence"])
    assert not stops(["verify", "unfence", "exec", "webhook"])
    assert fences(["fence"])
    assert not fences(["markdown", "unfence"])
    # An audit label is the step names joined: read back exactly, never by substring.
    assert not marks_down(["unfence", "only"])


def test_every_step_has_words_for_the_dry_run_plan():
    config = ActConfig(
        steps=list(get_args(StepName)),
        exec_command=["/bin/true"],
        webhook_url="https://chat.example/hook",
    )
    plan = describe(config, "osd.7")
    assert plan.count(", then ") == len(KINDS) - 1
    assert "ceph osd add-noup osd.7; ceph osd down 7" in plan
    assert "systemctl restart ceph-osd@7" in plan
