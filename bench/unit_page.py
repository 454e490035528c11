"""The unit page of a built atlas (issue 12): its server time, measured in Streamlit's AppTest.

Builds an atlas of one layer of lite0 over the built-in samples (feature visualisations at a few
steps: their quality does not matter here), opens it in the session, then times the unit page's
first view of several channels and a rerun. Goal: at most 0.5 s of server time.

    python bench/unit_page.py [--layer blocks.3.0]
"""
import argparse
import os
import tempfile
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

import vislib
from vislib import atlas

APP = Path(__file__).resolve().parents[1] / "app.py"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layer", default="blocks.3.0")
    args = p.parse_args()
    os.environ["VISLIB_CACHE"] = tempfile.mkdtemp(prefix="vislib-bench-")
    model = vislib.load_model()
    folder = tempfile.mkdtemp(prefix="atlas-")
    started = time.perf_counter()
    atlas.build(model, [args.layer], "samples", folder, k=9, steps=8)
    print(f"atlas of {args.layer} over the samples built in {time.perf_counter() - started:.1f} s")
    at = AppTest.from_file(str(APP), default_timeout=300)
    at.query_params.update({"model": model.name, "layer": args.layer, "channel": "5"})
    at.session_state["atlas"] = folder
    at.run()
    at.switch_page("app_pages/unit.py")
    times = []
    for channel in ("5", "6", "7", "8"):
        at.query_params["channel"] = channel
        started = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - started)
    started = time.perf_counter()
    at.run()
    rerun = time.perf_counter() - started
    assert not at.exception, [e.value for e in at.exception]
    print(f"unit page, first view of 4 channels: {', '.join(f'{t:.2f}' for t in times)} s; a rerun {rerun:.2f} s "
          f"(goal <= 0.5 s)")


if __name__ == "__main__":
    main()
