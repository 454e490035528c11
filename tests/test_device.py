"""One queue per device shared by every session, and what happens when a device runs out of memory."""
from __future__ import annotations

import copy
import dataclasses
import os
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest
import torch

from vislib import attribution, device
from vislib.runtime import memory, queue as queues
from vislib.runtime.queue import DeviceQueue
from vislib.runtime.memory import falls_back


def _wait_until(condition, seconds=5.0):
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.01)


def test_queue_serves_in_arrival_order_and_tells_each_waiter_its_place(monkeypatch):
    monkeypatch.setattr(queues, "WAIT_REPORT_SECONDS", 0.02)
    queue = DeviceQueue("cuda:0")
    order, told = [], {}
    queue.acquire()

    def session(name):
        with device.listening(on_wait=lambda dev, ahead: told.setdefault(name, []).append(ahead)):
            with queue:
                order.append(name)

    threads = []
    for name in "abc":
        threads.append(threading.Thread(target=session, args=(name,)))
        threads[-1].start()
        _wait_until(lambda: queue.ahead() == len(threads) + 1)  # the holder and everyone queued
    _wait_until(lambda: all(name in told for name in "abc"))
    queue.release()
    for t in threads:
        t.join(5)
    assert order == ["a", "b", "c"]
    assert told["a"][0] == 1 and told["b"][0] == 2 and told["c"][0] == 3  # the holder counts as ahead
    assert [t[-1] for t in told.values()] == [0, 0, 0]  # "your turn": the page clears its notice
    assert queue.ahead() == 0


def test_queue_is_reentrant_and_refuses_a_release_by_another_thread():
    queue = DeviceQueue("cpu")
    with queue, queue:
        errors = []
        t = threading.Thread(target=lambda: errors.append(pytest.raises(RuntimeError, queue.release)))
        t.start()
        t.join()
        assert "does not hold" in str(errors[0].value)
    assert queue.ahead() == 0


def test_a_waiter_that_is_stopped_leaves_the_queue(monkeypatch):
    """Streamlit stops a script by raising from its next st call: here, the wait notice."""
    monkeypatch.setattr(queues, "WAIT_REPORT_SECONDS", 0.02)
    queue = DeviceQueue("cuda:0")
    queue.acquire()
    stopped = []

    def impatient():
        def on_wait(dev, ahead):
            raise KeyboardInterrupt("the person pressed Stop")
        with device.listening(on_wait=on_wait):
            try:
                queue.acquire()
            except KeyboardInterrupt:
                stopped.append(True)

    t = threading.Thread(target=impatient)
    t.start()
    t.join(5)
    assert stopped == [True] and queue.ahead() == 1  # only the holder is left
    queue.release()
    got = []
    t = threading.Thread(target=lambda: (queue.acquire(), got.append(True), queue.release()))
    t.start()
    t.join(5)
    assert got == [True]  # nobody is stuck behind the one who left


def test_falls_back_halves_the_batch_then_moves_to_the_cpu(monkeypatch):
    gpu = SimpleNamespace(device=torch.device("cuda"), net=torch.nn.Identity())
    cpu = SimpleNamespace(device=torch.device("cpu"))
    monkeypatch.setattr(memory, "cpu_twin", lambda model: cpu)
    calls = []

    @falls_back
    def job(model, size, batch_size=None):
        calls.append((model.device.type, batch_size))
        if model.device.type == "cuda" and batch_size > 2:
            raise torch.OutOfMemoryError("simulated")
        return size * (batch_size or 1)

    notices = []
    with device.listening(on_notice=notices.append):
        assert job(gpu, 10, batch_size=16) == 20
    assert calls == [("cuda", 16), ("cuda", 8), ("cuda", 4), ("cuda", 2)]
    assert notices[-1] == "The CUDA ran out of memory; trying again with batches of 2."

    @falls_back
    def no_batches(model):
        if model.device.type == "cuda":
            raise torch.OutOfMemoryError("simulated")
        return "on the cpu"

    with device.listening(on_notice=notices.append):
        assert no_batches(gpu) == "on the cpu"
    assert notices[-1] == "The CUDA ran out of memory; this ran on the CPU instead (slower)."


_FULL: set[int] = set()  # ids of networks on a device that is always full


def _always_full(module, args):
    if id(module) in _FULL:  # copies of it (the CPU twin) have other ids and work
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")


