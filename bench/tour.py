"""Every guided-tour demo's time at its classroom preset (goal: <= 20 s each on a 2-core CPU).

Runs exactly what the tour's "Run the demo" button runs (ui/tour_demos.py) on the sidebar's
default picture (skimage's cat), each demo twice by default: the first run includes one-off
costs (the sample collection's features, cached on disk; weights warming up), the second is what
a class sees when the teacher clicks. `--preset paper` times the papers' settings (a GPU's).

    PYTHONPATH=. python bench/tour.py [--model efficientnet_lite0] [--preset classroom|paper] [--repeat 2] [--only SLUG,...]
    PYTHONPATH=. python bench/tour.py --quick        # fashion_cnn, one run each: checks the plumbing in seconds
"""
import argparse
import logging
import os
import sys
import time

import vislib
from vislib import runtime
from vislib.images import sample_images

logging.disable(logging.WARNING)  # Streamlit's "no runtime" notices: the demos run without a server
try:  # the app's helpers are not part of the installed package: the checkout's root must be on the path
    from ui import presets, tour_demos
    from ui.tour_steps import STEPS
except ImportError:
    sys.exit("Run from the repository root as: PYTHONPATH=. python bench/tour.py")

GOAL_SECONDS = 20.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="efficientnet_lite0")
    p.add_argument("--preset", choices=["classroom", "paper"], default="classroom")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--only", default="", help="comma-separated step slugs")
    p.add_argument("--quick", action="store_true", help="fashion_cnn, one run each")
    args = p.parse_args()
    if args.quick:
        args.model, args.repeat = "fashion_cnn", 1
    name = presets.CLASSROOM if args.preset == "classroom" else presets.PAPER
    model = vislib.load_model(args.model)
    picture = sample_images()["chelsea (cat)"]()
    wanted = [s for s in args.only.split(",") if s]
    print(f"model={args.model} preset={name!r} device={runtime.describe(model.device)} load={os.getloadavg()[0]:.1f}")
    print(f"{'step':14s} {'first s':>8s} {'best s':>8s}  goal <= {GOAL_SECONDS:.0f} s  shown")
    slow = 0
    for step in STEPS:
        if wanted and step.slug not in wanted:
            continue
        times = []
        for _ in range(max(1, args.repeat)):
            started = time.perf_counter()
            shown = tour_demos.run(step, model, picture, name)
            times.append(time.perf_counter() - started)
        best = min(times)
        verdict = "OK" if best <= GOAL_SECONDS else "SLOW"
        slow += verdict == "SLOW"
        print(f"{step.slug:14s} {times[0]:8.1f} {best:8.1f}  {verdict:10s}  "
              f"{len(shown.images)} picture(s); {shown.lines[0] if shown.lines else ''}", flush=True)
    print(f"{slow} demo(s) over {GOAL_SECONDS:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
