"""Composing a personalised sendout from an uploaded CSV or Excel list, through the test client."""

import io
import re
from datetime import timedelta

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from d7sms import housekeeping
from d7sms.admin import uploads
from d7sms.models import ComposeUpload, Message, MessageTemplate, Sendout

pytest_plugins = ["tests.admin_support"]
pytestmark = pytest.mark.django_db

URL = "/admin/d7sms/sendout/compose/"
TEXT = "Hi {first name}, your order in {city} is ready"


def xlsx(rows, name="customers.xlsx"):
    """An .xlsx file as staff export it: a header row, then one customer per row."""
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    data = io.BytesIO()
    book.save(data)
    return SimpleUploadedFile(name, data.getvalue(), content_type="application/vnd.ms-excel")


CUSTOMERS = [
    ["first name", "Phone", "city", "shop"],
    ["Ada", "07911 123450", "Leeds", "Shop1"],
    ["Zoë", 447911123451, "Köln", "Shop2"],
    ["Bob", "12345", "Paris", "Shop1"],          # line 4: an invalid number
    ["Cy", "+447911123452", None, "Shop1"],      # line 5: a missing city
    [None, None, None, None],                    # line 6: an empty row, skipped
    ["Dee", "+447911123453", "Reykjavík and a very long town name " * 4, "Bad sender!"],
    ["Ada again", "07911123450", "York", "Shop1"],  # line 8: a repeated number
]


def form(**overrides):
    data = {
        "name": "Orders",
        "sender": "MyShop",
        "content": TEXT,
        "recipients": "",
        "region": "GB",
        "dlr_level": "3",
        "mode": "batch",
        "when": "now",
        "where": "local",
        "coding": "8",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def ref_of(response):
    return re.search(r'name="upload_ref" value="([^"]+)"', response.content.decode()).group(1)


def draft_of(response):
    return re.search(r'name="draft" value="([^"]+)"', response.content.decode()).group(1)


def test_reading_the_columns_offers_them_as_merge_fields(sender_client):
    response = sender_client.post(URL, form(_action="columns", content="", upload=xlsx(CUSTOMERS)))
    assert response.templates[0].name == "admin/d7sms/sendout/compose.html"
    html = response.content.decode()
    for name in ("first name", "Phone", "city", "shop"):
        assert f'data-field="{name}"' in html
    assert '<option value="Phone" selected>' in html  # the phone column is found
    # The live counter gets the real rows with each column's longest value (and longest UCS-2 one).
    counter = response.context["counter_rows"]
    assert counter["columns"] == ["first name", "Phone", "city", "shop"]
    assert {row[0] for row in counter["rows"]} == {"Ada again", "Zoë", "Cy", "Dee"}
    kept = ComposeUpload.objects.get()
    assert kept.row_count == 6 and kept.name == "customers.xlsx"  # the empty row is not counted
    assert not Sendout.objects.exists() and not Message.objects.exists()
    # The text typed before the upload is kept.
    response = sender_client.post(URL, form(_action="columns", upload=xlsx(CUSTOMERS)))
    assert response.context["form"]["content"].value() == TEXT


def test_the_preview_renders_each_row_and_says_which_were_left_out_and_why(sender_client, locmem, settings):
    settings.D7SMS = {**settings.D7SMS, "PRICE_PER_PART": "0.05"}
    response = sender_client.post(URL, form(upload=xlsx(CUSTOMERS), sender_column="shop"))
    assert response.templates[0].name == "admin/d7sms/sendout/preview.html"
    summary = response.context["summary"]
    assert (summary["valid"], summary["invalid"], summary["duplicates"]) == (2, 3, 1)
    assert summary["problems"] == [
        (4, "12345", "not a valid number in GB"),
        (5, "Cy, +447911123452, Shop1", "no value for {city}"),
        (7, "Bad sender!", "invalid sender: up to 11 letters, digits or spaces, or a number of up to 15 digits"),
    ]
    samples = {s["to"]: s for s in response.context["samples"]}
    assert samples["+447911123450"]["text"] == "Hi Ada, your order in Leeds is ready"
    assert samples["+447911123450"]["sender"] == "Shop1"
    zoe = samples["+447911123451"]
    assert zoe["ucs2"] and zoe["text"] == "Hi Zoë, your order in Köln is ready" and "first in UCS-2" in zoe["notes"]
    html = response.content.decode()
    assert "Hi Zoë, your order in Köln is ready" in html and "No value for {city}" in html
    assert [(d["parts"], d["recipients"]) for d in response.context["distribution"]] == [(1, 2)]
    assert response.context["total_parts"] == 2 and response.context["cost"] == "0.1"
    assert not Sendout.objects.exists()


def test_the_longest_message_is_shown_with_its_parts(sender_client, locmem):
    rows = [["name", "phone"], ["Al", "+447911123450"], ["B" * 200, "+447911123451"], ["Cé", "+447911123452"]]
    response = sender_client.post(URL, form(upload=xlsx(rows), content="Hi {name}"))
    longest = next(s for s in response.context["samples"] if "longest" in s["notes"])
    assert longest["to"] == "+447911123451" and longest["parts"] == 2
    assert [(d["parts"], d["recipients"]) for d in response.context["distribution"]] == [(1, 2), (2, 1)]
    assert response.context["total_parts"] == 4 and response.context["parts"] == 2


def test_confirm_sends_each_row_its_own_text_sender_and_fields(sender_client, locmem, django_capture_on_commit_callbacks):
    response = sender_client.post(URL, form(upload=xlsx(CUSTOMERS), sender_column="shop"))
    with django_capture_on_commit_callbacks(execute=True):
        done = sender_client.post(URL, {"draft": draft_of(response), "_action": "confirm"})
    sendout = Sendout.objects.get()
    assert done.status_code == 302 and sendout.personalised and sendout.content == TEXT
    assert sendout.columns == ["first name", "Phone", "city", "shop"]
    assert (sendout.recipient_count, sendout.duplicate_count) == (2, 1)
    msgs = {m.to: m for m in sendout.messages.all()}
    assert msgs["+447911123450"].content == "Hi Ada, your order in Leeds is ready" and msgs["+447911123450"].coding is None
    assert msgs["+447911123451"].coding == 8 and msgs["+447911123451"].sender == "Shop2"
    assert msgs["+447911123450"].fields == {"first name": "Ada", "Phone": "07911 123450", "city": "Leeds", "shop": "Shop1"}
    sent = {m.to: m for m in locmem.outbox()}
    assert sent["+447911123450"].content == "Hi Ada, your order in Leeds is ready" and sent["+447911123450"].sender == "Shop1"
    assert bytes.fromhex(sent["+447911123451"].hex_content).decode("utf-16-be") == "Hi Zoë, your order in Köln is ready"
    # The preview's one-time key: a second confirm sends nothing.
    again = sender_client.post(URL, {"draft": draft_of(response), "_action": "confirm"})
    assert again.status_code == 302 and Sendout.objects.count() == 1 and len(locmem.outbox()) == 2


def test_a_csv_works_the_same(sender_client, locmem):
    data = "name;phone;city\nAda;07911 123450;Leeds\nZoë;+447911123451;Köln\n".encode()
    response = sender_client.post(URL, form(upload=SimpleUploadedFile("c.csv", data), content="Hi {name} in {city}"))
    assert response.context["summary"]["valid"] == 2
    assert {s["text"] for s in response.context["samples"]} == {"Hi Ada in Leeds", "Hi Zoë in Köln"}


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("Hi {name}", "no column 'name' for {name}; its columns are: first name, Phone, city, shop"),
        ("Hi {first name", "not closed"),
        ("Hi {city.upper}", "attribute access"),
    ],
)
def test_a_template_the_file_cannot_fill_is_an_error_on_the_message(sender_client, locmem, content, words):
    response = sender_client.post(URL, form(upload=xlsx(CUSTOMERS), content=content))
    assert response.templates[0].name == "admin/d7sms/sendout/compose.html"
    assert words in " ".join(response.context["form"].errors["content"])
    # The list is kept for the next try.
    assert 'name="upload_ref"' in response.content.decode() and ComposeUpload.objects.count() == 1


