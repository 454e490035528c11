"""Load test (issue 6): N people use the app at once, on loopback only.

For each N, a fresh `streamlit run app.py` on 127.0.0.1 and one Chromium (the browser tests'
set-up) with N contexts driven at the same time by Playwright's async API. Each session uploads
a picture (Predict), finds the maximally activating patches over the built-in samples (Patches:
every server starts with an empty cache, so the sessions' passes over the collection run at the
same time), waits for the Attribution matrix (the six gradient methods; occlusion has its own
Run button, pressed only with --occlusion), then runs the shortest class image the page allows.
Every result picture the browser shows is fetched from Streamlit's media endpoint and compared
with the same session run alone on its own server. The server's RSS is sampled every 0.5 s.

    python bench/load.py [--sessions 1,4,8,16] [--timeout 900] [--after 60] [--settle 45] [--device cpu] [--occlusion] [--cold]

The server starts as the README says to serve a class, with MALLOC_ARENA_MAX=2 (unless the
environment sets another value). The start level is taken after one warm-up session (it loads
the network), once its tab has been closed for --settle seconds, i.e. after the server has shut
that session down as it will the N sessions'; the end level --after seconds after the N tabs close. Each level's memory map goes to
bench/out/smaps-N-{start,after}.txt.
"""
import argparse
import asyncio
import contextlib
import hashlib
import io
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urljoin

import numpy as np
from PIL import Image

from browser_setup import CHROMIUM, CHROMIUM_ARGS, free_port as _free_port  # the browser set-up the tests use

ROOT = Path(__file__).resolve().parents[1]

# Session i uploads IMAGES[i % 4]. Not chelsea: it is the sidebar's default sample, so its
# Predict heading would not tell that the upload is in use.
IMAGES = ["coffee", "astronaut", "rocket", "motorcycle"]
STEPS, SIZE = 10, 64  # the Class images page's smallest "Steps" and "Size (pixels)"
PANEL = "range "      # the caption of each attribution panel (app_pages/attribution.py)
OUT = ROOT / "bench" / "out"  # git-ignored: the server's log, screenshots of failed sessions


class Server:
    """`streamlit run app.py` on loopback, with its memory sampled every 0.5 s from /proc."""

    def __init__(self, device: str, log: Path):
        self.samples: list[tuple[float, float]] = []  # (time, VmRSS MB)
        self._done = threading.Event()
        self.log = open(log, "a")
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                                      "--server.address", "127.0.0.1"], cwd=ROOT, stdout=self.log,
                                     stderr=subprocess.STDOUT,
                                     # as the README says to serve a class (one memory pool per thread otherwise)
                                     env={"MALLOC_ARENA_MAX": "2", **os.environ, "VISLIB_DEVICE": device,
                                          "VISLIB_CACHE": tempfile.mkdtemp(prefix="vislib-load-")})
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=1)
                break
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    self.stop()
                    sys.exit(f"streamlit did not start within 60 s; see {log}")
                time.sleep(0.3)
        threading.Thread(target=self._sample, daemon=True).start()

    def memory(self) -> dict[str, float]:
        """VmRSS and VmHWM (the peak since the start or `reset_peak`) in MB."""
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines())
        return {key: int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}

    def _sample(self):
        while not self._done.wait(0.5):
            try:
                self.samples.append((time.time(), self.memory()["VmRSS"]))
            except (OSError, KeyError):
                return

    def save_smaps(self, name: str):
        """The server's memory map (/proc/PID/smaps) into bench/out: which mappings hold what."""
        (OUT / name).write_text(Path(f"/proc/{self.proc.pid}/smaps").read_text())

    def reset_peak(self):
        """Start VmHWM afresh (Linux: 5 in clear_refs), so that it covers the sessions only."""
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")

    def peak_since(self, t: float) -> float:
        return max((rss for when, rss in self.samples if when >= t), default=float("nan"))

    def stop(self):
        self._done.set()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


async def until(page, target, timeout_s: float) -> None:
    """Wait for `target`; an exception box fails at once rather than after the whole time limit."""
    from playwright.async_api import expect
    boom = page.get_by_test_id("stException")
    await expect(target.or_(boom).first).to_be_visible(timeout=timeout_s * 1000)
    if await boom.count():
        raise RuntimeError(f"exception box: {(await boom.first.inner_text())[:60]!r}... (see the server's log)")


