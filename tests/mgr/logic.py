"""The mgr module's logic, loaded without a mgr: its package's __init__ imports mgr_module,
which only ceph-mgr has, so the package is made here with the same files and no __init__."""

import importlib
import importlib.machinery
import importlib.util
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "mgr" / "osd_watchdog"
NAME = "osd_watchdog_logic"

if NAME not in sys.modules:
    _spec = importlib.machinery.ModuleSpec(NAME, None, is_package=True)
    _package = importlib.util.module_from_spec(_spec)
    _package.__path__ = [str(PACKAGE)]
    sys.modules[NAME] = _package

report = importlib.import_module(f"{NAME}.report")
view = importlib.import_module(f"{NAME}.view")
book = importlib.import_module(f"{NAME}.book")
store = importlib.import_module(f"{NAME}.store")
text = importlib.import_module(f"{NAME}.text")
