"""App speed as a person feels it.

1. Seconds from `streamlit run app.py` to the first prediction shown in Chromium (goal <= 15 s).
2. The Network picker's first render: from a click on it to the first matching name shown after
   typing "resnet5" (issue 24: no slower with every torchvision and timm architecture in it).
3. Server time of a rerun of each page with the network cached (goal <= 0.5 s), measured with
   Streamlit's AppTest, which runs the script exactly as the server does, minus the browser.

    python bench/app_startup.py
"""
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from browser_setup import CHROMIUM, CHROMIUM_ARGS  # the browser set-up the tests use

ROOT = Path(__file__).resolve().parents[1]


def first_prediction_seconds() -> float:
    from playwright.sync_api import sync_playwright
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                               "--server.address", "127.0.0.1"], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            while True:  # a person reloads until the server answers
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_role("heading", level=3).first.wait_for(timeout=120_000)  # the top-1 class
            elapsed = time.perf_counter() - start
            picker = page.get_by_role("combobox", name="Network")
            t = time.perf_counter()
            picker.click()
            picker.press_sequentially("resnet5")
            page.get_by_role("option", name=re.compile(r"^resnet50")).first.wait_for(timeout=60_000)
            picked = time.perf_counter() - t
            browser.close()
            return elapsed, picked
    finally:
        server.terminate()
        server.wait(10)


def rerun_seconds() -> dict[str, float]:
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    times = {}
    for page in ["app_pages/predict.py", "app_pages/filters.py", "app_pages/activations.py"]:
        at.switch_page(page).run()  # first visit fills the caches
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            at.run()
            best = min(best, time.perf_counter() - t)
        assert not at.exception, [e.value for e in at.exception]
        times[page] = best
    return times


if __name__ == "__main__":
    print(f"device: CPU, {os.cpu_count()} cores")
    first, picker = first_prediction_seconds()
    print(f"streamlit run -> first prediction shown: {first:.1f} s (goal <= 15 s)")
    print(f"Network picker: click, type 'resnet5' -> resnet50 shown: {picker * 1000:.0f} ms")
    for page, seconds in rerun_seconds().items():
        print(f"rerun {page}: {seconds * 1000:.0f} ms server time (goal <= 500 ms)")