async def session(browser, url: str, photo: Path, label: str, timeout_s: float, occlusion: bool,
                  shot: Path | None = None) -> dict:
    """One person: upload, Attribution matrix, a short class image. Returns times, pictures, errors;
    on failure the page is saved as the screenshot `shot`."""
    from playwright.async_api import expect
    out = {"photo": photo.stem, "pictures": {}, "exceptions": 0, "error": None}
    stage = "Predict"  # the page a failure happened on
    start = time.perf_counter()
    since = lambda: round(time.perf_counter() - start, 2)  # noqa: E731
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = await context.new_page()
        page.set_default_timeout(timeout_s * 1000)
        await page.goto(url)
        await page.get_by_test_id("stFileUploader").filter(has_text="Your image").locator(
            "input[type=file]").set_input_files(str(photo))
        # the upload is in use once Predict shows its class; only then move on
        await until(page, page.get_by_role("heading", name=re.compile(rf"^{re.escape(label)} \(")), timeout_s)
        await until(page, page.get_by_test_id("stPlotlyChart").first, timeout_s)  # the top-5 chart, drawn after it
        out["predict_s"] = since()

        stage = "Patches"
        await page.get_by_role("link", name="Maximally activating patches").click()
        line = page.get_by_text(re.compile(r"^Activations: "))
        find = page.get_by_role("button", name="Find the patches", exact=True)
        await until(page, line.or_(find), timeout_s)
        if await find.is_visible():  # not when another session's pass has just been saved
            await find.click()
        await until(page, line, timeout_s)
        # the picture with its box is drawn after the activations' line: wait for it before fetching
        await until(page, page.get_by_test_id("stImage").filter(has_text=re.compile(r"^Picture \d+")), timeout_s)
        out["patches_s"] = since()
        out["pictures"]["patches[activations]"] = (await line.inner_text()).encode()
        await fetch(context, url, page.get_by_test_id("stImage").filter(has_text="Picture "), "patches",
                    out["pictures"])
        out["exceptions"] += await page.get_by_test_id("stException").count()

        stage = "Attribution"
        await page.get_by_role("link", name="Attribution").click()
        panels = page.get_by_test_id("stImage").filter(has_text=PANEL)
        await until(page, panels.first, timeout_s)
        out["first_panel_s"] = since()  # the first feedback a person gets on this page
        await until(page, panels.nth(5), timeout_s)
        if occlusion:
            await page.get_by_role("button", name="Run occlusion").click()
            await until(page, panels.nth(6), timeout_s)
        out["matrix_s"] = since()
        await fetch(context, url, panels, "attribution", out["pictures"])
        out["exceptions"] += await page.get_by_test_id("stException").count()

        stage = "Class images"
        await page.get_by_role("link", name="Class images").click()
        await expect(page.get_by_role("heading", name="Class images")).to_be_visible(timeout=timeout_s * 1000)
        for name, value in (("Steps", STEPS), ("Size (pixels)", SIZE)):
            thumb = page.get_by_test_id("stSlider").filter(has_text=name).get_by_role("slider")
            await thumb.focus()
            await thumb.press("Home")  # the slider's smallest value; each change reruns the page
            await expect(page.get_by_test_id("stSlider").filter(has_text=name).get_by_test_id(
                "stSliderThumbValue")).to_have_text(str(value))
        await page.get_by_test_id("stButton").filter(has_text=re.compile(r"^Run$")).locator("button").click()
        clicked = time.perf_counter()
        result = page.get_by_test_id("stImage").filter(has_text=f"({STEPS} of {STEPS} steps")
        step = page.get_by_text(re.compile(rf"^Step [1-9]\d* of {STEPS}$"))
        await until(page, step.or_(result), timeout_s)
        out["run_to_first_step_s"] = round(time.perf_counter() - clicked, 2)  # waiting for the device lock
        await until(page, result, timeout_s)
        out["result_s"] = since()
        await fetch(context, url, result, "class", out["pictures"])
        out["exceptions"] += await page.get_by_test_id("stException").count()
    except (asyncio.CancelledError, Exception) as err:  # a time limit or a broken page: a failed session
        out["error"] = f"on {stage}, " + (f"cancelled by the run's {timeout_s:.0f} s limit" if isinstance(
            err, asyncio.CancelledError) else f"{type(err).__name__}: {str(err).splitlines()[0][:200]}")
        with contextlib.suppress(Exception):
            out["exceptions"] = await page.get_by_test_id("stException").count()
            if shot:
                await page.screenshot(path=shot, full_page=True)
    finally:
        await context.close()
    return out


