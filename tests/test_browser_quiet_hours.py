"""Quiet hours in a real browser: the compose form's window, the preview's count of what goes at
once and what waits until when, and the sendout page's "waiting for quiet hours" after confirm;
what reached the sandbox is counted.

Uses the browser fixtures of tests/test_browser.py (Debian's Chromium; skipped without it).
"""

import datetime as dt

from django.utils import timezone
from django.utils.formats import date_format

from tests.test_browser import BROWSER, ARTIFACTS, CHROMIUM, browser, page, shot, site, staff  # noqa: F401  (fixtures)
from tests.test_quiet_hours import BERLIN_NUMBERS, LONDON_NUMBERS, closed_in_london_open_in_berlin

pytestmark = BROWSER


def test_preview_shows_release_times_and_the_sendout_page_what_waits(staff, site, page, sandbox):
    # Whole minutes, as the form takes them: open in Berlin now, in London in half an hour.
    start = timezone.now().replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    window, opens = closed_in_london_open_in_berlin(start, minutes=30)
    page.goto(site.url + "/admin/login/?next=/admin/d7sms/sendout/compose/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "s3cret-pw")
    page.click("input[type=submit]")
    page.wait_for_selector("#d7sms-compose")

    page.fill("#id_name", "Evening offer")
    page.fill("#id_content", "Our evening offer")
    page.fill("#id_recipients", "\n".join(LONDON_NUMBERS + BERLIN_NUMBERS))
    page.fill("#id_send_from", window.start.strftime("%H:%M"))
    page.fill("#id_send_until", window.end.strftime("%H:%M"))
    page.click("input[name=_preview]")
    page.wait_for_selector("#d7sms-preview")

    panel = page.locator("#d7-quiet-hours")
    assert window.start.strftime("%H:%M") in panel.locator("h2").inner_text()
    assert page.inner_text("#d7-quiet-at-once strong") == str(len(BERLIN_NUMBERS))
    release = page.locator(".d7-quiet-release")
    assert release.count() == 1
    assert release.locator("strong").inner_text() == str(len(LONDON_NUMBERS))
    # Shown in the site's time zone (Europe/Berlin in the tests).
    assert date_format(timezone.localtime(opens), "DATETIME_FORMAT") in release.inner_text()
    shot(page, "preview-quiet-hours.png")

    page.click("#d7-confirm")
    page.wait_for_selector("#d7-follow")
    held = page.inner_text("#d7-quiet-held")
    assert f"{len(LONDON_NUMBERS)} waiting for quiet hours, next release at" in held
    shot(page, "sendout-quiet-hours.png")

    assert sandbox.wait_idle(20)
    arrived = sorted(m["to"] for m in sandbox.accepted())
    assert arrived == sorted(BERLIN_NUMBERS), "only the numbers inside their window reached D7"