def test_a_literal_double_brace_that_looks_like_a_field_is_pointed_out(sender_client, locmem):
    response = sender_client.post(URL, form(upload=xlsx(CUSTOMERS), content="Hi {{city}} {first name}"))
    assert "“{{city}}” goes out as the literal text “{city}”" in response.content.decode()


def test_the_kept_list_is_used_again_and_nobody_elses_can_be_named(sender_client, locmem, django_user_model):
    response = sender_client.post(URL, form(_action="columns", upload=xlsx(CUSTOMERS)))
    ref = ref_of(response)
    response = sender_client.post(URL, form(upload_ref=ref, content="Hello {first name}"))
    # Without {city} Cy is sent too, and without a sender column so is Dee.
    assert response.context["summary"]["valid"] == 4 and response.context["summary"]["source"] == "customers.xlsx"
    # Altered, or another user's: refused, and nothing is used.
    other = django_user_model.objects.create(username="eve")
    foreign = uploads.reference(other, ComposeUpload.objects.create(created_by=other, name="x", data=b""))
    for bad in (ref[:-2] + "xx", foreign):
        response = sender_client.post(URL, form(upload_ref=bad))
        assert "could not be read" in response.content.decode()
        assert response.templates[0].name == "admin/d7sms/sendout/compose.html"


def test_an_expired_list_cannot_be_confirmed(sender_client, locmem):
    response = sender_client.post(URL, form(upload=xlsx(CUSTOMERS), content="Hello {first name}"))
    ComposeUpload.objects.update(created_at=timezone.now() - timedelta(days=2))
    assert housekeeping.run()["uploads_purged"] == 1
    response = sender_client.post(URL, {"draft": draft_of(response), "_action": "confirm"})
    assert "has expired" in response.content.decode() and not Sendout.objects.exists()


