"""The osd_watchdog ceph-mgr module (see module.py)."""

from .module import Module

__all__ = ["Module"]
