"""ok-to-stop as Ceph 16.2 answers it (outputs captured from a real cluster)."""

import errno

import pytest

from watchdog.act.facts import judge
from watchdog.monitor import Answer

YES = (
    b'{"ok_to_stop":true,"osds":[1],"num_ok_pgs":1,"num_not_ok_pgs":0,"ok_become_degraded":["1.0"]}'
)
NO = (
    b'{"ok_to_stop":false,"osds":[1],"num_ok_pgs":1,"num_not_ok_pgs":5,'
    b'"bad_become_inactive":["2.3","2.4","2.5","2.6","2.7"],"ok_become_degraded":["1.0"]}'
)
UNKNOWN = (
    b'{"ok_to_stop":false,"osds":[1],"num_ok_pgs":1,"num_not_ok_pgs":2,'
    b'"unknown_pgs":["2.2","2.3"],"bad_already_inactive":["2.0","2.1"]}'
)
AGAIN = "2 pgs have unknown state; cannot draw any conclusions"
BUSY = "unsafe to stop osd(s) at this time (5 PGs are or would become offline)"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (Answer(0, YES, ""), (True, "ok")),
        (Answer(-errno.EBUSY, NO, f"Error EBUSY: {BUSY}"),
         (False, f"{BUSY}; PGs 2.3, 2.4, 2.5, 2.6, 2.7")),
        (Answer(-errno.EBUSY, NO, BUSY), (False, f"{BUSY}; PGs 2.3, 2.4, 2.5, 2.6, 2.7")),
        # PGs of unknown state: Ceph says false, but it means "I cannot tell".
        (Answer(-errno.EAGAIN, UNKNOWN, f"Error EAGAIN: {AGAIN}"), (None, AGAIN)),
        (Answer(-errno.EBUSY, b"", BUSY), (False, BUSY)),  # no JSON (an older release)
        (Answer(-errno.EACCES, b"", "access denied: does your client key have mgr caps?"),
         (None, "error -13: access denied: does your client key have mgr caps?")),
    ],
)  # fmt: skip
def test_ok_to_stop_answers_are_read_as_yes_no_or_cannot_tell(answer, expected):
    assert judge(answer) == expected
