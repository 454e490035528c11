"""The basics pages' first render and the depth page's training run.

In one process: Streamlit's AppTest opens the app (the default network loads there, as for any
visitor), then each page of "The basics" is rendered for the first time and its server time
printed - the anatomy, the upsampling page's activation map and the depth page's gradients are
computed then, not cached; then `vislib.basics.depth.train_race` at the page's defaults (8 vs
32 layers, 150 steps of 64 pictures), the run behind the page's button, with its accuracies.
Goals: each first render <= 1 s of server time; the training run <= 30 s on a CPU; the plain deep
network trains worse than its shallow twin and the residual one does not.

    python bench/basics_pages.py [--quick] [--depth 32] [--steps 150]
"""
import argparse
import time

from streamlit.testing.v1 import AppTest

from vislib.basics import depth

PAGES = ["app_pages/anatomy.py", "app_pages/conv_arithmetic.py", "app_pages/upsampling.py", "app_pages/depth.py"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a 12-layer race of 20 steps: checks the plumbing only")
    p.add_argument("--depth", type=int, default=32)
    p.add_argument("--steps", type=int, default=150)
    args = p.parse_args()
    at = AppTest.from_file("../app.py", default_timeout=300)  # relative to this file
    start = time.perf_counter()
    at.run()
    print(f"app opened (default network loaded) in {time.perf_counter() - start:.1f} s")
    for page in PAGES:
        start = time.perf_counter()
        at.switch_page(page).run()
        seconds = time.perf_counter() - start
        problems = [e.value for e in at.exception]
        print(f"first render {page}: {seconds * 1000:.0f} ms server time "
              f"({'OK' if seconds <= 1 and not problems else 'over the 1 s goal' if not problems else problems})",
              flush=True)
    d, steps = (12, 20) if args.quick else (args.depth, args.steps)
    start = time.perf_counter()
    race = depth.train_race(depth=d, steps=steps)
    seconds = time.perf_counter() - start
    print(f"training race, {d} layers, {steps} steps: {seconds:.1f} s ({'OK' if seconds <= 30 else 'over the 30 s goal'})")
    for run in race["runs"]:
        print(f"  {run['name']:<20} test accuracy {run['accuracy']:.3f}  last loss {sum(run['loss'][-10:]) / 10:.3f}"
              f"  {run['seconds']:.1f} s")
    shallow, plain, residual = (r["accuracy"] for r in race["runs"])
    print(f"plain deep worse than shallow: {plain < shallow}; residual deep at least as good as shallow: "
          f"{residual >= shallow}")


if __name__ == "__main__":
    main()
