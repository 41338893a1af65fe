"""The admin in a real browser: compose, preview, confirm, watch delivery, read why one failed.

Drives Debian's Chromium (``/usr/bin/chromium``) with Playwright against a live server whose
sends go to the sandbox, which calls the live server back with its reports. Screenshots are
saved in ``artifacts/screenshots/`` (ignored by git), or where ``D7SMS_SCREENSHOT_DIR`` says:
``make screenshots`` refreshes the README's, in ``docs/screenshots/``.
"""

import os
import re
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls made by fixtures are
# still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("D7SMS_CHROMIUM") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / (os.environ.get("D7SMS_SCREENSHOT_DIR") or "artifacts/screenshots")

# Every browser test module's marks (pytestmark = BROWSER).
BROWSER = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM),
        reason=f"no Chromium at {CHROMIUM}: install it with `apt-get install chromium` to run the browser tests",
    ),
]
pytestmark = BROWSER


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, timezone_id="Europe/Berlin")
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


@pytest.fixture
def site(live_server, d7_settings):
    """The live server, sending to the sandbox in the request that confirms."""
    d7_settings.D7SMS = {
        **d7_settings.D7SMS,
        "CALLBACK_BASE_URL": live_server.url,
        "SYNC": True,
        "BALANCE_CACHE_SECONDS": 0,
        "PRICE_PER_PART": "0.01",
    }
    return live_server


@pytest.fixture
def staff(django_user_model):
    """A superuser, made before the browser starts: once Playwright's event loop runs, the ORM
    would open a second connection in its context, which nothing closes."""
    return django_user_model.objects.create_superuser("ada", "ada@example.com", "s3cret-pw")


def shot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_compose_preview_confirm_and_follow(staff, site, page):
    page.goto(site.url + "/admin/login/?next=/admin/d7sms/sendout/compose/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "s3cret-pw")
    page.click("input[type=submit]")
    page.wait_for_selector("#d7sms-compose")

    page.fill("#id_name", "Browser test")
    page.fill("#id_content", "Hello from d7sms {see you}")
    # The sandbox delivers numbers ending in 0 and reports those ending in 9 undelivered.
    page.fill("#id_recipients", "07911 123450\n12345\n+44 7911 123459")
    page.locator("#d7-counter").filter(has_text="cost two").wait_for()
    assert "26 characters" in page.inner_text("#d7-counter")
    shot(page, "compose.png")

    page.click("input[name=_preview]")
    page.wait_for_selector("#d7sms-preview")
    assert page.inner_text("#d7-valid .d7-value") == "2"
    assert page.inner_text("#d7-invalid .d7-value") == "1"
    problem = page.inner_text("#d7-problems tbody tr")
    assert "12345" in problem and "2" in problem.split()[0]
    assert "balance covers" in page.inner_text("#d7-cost")
    shot(page, "preview.png")

    page.click("#d7-confirm")
    page.wait_for_selector("#d7-follow")
    page.locator(".d7-progress-text").filter(has_text="100 %").wait_for(timeout=30_000)
    # Once done the page reloads itself, so the server draws the failures; it then settles.
    page.wait_for_selector('#d7-follow[data-settled="1"]', timeout=30_000)
    assert "1 failed recipient" in page.inner_text("#d7-failures h2")
    assert page.locator('#d7-counts tr[data-status="delivered"] [data-count]').inner_text() == "1"
    shot(page, "sendout.png")

    page.click("#d7-failures a:has-text('+447911123459')")
    page.wait_for_selector(".field-why")
    why = page.inner_text(".field-why")
    assert re.search(r"could not deliver", why), why
    assert "UNDELIV" in page.inner_text("#delivery_reports-group")
    shot(page, "message.png")
