"""The tutorial notebook docs/tutorial_own_network.ipynb, run from top to bottom as a student runs it.

The notebook's last cell prints one line of JSON with what it found (layers, shapes, accuracy, the
unit's examples, the class images' probabilities); the test reads that line from the executed
notebook and checks the numbers. The kernel runs this very Python (sys.executable) from a kernel
spec written for the test, so a machine's other Jupyter kernels never matter.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (pip install -r requirements.txt)")
nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (pip install -r requirements.txt)")
pytest.importorskip("ipykernel", reason="ipykernel is not installed (pip install -r requirements.txt)")

from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402  (jupyter_client comes with nbclient)
from jupyter_client.manager import AsyncKernelManager  # noqa: E402

from vislib.data.collections import DEBIAN_FASHION  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parent.parent / "docs" / "tutorial_own_network.ipynb"
CELL_TIMEOUT = 600  # seconds: a loaded CI machine; the whole notebook takes about a minute on 2 cores
HAS_DATA = (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").exists()  # as the notebook decides
LAYERS = ["block1.2", "pool1", "block2.2", "pool2", "block3.2"]


def _kernel_manager(folder: Path) -> AsyncKernelManager:
    """A manager whose `python3` kernel is ipykernel in this interpreter."""
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (the tests' interpreter)", "language": "python"}))
    return AsyncKernelManager(kernel_name="python3",
                              kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(folder / "kernels")]))


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The notebook after running every cell, plus a cell of the test's own that names the kernel's Python."""
    root = tmp_path_factory.mktemp("notebook")
    work = root / "work"
    work.mkdir()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print('KERNEL-PYTHON', sys.executable)"))
    env = dict(os.environ, VISLIB_CACHE=str(root / "cache"),  # an empty cache: the unit's survey is computed
               MPLBACKEND="module://matplotlib_inline.backend_inline",  # figures inline, whatever the shell set
               # One thread: nothing checked here depends on it, and on a 2-core machine busy with other
               # work PyTorch's two threads waited for each other (the notebook took 104-136 s, one thread 25 s).
               OMP_NUM_THREADS="1")
    client = nbclient.NotebookClient(nb, km=_kernel_manager(root), timeout=CELL_TIMEOUT, startup_timeout=120,
                                     resources={"metadata": {"path": str(work)}})
    client.execute(env=env)
    return nb


def _text(cell) -> str:
    return "".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream" and out.name == "stdout")


def _summary(nb) -> dict:
    lines = [line for line in _text(nb.cells[-2]).splitlines() if line.startswith("{")]
    assert len(lines) == 1, _text(nb.cells[-2])
    return json.loads(lines[0])


def test_the_notebook_is_saved_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)
    assert nb.metadata.kernelspec.name == "python3"


def test_the_kernel_runs_the_tests_python(executed):
    line = _text(executed.cells[-1]).strip()
    assert line.startswith("KERNEL-PYTHON ")
    assert os.path.realpath(line.split(" ", 1)[1]) == os.path.realpath(sys.executable)


def test_the_network_trains_and_vislib_finds_its_layers(executed):
    found = _summary(executed)
    assert found["dataset"] is HAS_DATA
    if HAS_DATA:
        assert found["accuracy"] > 0.6  # one pass over half the training split; chance is 0.1
    else:
        assert found["accuracy"] is None
    assert found["layers"] == LAYERS
    assert found["filters"] == [16, 1, 5, 5]  # the first convolution: 16 grey 5 x 5 kernels
    table = [out.data["text/html"] for cell in executed.cells if cell.cell_type == "code"
             for out in cell.outputs if "data" in out and "text/html" in out.data]
    assert len(table) == 1 and all(f"<td>{name}</td>" in table[0] for name in LAYERS)


def test_gradcam_unit_and_class_images(executed):
    found = _summary(executed)
    assert found["gradcam_layer"] == LAYERS[-1] and found["gradcam_shape"] == [28, 28]
    layer, channel = found["unit"]
    assert layer == LAYERS[-1] and 0 <= channel < 64
    acts = found["example_activations"]
    assert len(acts) == 8 and acts == sorted(acts, reverse=True) and acts[-1] > 0
    assert found["feature_size"] == [56, 56]
    sure = found["class_image_probabilities"]
    assert len(sure) == 10 and all(0 <= p <= 1 for p in sure)
    if HAS_DATA:  # each picture was made for its class: on average the network is far surer of it than chance
        assert sum(sure) / len(sure) > 0.3
    else:  # an untrained network (its batch norms at their start) is unsure of everything, its class images too
        assert all(abs(p - 0.1) < 0.05 for p in sure)


def test_every_step_shows_its_figure(executed):
    figures = [out for cell in executed.cells if cell.cell_type == "code" for out in cell.outputs
               if "data" in out and "image/png" in out.data]
    # the test picture, the filters, Grad-CAM, the unit's examples and their guided views, its
    # feature visualisation, the class images
    assert len(figures) == 7
