import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Chromium as the machine's package manager installs it; the Playwright package drives it and never downloads one.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update",
                 # Lessons play in the test without a click and without a sound card.
                 "--autoplay-policy=no-user-gesture-required", "--mute-audio"]


@pytest.fixture(scope="session")
def browser():
    if CHROMIUM is None:
        pytest.skip("browser tests need Debian chromium: apt-get install chromium (CI installs it)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the Django ORM calls the tests make are
    # ordinary synchronous ones.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    # Assertions wait for the page as long as actions do: a click that navigates returns before the new page
    # is drawn, and a machine running the suite in parallel can take seconds to draw it.
    playwright_api.expect.set_options(timeout=15000)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.set_default_timeout(10000)
    yield page
    context.close()


@pytest.fixture
def storefront_url(live_server):
    port = live_server.url.rsplit(":", 1)[1]

    def url(host: str, path: str = "/") -> str:
        return f"http://{host}:{port}{path}"

    return url


@pytest.fixture(scope="session")
def artifacts_dir():
    """Where screenshots go: ZHIKU_ARTIFACTS, or test-artifacts/ in the project (kept out of git)."""
    from pathlib import Path

    path = Path(os.environ.get("ZHIKU_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts")) / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
