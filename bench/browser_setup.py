"""The browser tests' set-up for the benchmarks that drive Chromium (load.py, app_startup.py).

One source for Chromium's path and flags: tests/e2e/conftest.py, loaded here by its file path
(a conftest is no importable module, and nothing edits sys.path). `python bench/X.py` finds this
module because Python puts the script's own folder first on the path.
"""
import importlib.util
from pathlib import Path

_CONFTEST = Path(__file__).resolve().parents[1] / "tests" / "e2e" / "conftest.py"
_spec = importlib.util.spec_from_file_location("vislib_e2e_conftest", _CONFTEST)
_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_conftest)

CHROMIUM, CHROMIUM_ARGS, free_port = _conftest.CHROMIUM, _conftest.CHROMIUM_ARGS, _conftest._free_port
