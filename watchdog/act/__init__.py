"""Act stage: remediate zombie OSDs behind safety guards.

``remediation.py`` decides on transitions and runs the configured ``steps.py`` in order after
the ``guards.py`` pass; ``ledger.py`` keeps fences across restarts and the audit trail. The
default remediation fences the OSD (``ceph osd add-noup`` + ``ceph osd down``), restarts it,
verifies the new process answers on every listener, then lifts the fence. A bare mark-down
does not help a zombie: it is up again within seconds, still a zombie (design.md section 3).
"""