def test_a_saved_template_can_be_picked_and_its_text_is_copied(sender_client, locmem):
    saved = MessageTemplate.objects.create(name="ready", text=TEXT)
    page = sender_client.get(URL).content.decode()
    assert 'id="d7sms-templates"' in page and '<option value="ready">' in page
    # Without JavaScript, picking a template and leaving the message empty uses its text.
    response = sender_client.post(URL, form(upload=xlsx(CUSTOMERS), content="", template="ready"))
    assert response.context["fields"]["content"] == TEXT
    sender_client.post(URL, {"draft": draft_of(response), "_action": "confirm"})
    saved.text = "Changed"
    saved.save()
    sendout = Sendout.objects.get()
    assert sendout.template_name == "ready" and sendout.content == TEXT
    assert Message.objects.filter(content__startswith="Hi Ada").exists()


def test_an_old_xls_file_is_refused_with_a_clear_word(sender_client):
    upload = SimpleUploadedFile("old.xls", b"\xd0\xcf\x11\xe0" + b"\0" * 100)
    response = sender_client.post(URL, form(_action="columns", upload=upload))
    assert "save it as .xlsx" in response.content.decode()


def test_templates_are_edited_in_the_admin(sender_client, sender_user):
    from django.contrib.auth.models import Permission

    sender_user.user_permissions.add(*Permission.objects.filter(codename__endswith="messagetemplate"))
    response = sender_client.post(
        "/admin/d7sms/messagetemplate/add/", {"name": "x", "text": "Hi {name!r}", "sender": ""}
    )
    assert response.status_code == 200 and "conversion" in response.content.decode()
    response = sender_client.post("/admin/d7sms/messagetemplate/add/", {"name": "x", "text": "Hi {name}", "sender": "Shop"})
    assert response.status_code == 302 and MessageTemplate.objects.get().sender == "Shop"
    listing = sender_client.get("/admin/d7sms/messagetemplate/").content.decode()
    assert "<code>{name}</code>" in listing


# -- following it through -------------------------------------------------------------------------


def _sent(sender_client, locmem, django_capture_on_commit_callbacks, rows=CUSTOMERS):
    response = sender_client.post(URL, form(upload=xlsx(rows), sender_column="shop"))
    with django_capture_on_commit_callbacks(execute=True):
        sender_client.post(URL, {"draft": draft_of(response), "_action": "confirm"})
    return Sendout.objects.get()


def test_the_sendout_page_shows_each_recipients_message_and_columns(sender_client, locmem, django_capture_on_commit_callbacks):
    sendout = _sent(sender_client, locmem, django_capture_on_commit_callbacks)
    html = sender_client.get(f"/admin/d7sms/sendout/{sendout.pk}/change/").content.decode()
    assert 'id="d7-recipients"' in html
    assert "Hi Zoë, your order in Köln is ready" in html and "07911 123450" in html
    assert '<th class="d7-uploaded">first name</th>' in html
    message = sendout.messages.get(to="+447911123451")
    page = sender_client.get(f"/admin/d7sms/message/{message.pk}/change/").content.decode()
    assert "<th>first name</th><td>Zoë</td>" in page


def test_the_export_joins_back_to_the_spreadsheet(sender_client, locmem, django_capture_on_commit_callbacks):
    import csv

    rows = [["status", "Phone", "note"], ["vip", "+447911123450", "+cmd|' /C calc'!A0"], ["new", "07911 123451", "ok"]]
    response = sender_client.post(URL, form(upload=xlsx(rows), content="Hi {status}"))
    with django_capture_on_commit_callbacks(execute=True):
        sender_client.post(URL, {"draft": draft_of(response), "_action": "confirm"})
    sendout = Sendout.objects.get()
    export = sender_client.get(f"/admin/d7sms/sendout/{sendout.pk}/export.csv")
    got = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    by_phone = {r["Phone"]: r for r in got}
    # The phone column as uploaded, untouched, to join on; the message as sent; the d7sms status.
    assert set(by_phone) == {"+447911123450", "07911 123451"}
    assert by_phone["+447911123450"]["message"] == "Hi vip" and by_phone["+447911123450"]["status (uploaded)"] == "vip"
    assert by_phone["+447911123450"]["status"] == "accepted" and by_phone["+447911123450"]["sender"] == "MyShop"
    assert by_phone["+447911123450"]["note"] == "'+cmd|' /C calc'!A0"  # never run as a formula


def test_placeholders_for_pasted_numbers_are_pointed_out(sender_client, locmem):
    response = sender_client.post(URL, form(recipients="07911 123450", content="Hi {name}, {{not this}}"))
    html = response.content.decode()
    assert "The message contains “{name}”, but pasted numbers have no fields" in html
    response = sender_client.post(URL, form(recipients="07911 123450", content="Hi {{there}}"))
    assert 'id="d7-literal-placeholders"' not in response.content.decode()
