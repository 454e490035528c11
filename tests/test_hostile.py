"""Every hostile input through every door a person has: the Python API, `python -m vislib` and the app.

The inputs are one table, hostile_files.KINDS, made in tmp_path. A refusal is one sentence
everywhere: one exception of the documented type from the API, one `error:` line (or one JSON
error) from the command line, one error element in the app, which still serves afterwards. A
handled file gives its picture. Each (kind, door) goes into LEDGER, summed up at the end.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from hostile_files import ARCH, KINDS, MARKER
from PIL import Image
from streamlit.testing.v1 import AppTest
from test_app import CATS
from test_checkpoints import one_sentence
from test_datasets import _png, _zip

import vislib
from vislib import datasets, images
from vislib.cli import main

REPO = Path(__file__).resolve().parents[1]
FAMILY = {f: [k for k in KINDS if k.family == f] for f in ("image", "zip", "checkpoint", "network")}
ERROR = {"image": vislib.ImageError, "zip": datasets.CollectionError, "checkpoint": vislib.ModelError,
         "network": vislib.ModelError}
DOORS = ("api", "cli", "app")
LEDGER: dict[tuple[str, str], str] = {}  # (kind, door) -> "refused", "handled" or "traceback"


def by_name(kinds):
    return pytest.mark.parametrize("kind", kinds, ids=[k.name for k in kinds])


def refused(kind, door: str, sentence: str) -> None:
    """`sentence` must be the kind's one-sentence refusal; entered in the ledger either way."""
    LEDGER[kind.name, door] = "traceback" if "Traceback" in sentence else "wrong"
    assert kind.refusal is not None, f"{kind.name} should be handled, but was refused: {sentence}"
    assert one_sentence(sentence) and kind.refusal in sentence, sentence
    LEDGER[kind.name, door] = "refused"


def handled(kind, door: str, ok: bool) -> None:
    LEDGER[kind.name, door] = "wrong"
    assert kind.refusal is None, f"{kind.name} should be refused with '{kind.refusal}', but was accepted"
    assert ok, f"{kind.name} went wrong at the {door}"
    LEDGER[kind.name, door] = "handled"


@pytest.fixture(scope="module", autouse=True)
def summary(request):
    """Prints the suite's one-line result after the module, past pytest's output capture."""
    yield
    done = sum(v in ("refused", "handled") for v in LEDGER.values())
    tracebacks = sum(v == "traceback" for v in LEDGER.values())
    line = (f"hostile inputs: {len(LEDGER)} kinds x doors ({len(KINDS)} kinds, {len(DOORS)} doors), "
            f"{done} refused or handled, {tracebacks} tracebacks")
    with request.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
        print("\n" + line)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, cat) -> dict[str, Path]:
    """Every kind's file by kind name, and "cat", a good picture; MARKER appears beside them if a pickle ever runs."""
    folder = tmp_path_factory.mktemp("hostile")
    paths = {kind.name: folder / kind.filename for kind in KINDS} | {"cat": folder / "cat.png"}
    assert len(set(paths.values())) == len(paths)
    for kind in KINDS:
        paths[kind.name].write_bytes(kind.make(folder))
    cat.save(paths["cat"])
    return paths


def pickle_ran(hostile) -> bool:
    return (hostile["cat"].parent / MARKER).exists()


