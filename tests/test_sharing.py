"""One shared network, many sessions: no job sees another's tensors, and nothing changes process-wide state.

The race of the engine issue: one thread extracts a layer's features over a collection (its hook
stops the pass early), two threads call top_k in a loop (what the Predict page does) and one runs
Grad-CAM. Before Model.running(), top_k raised the extraction's private stop exception, the
extraction received a stranger's activations, and Grad-CAM raised a RuntimeError.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from vislib import attribution, features
from vislib.datasets import open_collection
from vislib.runtime import SharedNetworkError, holds_a_device
from vislib.synthesis import class_visualization


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VISLIB_CACHE", str(tmp_path))  # every extraction computes


def _run_together(jobs: dict) -> tuple[dict, dict]:
    results, errors = {}, {}
    start = threading.Barrier(len(jobs))

    def run(name, job):
        start.wait()
        try:
            results[name] = job()
        except BaseException as err:  # noqa: BLE001 - any exception is the failure this test looks for
            errors[name] = err

    threads = [threading.Thread(target=run, args=item) for item in jobs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads), "a job hung"
    return results, errors


def test_readers_extraction_and_gradcam_together_equal_each_alone(lite0, cat, tmp_path, monkeypatch):
    collection = open_collection("samples")
    x = lite0.preprocess(cat)[None]
    layer = "blocks.3.0"
    monkeypatch.setenv("VISLIB_CACHE", str(tmp_path / "alone"))
    alone_features = features.extract(lite0, collection, layer, batch_size=2)
    alone_top = lite0.top_k(cat, 5)
    alone_cam = attribution.attribute(lite0, x, "gradcam")
    stop_reading = threading.Event()

    def reader():
        seen = []
        while not stop_reading.is_set() or not seen:
            seen.append(lite0.top_k(cat, 5))
        return seen

    def extraction():
        try:
            return features.extract(lite0, collection, layer, batch_size=2)
        finally:
            stop_reading.set()

    def gradcam():
        return [attribution.attribute(lite0, x, "gradcam") for _ in range(3)]

    monkeypatch.setenv("VISLIB_CACHE", str(tmp_path / "together"))  # the extraction runs again
    results, errors = _run_together({"reader 1": reader, "reader 2": reader, "extraction": extraction,
                                     "gradcam": gradcam})
    assert errors == {}
    np.testing.assert_array_equal(results["extraction"], alone_features)
    for name in ("reader 1", "reader 2"):
        assert all(top == alone_top for top in results[name])
    for cam in results["gradcam"]:
        torch.testing.assert_close(cam, alone_cam, rtol=0, atol=0)


def test_a_pass_outside_running_is_refused_and_inside_works(lite0, cat):
    x = lite0.preprocess(cat)[None]
    assert not holds_a_device()
    with pytest.raises(SharedNetworkError, match="outside Model.running"):
        with torch.inference_mode():
            lite0.net(x)
    with torch.inference_mode(), lite0.running() as net:
        assert holds_a_device()
        assert int(net(x).argmax()) == lite0.top_k(cat, 1)[0][0]
    assert not holds_a_device()


def test_a_job_leaves_no_hook_behind(lite0, cat, fresh_cache):
    def hooks() -> int:
        return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
                   for m in lite0.net.modules())

    before = hooks()
    x = lite0.preprocess(cat)[None]
    for method in ("saliency", "gradcam", "guided_backprop"):
        attribution.attribute(lite0, x, method)
    features.extract(lite0, open_collection("samples"), "blocks.2.0", batch_size=4)
    class_visualization(lite0, 1, steps=2, seed=0)
    assert hooks() == before


def test_work_changes_no_process_wide_setting(lite0, cat, fresh_cache):
    """torch's thread count, denormal flushing, TF32 and the global RNG are the same after the engine ran."""
    from vislib import embedding

    threads = torch.get_num_threads()
    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    rng = torch.get_rng_state()
    x = lite0.preprocess(cat)[None]
    attribution.attribute(lite0, x, "smoothgrad", samples=2)
    embedding.tsne(np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32), perplexity=5)
    assert torch.get_num_threads() == threads
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == tf32
    assert torch.equal(torch.get_rng_state(), rng)


def test_tsne_changes_the_thread_count_only_while_it_holds_the_cpu(monkeypatch):
    """The one-thread steps of t-SNE set torch's (process-wide) thread count only under the CPU's queue."""
    from vislib import embedding

    seen = []
    original = torch.set_num_threads

    def watched(n):
        seen.append(holds_a_device())
        original(n)

    monkeypatch.setattr(torch, "set_num_threads", watched)
    embedding.tsne(np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32), perplexity=5, device="cpu")
    assert seen and all(seen)
    assert not holds_a_device()
