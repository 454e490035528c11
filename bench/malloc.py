"""What keeping freed memory for the next pass is worth on a CPU (vislib.runtime.reuse_freed_memory):
the same work with glibc's defaults (VISLIB_MALLOC=system) and with vislib's settings, side by
side. Each in a process of its own - malloc's settings are the process's - one after the other:

* 15 passes of efficientnet_lite0 at batch 16, 224 px, in the main thread and in a thread started
  after the import (as Streamlit's script threads are): seconds, system time, page faults;
* one picture's RISE (4000 masks) and Score-CAM (1280 passes) maps, as the Attribution page and
  the leaderboard make them, and a map's five faithfulness scores (--quick: the passes only).

    python bench/malloc.py [--quick]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time


def passes(model, x, rounds: int = 15) -> dict:
    import torch
    with model.running() as net, torch.no_grad():
        for _ in range(2):  # warm: oneDNN's kernels chosen, the pool grown
            net(x)
        before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        for _ in range(rounds):
            net(x)
        after = resource.getrusage(resource.RUSAGE_SELF)
    return {"seconds": time.perf_counter() - started, "system": after.ru_stime - before.ru_stime,
            "faults": after.ru_minflt - before.ru_minflt}


def child(quick: bool) -> None:
    import torch

    from vislib import attribution, load_model
    model = load_model("efficientnet_lite0")
    x = torch.randn(16, 3, 224, 224)
    found = {"main thread": passes(model, x)}
    done = {}
    worker = threading.Thread(target=lambda: done.update(passes(model, x)))
    worker.start()
    worker.join()
    found["a later thread"] = done
    if not quick:
        from PIL import Image
        picture = model.preprocess(Image.effect_noise((300, 300), 64).convert("RGB"))[None]
        for method in ("rise", "scorecam"):
            attribution.attribute(model, picture, method, 1)  # warm
            started = time.perf_counter()
            attribution.attribute(model, picture, method, 1)
            found[f"{method} map"] = {"seconds": time.perf_counter() - started}
        from vislib import trust
        amap = attribution.attribute(model, picture, "edges", 1)
        trust.faithfulness(model, picture, 1, amap)  # warm
        started = time.perf_counter()
        for _ in range(3):
            trust.faithfulness(model, picture, 1, amap)
        found["a map's 5 scores"] = {"seconds": (time.perf_counter() - started) / 3}
    print(json.dumps(found))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.quick)
        return 0
    results = {}
    for name, setting in (("glibc's defaults", "system"), ("vislib's settings", "")):
        env = dict(os.environ, VISLIB_MALLOC=setting, TQDM_DISABLE="1")
        out = subprocess.run([sys.executable, __file__, "--child"] + (["--quick"] if args.quick else []), env=env,
                             capture_output=True, text=True, check=True).stdout
        results[name] = json.loads(out.strip().splitlines()[-1])
    system, ours = results.values()
    for what in system:
        a, b = system[what], ours[what]
        extra = "".join(f", {k} {a[k]:.2f} -> {b[k]:.2f}" if k == "system" else f", page faults {a[k]} -> {b[k]}"
                        for k in ("system", "faults") if k in a)
        print(f"{what:16s} glibc's defaults {a['seconds']:7.2f} s, vislib's {b['seconds']:7.2f} s: "
              f"{a['seconds'] / b['seconds']:.2f}x{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
