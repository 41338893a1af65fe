"""A personalised sendout in a real browser: upload an .xlsx, write with its merge fields,
preview every recipient's own message, confirm, and find each text at the sandbox.

Uses the browser fixtures of tests/test_browser.py (Debian's Chromium; skipped without it).
"""

import openpyxl

from tests.test_browser import BROWSER, ARTIFACTS, CHROMIUM, browser, page, shot, site, staff  # noqa: F401  (fixtures)

pytestmark = BROWSER

ROWS = [
    ["first name", "mobile", "city"],
    ["Ada", "07911 123450", "Leeds"],
    ["Zoë", "+44 7911 123451", "Köln"],
    ["Bob", "12345", "Paris"],
    ["Cy", "+447911123452", None],
    ["Dee", "447911123453", "Llanfairpwllgwyngyll and more " * 5],
]


def customers_xlsx(path):
    book = openpyxl.Workbook()
    for row in ROWS:
        book.active.append(row)
    book.save(path)
    return path


def test_compose_from_an_xlsx_with_merge_fields_and_confirm(staff, site, page, sandbox, tmp_path):
    page.goto(site.url + "/admin/login/?next=/admin/d7sms/sendout/compose/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "s3cret-pw")
    page.click("input[type=submit]")
    page.wait_for_selector("#d7sms-compose")
    page.fill("#id_name", "Orders ready")

    # Choosing the file reads it at once: its columns come back as merge fields.
    page.set_input_files("#id_upload", str(customers_xlsx(tmp_path / "customers.xlsx")))
    page.wait_for_selector("#d7-merge-fields .d7-merge[data-field='city']")
    assert page.input_value("#id_column") == "mobile"
    assert "Using “customers.xlsx”: 5 rows." in page.inner_text("#d7-kept-upload")
    assert page.input_value("#id_name") == "Orders ready"

    content = page.locator("#id_content")
    content.click()
    content.press_sequentially("Hi ")
    page.click(".d7-merge[data-field='first name']")
    content.press_sequentially(", your order in ")
    page.click(".d7-merge[data-field='city']")
    content.press_sequentially(" is ready")
    assert content.input_value() == "Hi {first name}, your order in {city} is ready"
    # The counter shows the longest message anyone gets: Dee's long town takes two parts.
    counter = page.locator("#d7-counter")
    counter.filter(has_text="Longest message").wait_for()
    assert "2 parts" in counter.inner_text(), counter.inner_text()
    content.press_sequentially(" {town}")
    counter.filter(has_text="Not a column of the file: {town}").wait_for()
    for _ in range(len(" {town}")):
        content.press("Backspace")
    shot(page, "personalised-compose.png")

    page.click("input[name=_preview]")
    page.wait_for_selector("#d7sms-preview")
    assert page.inner_text("#d7-valid .d7-value") == "3"
    assert page.inner_text("#d7-invalid .d7-value") == "2"
    samples = page.inner_text("#d7-samples")
    assert "Hi Ada, your order in Leeds is ready" in samples and "Hi Zoë, your order in Köln is ready" in samples
    assert "first in UCS-2" in samples and "longest" in samples
    problems = page.inner_text("#d7-problems")
    assert "12345" in problems and "No value for {city}" in problems
    lines = [row.split("\t")[0] for row in page.locator("#d7-problems tbody tr").all_inner_texts()]
    assert lines == ["4", "5"]
    assert page.locator("#d7-distribution tr[data-parts='2'] td").nth(1).inner_text() == "1"
    shot(page, "personalised-preview.png")

    page.click("#d7-confirm")
    page.wait_for_selector("#d7-recipients")
    assert "Hi Zoë, your order in Köln is ready" in page.inner_text("#d7-recipients")
    shot(page, "personalised-sendout.png")
    assert sandbox.wait_idle(20)
    got = {m["to"]: m for m in sandbox.accepted()}
    assert got["+447911123450"]["content"] == "Hi Ada, your order in Leeds is ready"
    assert bytes.fromhex(got["+447911123451"]["hex_content"]).decode("utf-16-be") == "Hi Zoë, your order in Köln is ready"
    assert got["+447911123453"]["content"].startswith("Hi Dee, your order in Llanfairpwllgwyngyll")
    assert len(got) == 3