async def fetch(context, url: str, images, stem: str, into: dict) -> None:
    """The bytes of each <img> in `images`, through the page's own connection (its cookies)."""
    for k, src in enumerate(await images.locator("img").evaluate_all("els => els.map(e => e.getAttribute('src'))")):
        # a fresh connection each: uvicorn drops idle keep-alive ones after 5 s, and a request sent
        # on one as it closes was reset (ECONNRESET)
        response = await context.request.get(urljoin(url, src), headers={"Connection": "close"})
        if not response.ok:  # e.g. a media file Streamlit already dropped
            raise RuntimeError(f"{src}: HTTP {response.status}")
        into[f"{stem}[{k}]"] = await response.body()


def difference(mine: dict, alone: dict) -> tuple[int, float]:
    """(pictures whose bytes differ, largest |pixel difference| 0-255 among them)."""
    differ, worst = 0, 0.0
    for name, data in alone.items():
        if name not in mine:
            print(f"  missing: {name}")
            differ, worst = differ + 1, float("inf")
        elif hashlib.sha256(mine[name]).digest() != hashlib.sha256(data).digest():
            if name.endswith("[activations]"):  # text: it differs or it does not
                print(f"  differs: {name}: {mine[name]!r} alone {data!r}")
                differ, worst = differ + 1, float("inf")
                continue
            a, b = (np.asarray(Image.open(io.BytesIO(x)).convert("RGB"), dtype=np.int16) for x in (mine[name], data))
            differ += 1
            worst = max(worst, float(np.abs(a - b).max()) if a.shape == b.shape else float("inf"))
    return differ, worst


async def run_sessions(browser, url, photos, labels, n, timeout_s, occlusion):
    """N sessions at once, each on photo i % len(photos); cancelled together at the time limit."""
    tasks = [asyncio.create_task(session(browser, url, photos[i % len(photos)], labels[i % len(photos)], timeout_s,
                                         occlusion, OUT / f"load-failed-N{n}-session{i}.png")) for i in range(n)]
    _, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for task in pending:
        task.cancel()
    return [await task for task in tasks]


def p95(values):
    return sorted(values)[math.ceil(0.95 * len(values)) - 1]  # nearest rank


