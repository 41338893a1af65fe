"""Opted-out numbers in a real browser: the compose preview says how many are left out, the
footer counts in the live counter and the preview, and only the others reach the sandbox.

Uses the browser fixtures of tests/test_browser.py (Debian's Chromium; skipped without it).
"""

import json
import urllib.request
from collections import Counter

import pytest

import d7sms
from tests.test_browser import BROWSER, ARTIFACTS, CHROMIUM, browser, page, shot, site, staff  # noqa: F401  (fixtures)

pytestmark = BROWSER

OPTED_OUT = ("+447911123451", "+447911123452")


@pytest.fixture
def opted_out(db):
    """Two numbers on the suppression list, stored before the browser starts (as ``staff``)."""
    for number in OPTED_OUT:
        d7sms.suppress(number, reason="Replied STOP", source="reply")
    return OPTED_OUT


def test_the_preview_leaves_opted_out_numbers_out(staff, opted_out, site, page, sandbox):
    page.goto(site.url + "/admin/login/?next=/admin/d7sms/sendout/compose/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "s3cret-pw")
    page.click("input[type=submit]")
    page.wait_for_selector("#d7sms-compose")

    page.fill("#id_name", "Spring sale")
    page.fill("#id_content", "x" * 150)
    page.locator("#d7-counter").filter(has_text="1 part").wait_for()
    # The footer goes on its own line after the text: 150 + 1 + 21 characters, two parts.
    page.fill("#id_opt_out_footer", "Reply STOP to opt out")
    page.locator("#d7-counter").filter(has_text="2 parts").wait_for()
    assert "172 characters" in page.inner_text("#d7-counter")
    page.fill("#id_recipients", "07911 123450\n07911 123451\n+44 7911 123452\n+447911123453")
    shot(page, "suppression-compose.png")

    page.click("input[name=_preview]")
    page.wait_for_selector("#d7sms-preview")
    assert page.inner_text("#d7-suppressed .d7-value") == "2"
    assert page.inner_text("#d7-suppressed .d7-label") == "opted out, left out"
    assert page.inner_text("#d7-valid .d7-value") == "2"
    assert page.inner_text("#d7-parts .d7-value") == "2"
    assert page.inner_text("#d7-total-parts .d7-value") == "4"
    shown = page.inner_text("#d7-numbers")
    assert "+447911123450" in shown and "+447911123451" not in shown and "+447911123452" not in shown
    assert "Reply STOP to opt out" in page.inner_text(".d7-content")
    shot(page, "suppression-preview.png")

    page.click("#d7-confirm")
    page.wait_for_selector("#d7-follow")
    assert sandbox.wait_idle(30)
    with urllib.request.urlopen(sandbox.url + "/_sandbox/messages", timeout=10) as response:
        reached = json.load(response)
    assert Counter(m["to"] for m in reached) == {"+447911123450": 1, "+447911123453": 1}
    assert {m["content"] for m in reached} == {"x" * 150 + "\nReply STOP to opt out"}
