"""The live camera: frames per second and latency, and what it costs another session.

1. In Chromium with its fake camera (a moving test pattern, 320 x 240): `streamlit run app.py`, open
   the Live camera page, press START, let it run, and read what the page shows - analysed frames
   per second and frame-to-result latency (goal: >= 8 fps with efficientnet_lite0 at 224 px, top-5
   and one layer's maps, on this CPU).
2. In one process, the engine path the page uses: the Attribution matrix (the five gradient
   methods of bench/gradient_methods.py) timed alone, then while a `vislib.live.LatestFrame`
   worker is fed frames at the camera's rate (goal: <= 1.5x alone). It also reports the longest
   hand-over of a frame (the webrtc callback's whole work) while the device is busy.

    python bench/live.py [--seconds 30] [--repeat 3] [--fps 30] [--skip-browser] [--skip-sharing]
    python bench/live.py --quick      # 10 s in the browser, one matrix each way
    python bench/live.py --engine-only [--device cuda]   # the frame work alone (bench/gpu_check.sh)
"""
import argparse
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from browser_setup import CHROMIUM, CHROMIUM_ARGS  # the browser set-up the tests use

ROOT = Path(__file__).resolve().parents[1]
FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
MATRIX = ["saliency", "guided_backprop", "gradcam", "smoothgrad", "integrated_gradients"]