async def main(args):
    from playwright.async_api import async_playwright

    import vislib
    from vislib.images import sample_images
    tmp = Path(tempfile.mkdtemp(prefix="vislib-load-"))
    used = IMAGES[:min(len(IMAGES), max(args.sessions))]
    photos = []
    for name in used:
        photos.append(tmp / f"{name}.png")
        sample_images()[name]().save(photos[-1])
    model = vislib.load_model(device="cpu")  # the heading each upload makes Predict show
    labels = [model.top_k(vislib.load_image(p), 1)[0][1] for p in photos]
    del model
    OUT.mkdir(exist_ok=True)
    log = OUT / "load-streamlit.log"
    log.write_text("")  # every server of this run appends to it
    rows = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

        # each picture alone, one after another on one server: the results to compare with
        server = Server(args.device, log)
        alone = {}
        try:
            for photo, label in zip(photos, labels):
                t = time.perf_counter()
                result = await session(browser, server.url, photo, label, args.timeout, args.occlusion)
                if result["error"]:
                    sys.exit(f"{photo.stem} alone failed: {result['error']}; see {log}")
                alone[photo.stem] = result["pictures"]
                print(f"alone {photo.stem} ({label}): result in {result['result_s']} s "
                      f"(matrix {result['matrix_s']} s), {time.perf_counter() - t:.1f} s with the context's set-up",
                      flush=True)
        finally:
            server.stop()

        for n in args.sessions:
            server = Server(args.device, log)
            try:
                idle_rss = server.memory()["VmRSS"]
                if not args.cold:  # it also loads the network, so that the start level includes it
                    warm = await session(browser, server.url, photos[0], labels[0], args.timeout, args.occlusion)
                    if warm["error"]:
                        sys.exit(f"the warm-up session failed: {warm['error']}; see {log}")
                    # its tab is closed: let the server shut its session down and hand the memory
                    # back, as it will for the N sessions, so that both levels are measured alike
                    await asyncio.sleep(args.settle)
                start_rss = server.memory()["VmRSS"]
                server.save_smaps(f"smaps-{n}-start.txt")
                server.reset_peak()
                t0, began = time.time(), time.perf_counter()
                results = await run_sessions(browser, server.url, photos, labels, n, args.timeout, args.occlusion)
                wall = time.perf_counter() - began
                peak = max(server.peak_since(t0), server.memory()["VmHWM"])
                closed = time.time()
                await asyncio.sleep(args.after)
                after_rss = server.memory()["VmRSS"]
                server.save_smaps(f"smaps-{n}-after.txt")
                curve = [round(rss) for when, rss in server.samples if when >= closed][::20]  # every 10 s
            finally:
                server.stop()
            ok = [r for r in results if not r["error"]]
            same = 0
            print(f"\nN={n}: all sessions ended after {wall:.1f} s", flush=True)
            for i, r in enumerate(results):
                if r["error"]:
                    print(f"  session {i} ({r['photo']}): FAILED {r['error']}; {r['exceptions']} exception boxes")
                    continue
                differ, worst = difference(r["pictures"], alone[r["photo"]])
                same += differ == 0
                print(f"  session {i} ({r['photo']}): predict {r['predict_s']} s, first panel {r['first_panel_s']} s, "
                      f"matrix {r['matrix_s']} s, Run -> first step {r['run_to_first_step_s']} s, result "
                      f"{r['result_s']} s; {r['exceptions']} exception boxes; "
                      + ("identical to alone" if not differ else f"{differ} pictures differ, max |diff| {worst:g}"))
            print(f"  RSS: {idle_rss:.0f} MB idle, {start_rss:.0f} MB at the start, peak {peak:.0f} MB; "
                  f"every 10 s after the contexts closed: {curve} MB")
            times = [r["result_s"] for r in ok]
            rows.append([n, len(ok), n - len(ok), f"{statistics.median(times):.1f}" if times else "-",
                         f"{p95(times):.1f}" if times else "-", f"{peak:.0f}", f"{start_rss:.0f}",
                         f"{after_rss:.0f} ({(after_rss / start_rss - 1) * 100:+.0f}%)", f"{same}/{len(ok)}",
                         sum(r["exceptions"] for r in results)])
        await browser.close()

    print(f"\n{args.device}{', cold server' if args.cold else ''}, {STEPS} steps at {SIZE} px, attribution matrix "
          f"{'with' if args.occlusion else 'without'} occlusion, pictures: {', '.join(used)}")
    header = ["N", "completed", "failed", "median s", "p95 s", "peak RSS MB", "RSS MB at start",
              f"RSS MB {args.after:g} s after close", "identical to alone", "exception boxes"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(map(str, row)) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="1,4,8,16", type=lambda s: [int(n) for n in s.split(",")],
                        help="numbers of simultaneous sessions, comma-separated")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per run of N sessions (and each alone)")
    parser.add_argument("--after", type=float, default=60, help="seconds to wait after the sessions close")
    parser.add_argument("--settle", type=float, default=45,
                        help="seconds after the warm-up session's tab closes before the start level (the server "
                             "shuts a closed tab's session down after 30 s)")
    parser.add_argument("--device", default="cpu", help="VISLIB_DEVICE for the server")
    parser.add_argument("--occlusion", action="store_true", help="also run occlusion in the matrix")
    parser.add_argument("--cold", action="store_true",
                        help="no warm-up: the N sessions are the server's first (the start level is the idle server's)")
    asyncio.run(main(parser.parse_args()))
