"""The staff conveniences and the sendout page's polish in a real browser: dark mode, a 390 px
phone, live progress without a reload, send a test, duplicate, archive instead of delete.

Uses the browser fixtures of tests/test_browser.py (Debian's Chromium; skipped without it).
Screenshots go where that module's go (``make screenshots``: docs/screenshots/).
"""

from tests.test_browser import BROWSER, CHROMIUM, browser, page, shot, site, staff  # noqa: F401  (fixtures)

pytestmark = BROWSER

# The sandbox delivers numbers ending in 0 and reports those ending in 9 undelivered.
RECIPIENTS = "+447911123450\n+447911123460\n+447911123459"


def log_in(page, site, next_url="/admin/d7sms/sendout/compose/"):
    page.goto(f"{site.url}/admin/login/?next={next_url}")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "s3cret-pw")
    page.click("input[type=submit]")


def compose_and_preview(page, name="Staff test", recipients=RECIPIENTS):
    page.wait_for_selector("#d7sms-compose")
    page.fill("#id_name", name)
    page.fill("#id_content", "Your order is ready")
    page.fill("#id_recipients", recipients)
    page.click("input[name=_preview]")
    page.wait_for_selector("#d7sms-preview")


def finished_sendout(page, site):
    """Compose, confirm and wait for a three-recipient sendout (one fails) to finish."""
    log_in(page, site)
    compose_and_preview(page)
    page.click("#d7-confirm")
    page.wait_for_selector('#d7-follow[data-settled="1"]', timeout=40_000)


def test_progress_is_announced_live_without_a_reload_and_focus_stays(staff, site, page):
    log_in(page, site)
    compose_and_preview(page)
    page.click("#d7-confirm")
    page.wait_for_selector("#d7-follow")
    page.evaluate("window.d7StillHere = true")
    page.focus("#d7-export")
    live = page.locator("#d7-live")
    assert live.get_attribute("aria-live") == "polite" and live.get_attribute("role") == "status"
    live.filter(has_text="Sendout finished").wait_for(timeout=40_000)
    page.wait_for_selector('#d7-follow[data-settled="1"]')
    assert page.evaluate("window.d7StillHere") is True  # the page was not reloaded
    assert page.evaluate("document.activeElement.id") == "d7-export"
    assert live.inner_text() == "Sendout finished: 2 delivered, 1 failed."
    # What only the server draws came in without a reload: the failures and the retry button.
    assert "1 failed recipient" in page.inner_text("#d7-failures h2")
    assert page.locator("#d7-retry").is_visible()
    assert page.locator('[data-group-count="delivered"]').inner_text() == "2"
    shot(page, "sendout-finished.png")


def _fill(page, selector, prop):
    return page.evaluate(f"getComputedStyle(document.querySelector('{selector}')).{prop}")


def test_dark_mode_colours_the_chart_and_the_bar(browser, staff, site):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="dark", timezone_id="Europe/Berlin")
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        finished_sendout(page, site)
        page.wait_for_selector("#d7-chart .d7c-delivered")
        assert _fill(page, "#d7-chart .d7c-bg", "fill") == "rgb(18, 18, 18)"  # the admin's dark --body-bg
        assert _fill(page, "#d7-chart .d7c-text", "fill") != "rgb(102, 102, 102)"
        assert _fill(page, ".d7-large .d7-seg-delivered", "backgroundColor") == "rgb(179, 218, 255)"
        shot(page, "sendout-dark.png")
        # The admin's theme toggle wins over the system's preference, both ways.
        page.evaluate("document.documentElement.dataset.theme = 'light'")
        assert _fill(page, "#d7-chart .d7c-bg", "fill") == "rgb(255, 255, 255)"
        assert _fill(page, ".d7-large .d7-seg-delivered", "backgroundColor") == "rgb(11, 47, 102)"
        page.evaluate("document.documentElement.dataset.theme = 'dark'")
        assert _fill(page, "#d7-chart .d7c-bg", "fill") == "rgb(18, 18, 18)"
    finally:
        context.close()


def test_a_390_px_phone_scrolls_no_page_sideways(browser, staff, site):
    context = browser.new_context(viewport={"width": 390, "height": 844}, timezone_id="Europe/Berlin")
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        finished_sendout(page, site)
        page.wait_for_selector("#d7-failures table")
        widths = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1], widths
        shot(page, "sendout-phone.png")
    finally:
        context.close()


def test_send_a_test_from_the_preview(staff, site, page, sandbox):
    log_in(page, site)
    compose_and_preview(page)
    page.fill("#d7-test-to", "+447911123470")
    page.press("#d7-test-to", "Enter")  # Enter in the number field sends the test, not the sendout
    page.locator(".messagelist").filter(has_text="A test message is on its way to +447911123470").wait_for()
    assert [(m["to"], m["content"]) for m in sandbox.accepted()] == [("+447911123470", "Your order is ready")]
    assert page.locator("#d7-confirm").is_visible()  # still the preview: the sendout waits for confirm
    shot(page, "preview-test.png")


def test_duplicate_a_sendout_and_archive_the_original(staff, site, page, sandbox):
    finished_sendout(page, site)
    sent = len(sandbox.accepted())
    original = page.url
    # A sendout that reached D7 offers no delete; its delete page explains and sends back.
    assert page.locator(".deletelink").count() == 0
    page.goto(original.replace("/change/", "/delete/"))
    page.locator(".messagelist").filter(has_text="was not deleted: it handed messages to D7").wait_for()
    assert page.url == original

    page.click("#d7-duplicate")
    page.wait_for_selector("#d7sms-compose")
    assert page.input_value("#id_name") == "Copy of Staff test"
    assert page.input_value("#id_content") == "Your order is ready"
    assert page.input_value("#id_recipients").split("\n") == RECIPIENTS.split("\n")
    shot(page, "duplicate.png")
    assert len(sandbox.accepted()) == sent  # nothing was sent by duplicating

    page.goto(original)
    page.click("#d7-archive")
    page.locator(".messagelist").filter(has_text="is archived").wait_for()
    page.goto(site.url + "/admin/d7sms/sendout/")
    assert "Staff test" not in page.inner_text("#result_list") if page.locator("#result_list").count() else True
    page.goto(site.url + "/admin/d7sms/sendout/?archived=yes")
    assert "Staff test" in page.inner_text("#result_list")


def test_the_schedule_is_typed_in_the_browsers_time_zone_and_says_so(browser, staff, site):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="America/New_York")
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        log_in(page, site)
        page.wait_for_selector("#d7sms-compose")
        page.check("input[name=when][value=later]")
        help_text = page.inner_text("#id_schedule_at_helptext")
        assert "In your time zone, America/New_York (your browser's)." in help_text  # not the site's Berlin
        page.fill("#id_content", "Doors open at nine")
        page.fill("#id_recipients", "+447911123450")
        page.fill("#id_schedule_at", "2030-01-15T09:00")
        shot(page, "compose-time-zone.png")
        page.click("input[name=_preview]")
        page.wait_for_selector("#d7sms-preview")
        assert "9 a.m. America/New_York" in page.inner_text("#d7sms-preview")
        page.click("#d7-confirm")
        page.wait_for_selector("#d7-follow")
        # Stored in UTC (14:00), shown on the sendout page in the site's zone (Berlin, 15:00).
        assert "Jan. 15, 2030, 3 p.m." in page.inner_text(".field-schedule_at")
    finally:
        context.close()
