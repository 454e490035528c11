"""The package: a wheel built from this checkout works from another folder, weights and all.

Builds the wheel from a copy of the sources (so no build/ or egg-info lands in the checkout),
installs it with `pip install --target` into a temporary folder and, from yet another folder with
that folder first on PYTHONPATH, runs `python -m vislib models`, the console script `vislib` and
`load_model("fashion_cnn")` (its weights are package data).
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _setuptools_version() -> tuple[int, ...] | None:
    if importlib.util.find_spec("setuptools") is None:
        return None
    from importlib.metadata import version
    return tuple(int(p) for p in version("setuptools").split(".")[:2] if p.isdigit())


def run(argv, cwd, env, timeout=120):
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, argv))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(site folder with the installed wheel, the wheel, a working folder outside the checkout, env)."""
    found = _setuptools_version()
    if found is None or found < (64,):
        pytest.skip(f"building the wheel without the network needs setuptools >= 64 installed (found {found})")
    tmp = tmp_path_factory.mktemp("package")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "vislib", src / "vislib", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = {**os.environ, "PIP_NO_INDEX": "1"}  # everything needed is here: no network
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp / "dist"), str(src)], capture_output=True, text=True, env=env, timeout=180)
    if built.returncode != 0 and "No module named" in built.stderr:
        pytest.skip(f"the wheel cannot be built here: {built.stderr.strip().splitlines()[-1]}")
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp / "dist").glob("vislib-*.whl")
    site = tmp / "site"
    run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "-q", "--target", str(site), str(wheel)],
        tmp, env, timeout=180)
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    # The installed copy first; what was on PYTHONPATH already (a machine's extra packages) after it.
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return site, wheel, elsewhere, {**env, "PYTHONPATH": path}


def test_the_wheel_holds_the_engine_and_its_weights_and_nothing_else(installed):
    _, wheel, _, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert "vislib/models/weights/fashion_cnn.safetensors" in names
    assert "vislib/models/weights/fashion_cnn.json" in names
    assert "vislib/cli/__init__.py" in names and "vislib/__main__.py" in names
    assert not [n for n in names if n.split("/")[0] in {"tests", "bench", "ui", "app_pages", "docs"} or
                n.startswith("app.py") or "__pycache__" in n]
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert f"Version: {project['version']}" in text
    assert {"app", "distributed", "test"} <= {line.split(": ")[1] for line in text.splitlines()
                                               if line.startswith("Provides-Extra:")}
    entry_points = zipfile.ZipFile(wheel).read(metadata.replace("METADATA", "entry_points.txt")).decode()
    assert "vislib = vislib.cli:main" in entry_points


def test_python_m_vislib_models_runs_the_installed_copy(installed):
    site, _, elsewhere, env = installed
    where = run([sys.executable, "-c", "import vislib; print(vislib.__file__)"], elsewhere, env).strip()
    assert Path(where).resolve().is_relative_to(site.resolve()), where
    assert not Path(where).resolve().is_relative_to(REPO)
    listing = run([sys.executable, "-m", "vislib", "models", "--json"], elsewhere, env)
    rows = [json.loads(line) for line in listing.splitlines()]
    assert {r["name"]: r["state"] for r in rows}["fashion_cnn"] == "ready"


def test_the_console_script(installed):
    site, _, elsewhere, env = installed
    script = site / "bin" / "vislib"
    assert script.is_file()
    lines = run([str(script), "models"], elsewhere, env).splitlines()
    assert any(line.split()[:2] == ["fashion_cnn", "ready"] for line in lines), lines
    assert "usage: vislib" in run([str(script), "--help"], elsewhere, env)


def test_fashion_cnn_loads_from_the_installed_copy(installed):
    site, _, elsewhere, env = installed
    code = ("import vislib, torch\n"
            "m = vislib.load_model('fashion_cnn', device='cpu')\n"
            "from vislib.models import fashion\n"
            "print(fashion.WEIGHTS)\n"
            "print(len(m.labels), [i.name for i in m.layers()][-1])\n"
            "print(m.probabilities(torch.zeros(1, 3, 28, 28)).sum().item())\n")
    weights, shape, total = run([sys.executable, "-c", code], elsewhere, env).splitlines()
    assert Path(weights).resolve().is_relative_to(site.resolve()), weights
    assert shape == "10 conv3"
    assert abs(float(total) - 1) < 1e-5
