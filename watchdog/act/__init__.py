"""Act stage: remediate zombie OSDs behind safety guards.

``remediation.py`` takes each cycle's transitions and runs a job per OSD off the loop's
thread: ``guards.py`` judge (host guards on this cycle, map guards on ``facts.py``'s fresh
read and ``ok-to-stop``), then ``steps.py`` run in order. ``job.py`` holds what a job runs
under and records its outcomes; ``ledger.py`` keeps fences, their remaining steps and the
guards' history in ``state_dir``; ``lock.py`` lets one watchdog per ``state_dir`` act;
``canary.py`` tells the watchdog's own failures from the OSDs'. The default remediation fences
the OSD (``ceph osd add-noup`` + ``ceph osd down``), restarts it, verifies the new process
answers on every listener, then lifts the fence. A bare mark-down does not help a zombie: it
is up again within seconds, still a zombie (design.md section 3).
"""
