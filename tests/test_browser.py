"""End to end: the real app in a real browser: a deep link to a fresh server, a small sweep, its charts.

Starts ``streamlit run app.py`` on a free port with a temporary cache
(``TTC_CACHE``), drives Debian's chromium with Playwright, and saves a
screenshot to ``artifacts/``.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                                                              "(apt-get install chromium; .ci/run does this)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"streamlit did not become healthy at {url} in {timeout}s")


@pytest.fixture
def app_server(tmp_path):
    """The app on a free port with a new temporary cache; yields (url, model name)."""
    model = "arith-s"
    port = _free_port()
    # a new user's first start: an empty cache that the app fills with the shipped sweeps
    env = {**os.environ, "TTC_CACHE": str(tmp_path / "samples.duckdb"), "PYTHONUNBUFFERED": "1", "TTC_SHIPPED": "1"}
    log = open(tmp_path / "streamlit.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--browser.gatherUsageStats", "false"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield url, model
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        print((tmp_path / "streamlit.log").read_text()[-3000:])


def test_explore_sweep_draws_three_charts(app_server):
    from playwright.sync_api import sync_playwright
    url, model = app_server
    artifacts = ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1900})
            try:
                _sweep_and_check(page, url, model, artifacts)
            except Exception:
                page.screenshot(path=str(artifacts / "explore_failure.png"), full_page=True)
                raise
        finally:
            browser.close()


def _sweep_and_check(page, url, model, artifacts):
    from playwright.sync_api import expect
    # first request to the fresh server: a deep link to a page in pages/. Streamlit's legacy pages/ mode
    # runs that file directly; the page must still come up through app.py, with the shared sidebar, and
    # full: the shipped sweeps are loaded on first start, so nothing has to be run to see the answer.
    page.goto(f"{url}/size_vs_compute?models=arith-s&models=arith-xl&problems=20&budget=64")
    expect(page.get_by_role("heading", name="Size vs compute")).to_be_visible(timeout=60_000)
    expect(page.get_by_role("textbox", name="Cache file")).to_be_visible()
    expect(page.get_by_test_id("stSidebarNav").get_by_text("Problem inspector")).to_be_visible()
    expect(page.locator(".js-plotly-plot")).to_have_count(5, timeout=120_000)  # frontiers, bars, heatmap
    expect(page.get_by_text("Verdict.")).to_be_visible()
    assert "/size_vs_compute?" in page.url and "budget=64" not in page.url  # (params equal to defaults drop)
    assert page.locator(".stException").count() == 0
    page.wait_for_timeout(1000)  # let plotly finish drawing before the screenshot
    page.screenshot(path=str(artifacts / "size_vs_compute.png"), full_page=True)

    # settings nothing has sampled yet: the page says so, Run fills the cache and draws the charts
    page.goto(f"{url}/?models={model}&problems=4&budget=4&temp=0.5&strategy=majority")
    run = page.get_by_role("button", name="Run")
    expect(run).to_be_enabled(timeout=60_000)
    expect(page.get_by_text("No samples cached for these settings yet")).to_be_visible(timeout=30_000)
    run.click()
    charts = page.locator(".js-plotly-plot")
    expect(charts).to_have_count(3, timeout=240_000)
    expect(page.get_by_text("Cost at 4 samples per problem")).to_be_visible()
    page.wait_for_timeout(1000)
    page.screenshot(path=str(artifacts / "explore.png"), full_page=True)
    assert page.get_by_test_id("stPlotlyChart").count() >= 3
    assert page.locator(".stException").count() == 0

    # one problem under a scoring strategy: the sample cards, and which one best-of-N by self-likelihood picks
    page.goto(f"{url}/inspector?model={model}&budget=4&temp=0.5&strategy=best-of-N&strategy_scorer=self-likelihood")
    expect(page.get_by_text("Pick (best-of-N · self-likelihood)")).to_be_visible(timeout=60_000)
    expect(page.locator(".ttc-sample")).to_have_count(4)
    assert page.locator(".stException").count() == 0
    page.screenshot(path=str(artifacts / "inspector.png"), full_page=True)