def python_m_vislib(*argv) -> subprocess.Popen:
    """The installed package, run from outside the checkout (tests import what pip installed)."""
    return subprocess.Popen([sys.executable, "-m", "vislib", *map(str, argv)], cwd=REPO.parent, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.fixture(scope="module")
def processes(hostile):
    """Real `python -m vislib` runs, started at once so that they work while the other doors are tested.

    Each process spends seconds importing torch, so they are few: one `predict` with every hostile
    picture (and a good one), one with a code-running checkpoint, one with a code-running .pt2,
    one `patches` on an escaping zip.
    """
    kinds = {k.name: k for k in KINDS}
    pickle, escape = kinds["pickle that runs code (exec)"], kinds["zip: ../ traversal"]
    network = kinds[".pt2 with a pickle that runs code"]
    runs = {
        "images": python_m_vislib("predict", "--json", "--top", "3",
                                  *[hostile[k.name] for k in FAMILY["image"]], hostile["cat"]),
        pickle.name: python_m_vislib("predict", "--model", hostile[pickle.name], "--arch", ARCH, hostile["cat"]),
        network.name: python_m_vislib("predict", "--model", hostile[network.name], hostile["cat"]),
        escape.name: python_m_vislib("patches", "--collection", hostile[escape.name], "--out",
                                     hostile["cat"].parent / "state.npz"),
    }
    done = {}

    def finished(name: str) -> tuple[int, str, str]:  # (exit status, stdout, stderr), waiting if need be
        if name not in done:
            out, err = runs[name].communicate(timeout=300)
            done[name] = (runs[name].returncode, out, err)
        return done[name]

    finished.names = set(runs)
    yield finished
    for run in runs.values():  # a test that failed early may have left one running
        if run.poll() is None:
            run.kill()
            run.communicate()


@pytest.fixture(scope="module")
def app():
    at = AppTest.from_file("../app.py", default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def served(at) -> str:
    """The app's top class on the Predict page, after asserting that nothing crashed."""
    assert not at.exception, [e.value for e in at.exception]
    return at.subheader[0].value.rsplit(" (", 1)[0]


# ---------------------------------------------------------------- the files themselves

def test_the_hostile_files_are_what_they_claim(hostile, processes):  # `processes`: start them early
    with Image.open(hostile["animated GIF, 40,003 frames"]) as gif:
        assert gif.n_frames == 40_003 and gif.size == (2, 2)
    with zipfile.ZipFile(hostile["zip bomb lying about its size (8 GB)"]) as z:
        assert sum(m.file_size for m in z.infolist()) > 8 * 10**9
    with zipfile.ZipFile(hostile["zip bomb (1,000:1, a newline in its name)"]) as z:
        assert sum(m.file_size for m in z.infolist()) > 30 * 2**20
    with zipfile.ZipFile(hostile["zip: too many files"]) as z:
        assert len(z.infolist()) == datasets.MAX_FILES + 1
    for name, size in [("zip bomb lying about its size (8 GB)", 1000),
                       ("zip bomb (1,000:1, a newline in its name)", 2**20),
                       ("decompression bomb PNG (900 MP)", 200), ("animated GIF, 40,003 frames", 2**21)]:
        assert hostile[name].stat().st_size < size, name


# ---------------------------------------------------------------- door 1: the Python API

API = {
    "image": lambda path: vislib.load_image(path),
    "zip": lambda path: datasets.open_collection(path),
    "checkpoint": lambda source: vislib.load_model(str(source) if isinstance(source, Path) else source, arch=ARCH),
    "network": lambda source: vislib.load_model(str(source) if isinstance(source, Path) else source),
}


def api_sentence(kind, source) -> str | None:
    """What the API says about `source` (None when it takes it): the sentence the other doors must show."""
    try:
        API[kind.family](source)
    except ERROR[kind.family] as err:
        return str(err)
    return None


@by_name(KINDS)
def test_the_api_refuses_or_handles(kind, hostile):
    try:
        result = API[kind.family](hostile[kind.name])
    except ERROR[kind.family] as err:
        refused(kind, "api", str(err))
    except Exception:
        LEDGER[kind.name, "api"] = "traceback"
        raise
    else:
        handled(kind, "api", kind.check is not None and result.mode == "RGB" and kind.check(result))
    assert not pickle_ran(hostile)


# ---------------------------------------------------------------- door 2: the command line

def test_predict_on_every_hostile_picture_gives_one_sentence_each(hostile, processes):
    status, out, err = processes("images")
    assert "Traceback" not in out + err and status == 1  # 1: some pictures could not be read
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["path"] for line in lines] == [str(hostile[k.name]) for k in FAMILY["image"]] + [str(hostile["cat"])]
    for kind, line in zip(FAMILY["image"], lines):
        if "error" in line:
            refused(kind, "cli", line["error"])
        else:
            handled(kind, "cli", len(line["top"]) == 3 and line["top"][0]["prob"] > 0)
    assert lines[-1]["top"][0]["label"] in CATS  # the good picture among them still gets its answer


COMMAND = {
    "zip": lambda path, folder: ["patches", "--collection", str(path), "--out", str(folder / "state.npz")],
    "checkpoint": lambda path, folder: ["predict", "--model", str(path), "--arch", ARCH, str(folder / "cat.png")],
    "network": lambda path, folder: ["predict", "--model", str(path), str(folder / "cat.png")],
}


@by_name(FAMILY["zip"] + FAMILY["checkpoint"] + FAMILY["network"])
def test_commands_refuse_in_one_line_on_stderr(kind, hostile, processes, capsys):
    """In process (the same `main` as `python -m vislib`); a real process checks one kind of each family."""
    status = main(COMMAND[kind.family](hostile[kind.name], hostile["cat"].parent))
    out, err = capsys.readouterr()
    assert status == 1 and out == "" and err.startswith("error: ") and err.count("\n") == 1, err
    refused(kind, "cli", err.removeprefix("error: ").rstrip("\n"))
    assert not pickle_ran(hostile)
    if kind.name in processes.names:
        status, out, err = processes(kind.name)
        assert status == 1 and out == "" and "Traceback" not in err, err
        assert err.splitlines() == [f"error: {api_sentence(kind, hostile[kind.name])}"]
        assert not pickle_ran(hostile)


# ---------------------------------------------------------------- door 3: the app

def test_config_keeps_xsrf_on_and_caps_every_upload(app):
    server = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())["server"]
    assert server["enableXsrfProtection"] is True and server.get("enableCORS", True) is True
    assert 0 < server["maxUploadSize"] <= 1000  # MB; Streamlit's own default is 200
    app.toggle(key="own_open").set_value(True).run()  # the own-network form's uploaders too
    caps = {u.label: (u.proto.max_upload_size_mb, u.allowed_type) for u in app.file_uploader}
    assert all(0 < mb <= server["maxUploadSize"] for mb, _ in caps.values())  # none lifts the server's cap
    assert caps["Your image"][0] == images.MAX_BYTES >> 20  # each as small as what vislib reads
    assert caps["Class names, one a line (optional)"][0] == 1
    assert caps["Your image"][1] == [f".{t}" for t in images.SUPPORTED_TYPES]  # .svg, .html, .eps are never offered
    [weights] = [types for label, (_, types) in caps.items() if label.startswith("Weights")]
    assert weights == [".safetensors", ".pt", ".pth", ".bin"]
    # vislib caps again what it reads, below what an upload can be where it matters (a picture)
    assert images.MAX_BYTES < server["maxUploadSize"] * 2**20 and images.MAX_PIXELS == 40_000_000


