"""A camera frame through the network, and a worker that always takes the latest frame.

`analyse_frame` is the frame work of the live page (one forward pass for the top-5 and a layer's
maps, plus a backward pass for Grad-CAM when asked), run through the device queue like every
other pass. `LatestFrame` runs it on its own thread: a camera delivers frames faster than a CPU
classifies them, so frames that arrive while one is being analysed are dropped - only the newest
waits - and the camera's thread only ever hands a frame over, never waits for the device.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import torch
from PIL import Image

from vislib import activations
from vislib.attribution import attribute
from vislib.models import Model
from vislib.runtime import DeviceQueue


@dataclass
class FrameResult:
    """What the network made of one frame."""
    top: list[tuple[int, str, float]]  # (class index, label, probability), highest first - as Model.top_k
    layer: str
    channels: list[int]  # the channels in `maps`, strongest mean activation first
    maps: torch.Tensor  # [len(channels), h, w], CPU float32
    cam: torch.Tensor | None  # Grad-CAM of the top class, [H, W] in the network input's pixels
    seconds: float  # time the analysis took, queue wait included


def analyse_frame(model: Model, picture: Image.Image, layer: str, *, k: int = 5, channels: int | None = 16,
                  cam: bool = False) -> FrameResult:
    """Top-k classes, `layer`'s activation maps (the `channels` strongest; None: all) and optionally
    Grad-CAM of the top class, for one picture (a camera frame). Raises LayerError for a bad layer."""
    started = time.perf_counter()
    model.layer(layer)  # a bad layer name is one sentence before any work
    x = model.preprocess(picture.convert("RGB"))[None]
    logits, seen = activations.capture(model, x, [layer])  # one pass, inside model.running()
    out = seen[layer]
    top = model.ranked(torch.softmax(logits, 1)[0], k)
    maps = out[0]
    if maps.dim() != 3:
        raise ValueError(f"Layer {layer} gives no maps (its output has shape {tuple(out.shape)}); "
                         "choose a convolutional layer.")
    order = activations.channel_order(maps)
    shown = order if channels is None else order[:channels]
    heat = attribute(model, x, "gradcam", top[0][0]) if cam else None
    return FrameResult(top, layer, shown, maps[shown].clone(), heat, time.perf_counter() - started)


class LatestFrame:
    """Analyse frames on a worker thread, newest first: a frame that arrives while another waits replaces it.

    `submit(frame)` never waits for the device (it takes only this object's own short lock), so a
    camera's callback thread is never held up behind other sessions' work. The worker calls
    `work(frame)`, keeps the result with its latency (frame handed over -> result ready) and
    counts the frames it dropped. Sharing: when other work holds or waits for `queue` after a
    frame, the worker pauses so that it takes at most `share` of the device's time, so a live
    camera in one tab slows another session's job by at most about 1 / (1 - share). The worker
    ends after `idle_exit` seconds without frames and starts again with the next one.
    Hand-written: a one-slot mailbox with a fairness pause is a few lines; queue.Queue(maxsize=1)
    would make the producer either block or lose the newest frame instead of the oldest.
    """

    def __init__(self, work: Callable[[Any], Any], queue: DeviceQueue | None = None, share: float = 0.25,
                 idle_exit: float = 5.0, window: int = 20):
        self.work, self.queue, self.share, self.idle_exit = work, queue, share, idle_exit
        self._cond = threading.Condition()
        self._pending: tuple[Any, float] | None = None
        self._thread: threading.Thread | None = None
        self._done: deque[float] = deque(maxlen=window)  # when each of the last results was ready
        self._arrived: deque[float] = deque(maxlen=window)
        self.result: Any = None
        self.error: str | None = None
        self.latency: float | None = None  # seconds from submit to result, of the last result
        self.received = self.processed = self.dropped = 0
        self.paused = 0.0  # seconds spent giving the device to others

    def submit(self, frame: Any) -> None:
        """Hand a frame over (replacing one that is still waiting); returns at once."""
        with self._cond:
            if self._pending is not None:
                self.dropped += 1
            now = time.perf_counter()
            self._pending = (frame, now)
            self._arrived.append(now)
            self.received += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="vislib-live", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _take(self):
        with self._cond:
            if self._pending is None:
                self._cond.wait(self.idle_exit)
            if self._pending is None:
                self._thread = None  # idle: end; the next submit starts a new worker
                return None
            taken, self._pending = self._pending, None
            return taken

    def _loop(self) -> None:
        while (taken := self._take()) is not None:
            frame, handed = taken
            started = time.perf_counter()
            try:
                result, error = self.work(frame), None
            except Exception as err:  # noqa: BLE001 - shown on the page; the camera goes on
                result, error = None, str(err) or type(err).__name__
            ready = time.perf_counter()
            with self._cond:
                if error is None:
                    self.result, self.latency = result, ready - handed
                    self._done.append(ready)
                    self.processed += 1
                self.error = error
            if self.queue is not None and self.queue.ahead() > 0:
                # Others want the device: leave it to them for a while (the camera keeps only its newest frame).
                pause = (ready - started) * (1 / self.share - 1)
                self.paused += pause
                time.sleep(pause)

    @staticmethod
    def _rate(times) -> float:
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0

    def stats(self) -> dict[str, float | int | None]:
        """fps (results per second), camera_fps (frames per second handed over), latency, counts."""
        with self._cond:
            return {"fps": self._rate(list(self._done)), "camera_fps": self._rate(list(self._arrived)),
                    "latency": self.latency, "received": self.received, "processed": self.processed,
                    "dropped": self.dropped, "paused": self.paused}

    def running(self) -> bool:
        with self._cond:
            return self._thread is not None
