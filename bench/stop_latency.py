"""How long each long job takes to stop once a stop is requested (goal: at most 1 s on a CPU).

A stop is requested from another thread, as Streamlit's Stop button and a closed browser tab
do; the job notices it at its next step or batch (vislib.device.checkpoint, which the app wires
to Streamlit's stop check), and the time from the request until the job has unwound is printed.
Each job is stopped after `--after` seconds of work, several times at different moments.

    python bench/stop_latency.py [--after 1.5] [--repeats 3]
"""
import argparse
import statistics
import threading
import time


import vislib
from vislib import attribution, device, features, patches, synthesis, trust
from vislib.datasets import open_collection
from vislib.images import sample_images


class Stopped(Exception):
    """What Streamlit's StopException is to the app."""


def stop_latency(job, after: float) -> float | None:
    """Seconds from the stop request (made `after` s into the job) until `job()` has unwound;
    None when the job finished before the request."""
    requested = threading.Event()
    asked_at = []

    def ask():
        asked_at.append(time.perf_counter())
        requested.set()

    def check():
        if requested.is_set():
            raise Stopped

    timer = threading.Timer(after, ask)
    with device.listening(on_check=check):
        timer.start()
        try:
            job()
        except Stopped:
            return time.perf_counter() - asked_at[0]
        finally:
            timer.cancel()
    return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--after", type=float, default=1.5, help="seconds of work before the first stop request")
    p.add_argument("--repeats", type=int, default=3, help="stops per job, each a little later")
    p.add_argument("--only", default="", help="only the jobs whose name contains this")
    args = p.parse_args()
    model = vislib.load_model()
    pictures = sample_images()
    cat, coffee = pictures["chelsea (cat)"](), pictures["coffee"]()
    x = model.preprocess(cat)[None]
    collection = open_collection("fashion-mnist")  # plenty of pictures, resized to 224 px like any other
    layer = "blocks.3.0"
    jobs = {
        "occlusion 224 px": lambda: attribution.occlusion(model, x, 281),
        "integrated gradients": lambda: attribution.integrated_gradients(model, x, 281, steps=64),
        "SmoothGrad": lambda: attribution.smoothgrad(model, x, 281, samples=64),
        "sanity check": lambda: trust.randomisation_check(model, x, 281, ["saliency", "gradcam", "integrated_gradients"]),
        "class image 224 px": lambda: synthesis.class_visualization(model, 1, steps=100),
        "DeepDream": lambda: synthesis.deepdream(model, cat, layer, steps_per_octave=40),
        "inversion": lambda: synthesis.invert(model, cat, layer, steps=100),
        "texture 256 px": lambda: synthesis.texture(model, coffee, steps=100),
        "style transfer 256 px": lambda: synthesis.style_transfer(model, cat, coffee, steps=100),
        # stopped long before it finishes, so its disk cache never answers instead
        "features, 400 pictures": lambda: features.extract(model, collection.subset(range(400))),
        "patches, one pass": lambda: patches.top_state(model, layer, collection.subset(range(400))),
    }
    print(f"{model.name} on {device.describe(model.device)}; stop requested after {args.after} s (+0.3 s per repeat)")
    print(f"{'job':24s} {'median s':>9s} {'max s':>7s}")
    worst = 0.0
    for name, job in ((n, j) for n, j in jobs.items() if args.only in n):
        seconds = [stop_latency(job, args.after + 0.3 * i) for i in range(args.repeats)]
        seconds = [s for s in seconds if s is not None]
        if not seconds:
            print(f"{name:24s} finished before the stop request")
            continue
        worst = max(worst, max(seconds))
        print(f"{name:24s} {statistics.median(seconds):9.2f} {max(seconds):7.2f}", flush=True)
    print(f"slowest stop: {worst:.2f} s (goal <= 1 s on a CPU)")


if __name__ == "__main__":
    main()
