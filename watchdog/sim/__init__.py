"""Simulated OSDs: real processes on loopback that behave (and fail) like ceph-osd daemons."""
