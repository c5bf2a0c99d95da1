"""ceph-osd-watchdog: catch Ceph OSDs whose client accept path died while they stay up."""

# The single source of the version (pyproject.toml reads it from here). A constant, not
# importlib.metadata: that import alone costs the resident daemon about 5 MiB.
__version__ = "0.1.0"
