"""ceph-osd-watchdog: catch Ceph OSDs whose client accept path died while they stay up."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ceph-osd-watchdog")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"