def test_forced_out_of_memory_gives_the_right_map_on_the_cpu(lite0, cat):
    """A 'meta' device stands in for a full GPU: the job moves its input there, the network
    raises out-of-memory, and the map must come from a CPU copy and equal the plain CPU map."""
    x = lite0.preprocess(cat)[None]
    expected = attribution.attribute(device.cpu_twin(lite0), x, "gradcam", 281)  # lite0 itself where no GPU
    net = copy.deepcopy(lite0.net)
    net.register_forward_pre_hook(_always_full)
    _FULL.add(id(net))
    full = dataclasses.replace(lite0, net=net, device=torch.device("meta"))
    notices = []
    with device.listening(on_notice=notices.append):
        got = attribution.attribute(full, x, "gradcam", 281)
    assert notices == ["The META ran out of memory; this ran on the CPU instead (slower)."]
    assert got.device.type == "cpu"
    torch.testing.assert_close(got, expected)
    twin = device.cpu_twin(full)
    assert twin is device.cpu_twin(full) and twin.net is not full.net  # one copy, never the shared net
    assert full.device.type == "meta" and next(lite0.net.parameters()).device == lite0.device


def _waiting_page():
    """A page whose cached work has to wait for the device, which another session holds."""
    import threading
    import time

    import streamlit as st

    from ui import queue
    from vislib import device

    @st.cache_data
    def answer():
        with device.device_lock("cpu"):
            return 42

    with queue.reported():
        if "held" not in st.session_state:
            st.session_state.held = True
            taken = threading.Event()

            def other_session():
                with device.device_lock("cpu"):
                    taken.set()
                    time.sleep(1.0)
            threading.Thread(target=other_session).start()
            taken.wait()
        st.write(f"answer {answer()}")


def test_page_shows_its_place_while_waiting_and_a_cache_hit_replays_no_stale_notice(monkeypatch):
    from streamlit.testing.v1 import AppTest

    import ui.queue
    drawn = []
    real = ui.queue._now
    monkeypatch.setattr(ui.queue, "_now", lambda draw: (drawn.append(draw), real(draw)))
    at = AppTest.from_function(_waiting_page, default_timeout=30)
    at.run()
    assert not at.exception and at.markdown[0].value == "answer 42"
    assert len(drawn) >= 2  # "Waiting for the CPU (1 ahead)..." at least once, then cleared
    assert not [i for i in at.info if "Waiting" in i.value]
    at.run()  # the cached answer: Streamlit replays what the function drew, which must be nothing
    assert not at.exception and at.markdown[0].value == "answer 42"
    assert not [i for i in at.info if "Waiting" in i.value]


def test_idle_devices_hand_freed_memory_back(monkeypatch):
    trims = []
    monkeypatch.setattr(memory, "_libc", lambda: SimpleNamespace(malloc_trim=trims.append))
    monkeypatch.setattr(memory._trimmer, "delay", 0.05)
    queue = device.device_lock("cpu")
    with queue:
        pass
    _wait_until(lambda: trims == [0])
    queue.acquire()  # busy when the timer fires: no trim then
    memory._trimmer.soon()
    time.sleep(0.2)
    assert trims == [0]
    queue.release()
    _wait_until(lambda: trims == [0, 0])


_FAULTS = """
import resource, sys, torch
import vislib.runtime.memory as memory

def rss():
    return int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()

x = torch.ones(2**24)  # 64 MB, every page written: over glibc's largest threshold for a mapped block
del x
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    x = torch.ones(2**24)
    del x
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
kept = rss()
memory.release_memory()
print(faults, kept - rss())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings")
@pytest.mark.parametrize("setting", ["", "system"])
def test_freed_memory_is_reused_by_the_next_pass_and_handed_back_when_idle(setting):
    env = dict(os.environ, VISLIB_MALLOC=setting)
    out = subprocess.run([sys.executable, "-c", _FAULTS], env=env, capture_output=True, text=True, check=True).stdout
    faults, handed_back = map(int, out.split())
    pages = 20 * 2**26 // 4096
    if setting == "system":  # glibc's defaults: each 64 MB block mapped anew and its pages faulted in again
        assert faults > 0.9 * pages
    else:  # vislib's: the same pages reused; the trim gives the 64 MB back
        assert faults < 0.1 * pages and handed_back > 60 * 2**20, (faults, handed_back)