@by_name(FAMILY["image"])
def test_the_sidebar_upload_refuses_or_shows_the_picture(kind, hostile, app):
    data = hostile[kind.name].read_bytes()
    app.file_uploader(key="upload").set_value((kind.filename, data, "application/octet-stream")).run()
    LEDGER[kind.name, "app"] = "traceback" if app.exception else "wrong"
    errors = [e.value for e in app.error]
    sentence = api_sentence(kind, data)
    if sentence is None:
        picture = app.session_state["upload_cache"][1]
        handled(kind, "app", not errors and kind.check(picture) and served(app) != "")
    else:
        assert len(errors) == 1 and sentence in errors[0] and "\n" not in errors[0], errors
        refused(kind, "app", sentence)
        assert served(app) in CATS  # the sample cat meanwhile


def test_the_app_predicts_again_once_the_upload_is_removed(app):
    app.file_uploader(key="upload").set_value(None).run()
    assert served(app) in CATS and not app.error


def _form(app, kind, data):
    """The sidebar's 'Use your own network' form: a checkpoint with its architecture, or a whole network."""
    whole = kind.family == "network"
    app.toggle(key="own_open").set_value(True).run()
    app.radio(key="own_kind").set_value(next(o for o in app.radio(key="own_kind").options
                                             if o.startswith("A whole-network" if whole else "A checkpoint"))).run()
    [weights] = [u for u in app.file_uploader if u.label.startswith("Network file" if whole else "Weights")]
    weights.set_value((kind.filename, data, "application/octet-stream"))
    if not whole:
        [arch] = [s for s in app.selectbox if s.label == "Architecture"]
        arch.set_value(ARCH)
    [submit] = [b for b in app.button if b.label == "Load network"]
    submit.click().run()


@by_name(FAMILY["checkpoint"] + FAMILY["network"])
def test_the_own_network_form_refuses_in_one_sentence(kind, hostile, app):
    data = hostile[kind.name].read_bytes()
    _form(app, kind, data)
    LEDGER[kind.name, "app"] = "traceback" if app.exception else "wrong"
    upload = io.BytesIO(data)
    upload.name = kind.filename  # as the form hands it over: safetensors words its errors apart for files and bytes
    assert [e.value for e in app.error] == [api_sentence(kind, upload)]
    refused(kind, "app", app.error[0].value)
    assert not pickle_ran(hostile)
    assert app.selectbox(key="model_name").value == "efficientnet_lite0" and served(app) in CATS


@by_name(FAMILY["zip"])
def test_the_collection_upload_refuses_in_one_sentence(kind, hostile, app):
    if app.title[0].value != "Maximally activating patches":
        app.switch_page("app_pages/patches.py").run()
        app.selectbox(key="patches-source").set_value("zip").run()
    data = hostile[kind.name].read_bytes()
    app.file_uploader(key="patches-zip").set_value((kind.filename, data, "application/zip")).run()
    LEDGER[kind.name, "app"] = "traceback" if app.exception else "wrong"
    named = io.BytesIO(data)
    named.name = kind.filename  # the app passes the upload itself, so the message names the file
    assert [e.value for e in app.error] == [api_sentence(kind, named)]
    refused(kind, "app", app.error[0].value)
    assert [i.value for i in app.info] == ["Choose the pictures to look at."]


def test_the_collection_upload_takes_a_good_zip_afterwards(app):
    if app.title[0].value != "Maximally activating patches":
        app.switch_page("app_pages/patches.py").run()
        app.selectbox(key="patches-source").set_value("zip").run()
    good = _zip({"pets/cat/a.png": _png(), "pets/dog/b.png": _png((0, 90, 200))})
    app.file_uploader(key="patches-zip").set_value(("pets.zip", good, "application/zip")).run()
    assert not app.exception and not app.error
    assert any(": 2 pictures, 2 classes, from the zip" in c.value for c in app.caption)