def browser_figures(seconds: float) -> dict:
    """Run the live page for `seconds` with the fake camera; the figures it shows at the end."""
    from playwright.sync_api import sync_playwright
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                               "--server.address", "127.0.0.1", "--server.headless", "true"], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit("streamlit did not start within 60 s")
                time.sleep(0.2)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + FAKE_CAMERA)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.set_default_timeout(120_000)
            page.goto(f"http://127.0.0.1:{port}/live")
            player = page.frame_locator('iframe[title="streamlit_webrtc.component.webrtc_streamer"]')
            player.get_by_role("button", name="START").click()
            page.get_by_text(re.compile(r"^Analysed [1-9]\d* frames of")).wait_for()
            samples = []
            end = time.time() + seconds
            while time.time() < end:  # the page redraws twice a second; sample it once a second
                time.sleep(1)
                metrics = {m.get_by_test_id("stMetricLabel").inner_text(): m.get_by_test_id("stMetricValue").inner_text()
                           for m in page.get_by_test_id("stMetric").all()}
                samples.append(metrics)
            counts = page.get_by_text(re.compile(r"^Analysed \d+ frames of")).inner_text()
            counts += " " + page.get_by_text(re.compile(r"^The last frame's analysis took")).inner_text()
            browser.close()
    finally:
        server.terminate()
        server.wait(20)
    fps = [float(s["Analysed frames per second"]) for s in samples[len(samples) // 3:]]
    latency = [float(s["Frame-to-result latency"].split()[0]) for s in samples[len(samples) // 3:]
               if s["Frame-to-result latency"] != "-"]
    camera = [float(s["Camera frames per second"]) for s in samples[len(samples) // 3:]]
    return {"fps": statistics.median(fps), "latency_ms": statistics.median(latency) if latency else float("nan"),
            "camera_fps": statistics.median(camera), "counts": counts}


def _camera(device: str | None = None):
    """The network, two alternating 320 x 240 frames (a moving picture, crudely) and the page's
    default layer (the middle one)."""
    import vislib
    from vislib.images import sample_images

    model = vislib.load_model(device=device)
    cat = sample_images()["chelsea (cat)"]()
    frames = [cat.resize((320, 240)), cat.transpose(0).resize((320, 240))]
    return model, cat, frames, model.layers()[len(model.layers()) // 2].name


def sharing(repeat: int, fps: float) -> dict:
    """The Attribution matrix alone and beside a live worker fed at `fps` (the page's own objects)."""
    from vislib import attribution, live
    from vislib.runtime import device_lock

    model, cat, frames, layer = _camera()
    x = model.preprocess(cat)[None]
    target = model.top_k(cat, 1)[0][0]

    def matrix() -> float:
        start = time.perf_counter()
        for method in MATRIX:
            attribution.attribute(model, x, method, target)
        return time.perf_counter() - start

    matrix()  # warm up
    worker = live.LatestFrame(lambda f: live.analyse_frame(model, f, layer), queue=device_lock(model.device),
                              idle_exit=1.0)
    camera_on, stop, handovers = threading.Event(), threading.Event(), []

    def camera():
        i = 0
        while not stop.is_set():
            if camera_on.wait(0.1):
                start = time.perf_counter()
                worker.submit(frames[i % 2])
                handovers.append(time.perf_counter() - start)
                i += 1
                time.sleep(1 / fps)

    feeder = threading.Thread(target=camera, daemon=True)
    feeder.start()
    # Alone and shared, alternately, best of each: the machine's other load drifts, and this keeps
    # the drift out of the ratio.
    alone, shared, live_fps = [], [], []
    for _ in range(repeat):
        alone.append(matrix())
        camera_on.set()
        time.sleep(3)  # the live worker is running at its own pace
        live_fps.append(worker.stats()["fps"])
        shared.append(matrix())
        camera_on.clear()
        while worker.running():
            time.sleep(0.1)
    stats = worker.stats()
    stop.set()
    feeder.join()
    return {"alone": min(alone), "shared": min(shared), "ratio": min(shared) / min(alone),
            "live_fps_alone": max(live_fps), "live_fps_shared_end": stats["fps"],
            "handover_max_ms": max(handovers) * 1000, "dropped": stats["dropped"], "received": stats["received"],
            "paused_s": stats["paused"]}


def engine_alone(device: str | None, frames: int = 60) -> dict:
    """The page's frame work with nothing else running, as fast as it goes: frames per second with
    top-5 and one layer's maps, and with Grad-CAM too (on a GPU: the ">= 30 fps" goal, no browser)."""
    from vislib import live

    model, _, pictures, layer = _camera(device)
    out = {"device": str(model.device), "layer": layer}
    for cam in (False, True):
        for i in range(5):  # warm up (the traced copy, the device's kernels)
            live.analyse_frame(model, pictures[i % 2], layer, cam=cam)
        times = []
        for i in range(frames):
            start = time.perf_counter()
            live.analyse_frame(model, pictures[i % 2], layer, cam=cam)
            times.append(time.perf_counter() - start)
        out["cam" if cam else "maps"] = (len(times) / sum(times), statistics.median(times) * 1000)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=30, help="how long the live page runs in the browser")
    p.add_argument("--repeat", type=int, default=3, help="best of N matrices, alone and shared")
    p.add_argument("--fps", type=float, default=30, help="the camera's frame rate in the sharing test (ui/live.py asks for 30)")
    p.add_argument("--skip-browser", action="store_true")
    p.add_argument("--skip-sharing", action="store_true")
    p.add_argument("--quick", action="store_true", help="10 s in the browser, one matrix each way")
    p.add_argument("--engine-only", action="store_true", help="only the frame work alone, as fast as it goes")
    p.add_argument("--device", default=None, help="for --engine-only (default: vislib's choice)")
    args = p.parse_args()
    if args.engine_only:
        e = engine_alone(args.device)
        for key, what in (("maps", "top-5 + one layer's maps"), ("cam", "top-5 + maps + Grad-CAM")):
            print(f"live engine alone on {e['device']}, lite0 224 px, {what} ({e['layer']}): {e[key][0]:.1f} fps, "
                  f"{e[key][1]:.1f} ms a frame (goal on a GPU: >= 30 fps)")
        return 0
    if args.quick:
        args.seconds, args.repeat = 10, 1
    if not args.skip_browser:
        b = browser_figures(args.seconds)
        print(f"live page, fake camera 320x240, efficientnet_lite0 224 px, top-5 + one layer's maps: "
              f"{b['fps']:.1f} analysed fps (goal >= 8), latency {b['latency_ms']:.0f} ms, "
              f"camera {b['camera_fps']:.1f} fps; {b['counts']}")
    if not args.skip_sharing:
        s = sharing(args.repeat, args.fps)
        print(f"Attribution matrix ({', '.join(MATRIX)}): alone {s['alone']:.2f} s, with a live camera "
              f"{s['shared']:.2f} s, ratio {s['ratio']:.2f} (goal <= 1.5)")
        print(f"live worker: {s['live_fps_alone']:.1f} fps alone, {s['live_fps_shared_end']:.1f} fps "
              f"beside the matrix; {s['dropped']} of {s['received']} frames dropped, {s['paused_s']:.1f} s left to the "
              f"other session; longest frame hand-over {s['handover_max_ms']:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
