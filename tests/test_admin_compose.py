"""The compose -> preview -> confirm flow of a new sendout, through the Django test client."""

import re
import sys
import tracemalloc
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from django.utils import timezone

from d7sms.admin import drafts
from d7sms.admin.recipient_input import read_pasted
from d7sms.client import Balance
from d7sms.errors import ServerError
from d7sms.models import ComposeUpload, Message, Sendout

pytest_plugins = ["tests.admin_support"]
pytestmark = pytest.mark.django_db

URL = "/admin/d7sms/sendout/compose/"
GOOD = "07911 123450"  # +447911123450
OTHER = "+447911123460"


def form(**overrides):
    data = {
        "name": "Spring sale",
        "sender": "MyShop",
        "content": "Hello",
        "recipients": f"{GOOD}\n{OTHER}",
        "region": "GB",
        "dlr_level": "3",
        "mode": "batch",
        "when": "now",
        "where": "local",
        "coding": "8",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def draft_of(response):
    return re.search(r'name="draft" value="([^"]+)"', response.content.decode()).group(1)


def figure(response, key):
    match = re.search(rf'id="d7-{key}"><span class="d7-value">([^<]+)', response.content.decode())
    return match.group(1)


# -- who may compose ------------------------------------------------------------------------


def test_compose_page_shows_the_form_with_defaults(sender_client):
    response = sender_client.get(URL)
    assert response.status_code == 200
    form_ = response.context["form"]
    assert form_["sender"].value() == "D7sms"
    assert form_["region"].value() == "GB"
    assert form_["dlr_level"].value() == 3
    html = response.content.decode()
    assert 'id="d7sms-gsm7"' in html and 'data-gsm7-single="160"' in html
    assert "d7sms/compose.js" in html
    assert "Europe/Berlin" in html  # the schedule is typed in the staff member's time zone


def test_viewers_get_no_compose_page(viewer_client):
    assert viewer_client.get(URL).status_code == 403
    assert viewer_client.post(URL, form()).status_code == 403
    assert viewer_client.get("/admin/d7sms/sendout/add/").status_code == 403


def test_anonymous_users_are_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_add_goes_to_compose(sender_client):
    response = sender_client.get("/admin/d7sms/sendout/add/")
    assert response.status_code == 302 and response["Location"] == URL


def test_compose_needs_csrf(sender_user):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(sender_user)
    assert strict.post(URL, form()).status_code == 403


# -- form errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        ({"sender": "ABCDEFGHIJKL"}, "sender", "up to 11"),
        ({"sender": "Shop!"}, "sender", "up to 11"),
        ({"sender": ""}, "sender", "required"),
        ({"content": "  "}, "content", "Write the message"),
        ({"binary": "on", "hex_content": "abc"}, "hex_content", "odd length"),
        ({"binary": "on", "hex_content": "zz11"}, "hex_content", "non-hex"),
        ({"binary": "on", "hex_content": "0623063", "coding": "8"}, "hex_content", "odd length"),
        ({"binary": "on", "hex_content": "062306", "coding": "8"}, "hex_content", "even number of bytes"),
        ({"binary": "on", "hex_content": "0623", "coding": ""}, "coding", "Choose the coding"),
        ({"when": "later"}, "schedule_at", "Give the date"),
        ({"when": "later", "schedule_at": "2001-01-01T10:00"}, "schedule_at", "has passed"),
        ({"when": "later", "schedule_at": "tomorrow"}, "schedule_at", "valid date"),
        ({"dlr_level": "7"}, "dlr_level", "valid choice"),
        ({"region": "XX"}, "region", "valid choice"),
        ({"recipients": ""}, "recipients", "Paste the numbers"),
    ],
)
def test_form_errors_are_shown_on_the_compose_page(sender_client, overrides, field, text):
    response = sender_client.post(URL, form(**overrides))
    assert response.status_code == 200
    assert response.templates[0].name == "admin/d7sms/sendout/compose.html"
    errors = " ".join(response.context["form"].errors.get(field, []))
    assert text in errors, response.context["form"].errors
    assert "Please correct the error" in response.content.decode()
    assert not Sendout.objects.exists()


def test_remote_schedule_needs_batch_mode(sender_client):
    later = (timezone.localtime() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = sender_client.post(URL, form(when="later", schedule_at=later, where="d7", mode="single"))
    assert "in batches" in " ".join(response.context["form"].errors["mode"])


def test_paste_and_upload_together_is_an_error(sender_client):
    upload = SimpleUploadedFile("list.csv", b"+447911123450\n")
    response = sender_client.post(URL, form(upload=upload))
    assert "not both" in " ".join(response.context["form"].errors["upload"])


def test_unknown_csv_column_name_is_an_error(sender_client):
    upload = SimpleUploadedFile("list.csv", b"name,phone\nAda,+447911123450\n")
    response = sender_client.post(URL, form(recipients="", upload=upload, column="mobile"))
    errors = " ".join(response.context["form"].errors["column"])
    assert "no column named 'mobile'" in errors and "name, phone" in errors


# -- the preview ----------------------------------------------------------------------------


def test_preview_lists_valid_invalid_and_duplicates_without_storing(sender_client, locmem):
    pasted = f"Phone\n{GOOD}\n12345, {OTHER}\n\n+447911123450;not a number\n{OTHER}"
    response = sender_client.post(URL, form(recipients=pasted, content="Hello {friend}"))
    assert response.templates[0].name == "admin/d7sms/sendout/preview.html"
    assert figure(response, "valid") == "2"
    assert figure(response, "invalid") == "2"
    assert figure(response, "duplicates") == "2"
    assert figure(response, "parts") == "1"
    assert figure(response, "total-parts") == "2"
    summary = response.context["summary"]
    assert summary["problems"] == [(3, "12345", "not a valid number in GB"), (5, "not a number", "not a phone number")]
    assert summary["header"] == "Phone"
    assert response.context["first_numbers"] == ["+447911123450", "+447911123460"]
    html = response.content.decode()
    assert "First line read as a header" in html and "cost two" in html
    assert not Sendout.objects.exists() and not Message.objects.exists()


def test_preview_counts_parts_of_long_and_unicode_text(sender_client, locmem):
    response = sender_client.post(URL, form(content="x" * 161))
    assert figure(response, "parts") == "2" and figure(response, "total-parts") == "4"
    response = sender_client.post(URL, form(content="Привет"))
    assert response.context["text_info"].coding == 8
    assert "need UCS-2" in response.content.decode()


def test_preview_of_binary_content(sender_client, locmem):
    response = sender_client.post(URL, form(content="", binary="on", hex_content="0623 0631 0646 0628", coding="8"))
    assert response.context["fields"]["hex_content"] == "0623063106460628"
    assert figure(response, "parts") == "1"
    response = sender_client.post(URL, form(content="", binary="on", hex_content="ab" * 141, coding="4"))
    assert figure(response, "parts") == "2"


def test_preview_reads_an_uploaded_csv_with_header_and_chosen_column(sender_client, locmem):
    data = b"name;phone;city\nAda;07911 123450;London\nBob;12;Paris\nCy;+447911123460;Rome\n"
    for column in ("", "phone", "2"):
        upload = SimpleUploadedFile("people.csv", data, content_type="text/csv")
        response = sender_client.post(URL, form(recipients="", upload=upload, column=column))
        summary = response.context["summary"]
        assert (summary["valid"], summary["invalid"]) == (2, 1), column
        assert summary["problems"] == [(3, "12", "too short")] or summary["problems"][0][0] == 3
        assert summary["source"] == "people.csv" and summary["column"] == "phone"
        assert summary["header"].startswith("name;phone")


def test_preview_of_a_csv_without_header(sender_client, locmem):
    upload = SimpleUploadedFile("plain.csv", b"+447911123450\n+447911123460\n")
    response = sender_client.post(URL, form(recipients="", upload=upload))
    summary = response.context["summary"]
    assert summary["valid"] == 2 and summary["header"] == "" and summary["column"] == "column 1"


def test_preview_reports_rows_missing_the_column(sender_client, locmem):
    upload = SimpleUploadedFile("short.csv", b"a,b,c\n1,2,+447911123450\nonly,two\n")
    response = sender_client.post(URL, form(recipients="", upload=upload, column="3"))
    assert response.context["summary"]["problems"] == [(3, "only, two", "no phone number")]


def test_preview_escapes_what_was_typed(sender_client, locmem):
    response = sender_client.post(
        URL, form(name="<script>alert(1)</script>", content="<b>hi</b>", recipients="<img src=x onerror=alert(1)>")
    )
    html = response.content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>hi</b>" not in html and "<img src=x" not in html


def test_preview_without_valid_numbers_offers_only_back(sender_client, locmem):
    response = sender_client.post(URL, form(recipients="12345\nabc123"))
    html = response.content.decode()
    assert 'id="d7-confirm"' not in html and 'id="d7-back"' in html
    assert "no valid number" in html


# -- balance and cost -------------------------------------------------------------------------


def test_preview_says_when_the_balance_covers_the_cost(sender_client, locmem, settings):
    settings.D7SMS = {**settings.D7SMS, "PRICE_PER_PART": "0.05"}
    locmem.balance = Balance(Decimal(100), None)
    response = sender_client.post(URL, form())
    assert response.context["sufficient"] is True and response.context["cost"] == "0.1"
    assert "The balance covers the 2 parts" in response.content.decode()


def test_preview_compares_an_sms_count_with_the_parts(sender_client, locmem, monkeypatch):
    monkeypatch.setattr(locmem, "balance", Balance(None, 1))
    response = sender_client.post(URL, form())
    assert response.context["sufficient"] is False
    html = response.content.decode()
    assert "Not enough balance" in html and 'name="accept_balance"' in html


def test_confirm_with_too_little_balance_needs_the_box_ticked(sender_client, locmem, monkeypatch):
    monkeypatch.setattr(locmem, "balance", Balance(None, 1))
    draft = draft_of(sender_client.post(URL, form()))
    response = sender_client.post(URL, {"draft": draft, "_action": "confirm"})
    assert response.status_code == 200 and not Sendout.objects.exists()
    assert "tick the box" in response.content.decode()
    response = sender_client.post(URL, {"draft": draft, "_action": "confirm", "accept_balance": "1"})
    assert response.status_code == 302 and Sendout.objects.count() == 1


def test_preview_warns_when_the_balance_is_unknown(sender_client, locmem, settings):
    settings.D7SMS = {**settings.D7SMS, "BALANCE_CACHE_SECONDS": 0}
    locmem.inject(ServerError("D7 is down", status_code=503))
    response = sender_client.post(URL, form())
    assert response.context["sufficient"] is None and response.context["balance"] is None
    html = response.content.decode()
    assert "cannot be read right now" in html and 'id="d7-confirm"' in html


def test_preview_warns_when_the_price_is_unknown(sender_client, locmem):
    response = sender_client.post(URL, form())
    assert response.context["sufficient"] is None
    assert "PRICE_PER_PART" in response.content.decode()


# -- back and confirm ---------------------------------------------------------------------------


def test_back_keeps_everything_typed(sender_client, locmem):
    later = (timezone.localtime() + timedelta(days=2)).replace(second=0, microsecond=0)
    typed = form(
        recipients=f"{GOOD}\n12345",
        content="Hi there",
        when="later",
        schedule_at=later.strftime("%Y-%m-%dT%H:%M"),
        where="d7",
        dlr_level="1",
        column="",
    )
    draft = draft_of(sender_client.post(URL, typed))
    response = sender_client.post(URL, {"draft": draft, "_action": "back"})
    assert response.templates[0].name == "admin/d7sms/sendout/compose.html"
    bound = response.context["form"]
    for name in ("name", "sender", "content", "recipients", "region", "when", "where"):
        assert str(bound[name].value()) == typed[name], name
    assert bound["dlr_level"].value() == 1
    assert bound["schedule_at"].value() == later.replace(tzinfo=None)
    html = response.content.decode()
    assert "12345" in html and later.strftime("%Y-%m-%dT%H:%M") in html
    assert not bound.errors


def upload_ref_of(response):
    return re.search(r'name="upload_ref" value="([^"]+)"', response.content.decode()).group(1)


def test_back_after_an_upload_keeps_the_checked_numbers(sender_client, locmem):
    upload = SimpleUploadedFile("list.csv", b"phone\n+447911123450\n+447911123460\n")
    draft = draft_of(sender_client.post(URL, form(recipients="", upload=upload)))
    response = sender_client.post(URL, {"draft": draft, "_action": "back"})
    assert "Using “list.csv”: 2 rows." in response.content.decode()
    kept = upload_ref_of(response)
    # Previewing again without a new file reuses them, with the fields as now typed.
    response = sender_client.post(URL, form(recipients="", upload_ref=kept, content="Changed"))
    assert response.context["summary"]["source"] == "list.csv"
    assert response.context["fields"]["content"] == "Changed"
    assert response.context["first_numbers"] == ["+447911123450", "+447911123460"]


def test_confirm_sends_exactly_the_previewed_numbers(sender_client, sender_user, locmem, django_capture_on_commit_callbacks):
    draft = draft_of(sender_client.post(URL, form(recipients=f"{GOOD}\n{GOOD}\n12345\n{OTHER}")))
    assert not Sendout.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = sender_client.post(URL, {"draft": draft, "_action": "confirm"})
    sendout = Sendout.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/admin/d7sms/sendout/{sendout.pk}/change/"
    assert sendout.name == "Spring sale" and sendout.sender == "MyShop" and sendout.created_by == sender_user
    assert sendout.recipient_count == 2 and sendout.duplicate_count == 1
    assert sorted(sendout.messages.values_list("to", flat=True)) == ["+447911123450", "+447911123460"]
    assert sorted(m.to for m in locmem.outbox()) == ["+447911123450", "+447911123460"]
    follow = sender_client.get(response["Location"])
    assert "is being sent: 2 messages" in follow.content.decode()


def test_confirm_schedules_locally_or_at_d7(sender_client, locmem):
    later = timezone.localtime() + timedelta(days=1)
    for where in ("local", "d7"):
        typed = form(when="later", schedule_at=later.strftime("%Y-%m-%dT%H:%M"), where=where, name=where)
        response = sender_client.post(URL, {"draft": draft_of(sender_client.post(URL, typed)), "_action": "confirm"})
        assert response.status_code == 302
        sendout = Sendout.objects.get(name=where)
        assert sendout.schedule_at == later.replace(second=0, microsecond=0)
        assert sendout.remote_schedule is (where == "d7")


def test_confirm_with_a_time_now_passed_goes_back_to_the_form(sender_client, locmem, monkeypatch):
    soon = timezone.localtime() + timedelta(minutes=5)
    draft = draft_of(sender_client.post(URL, form(when="later", schedule_at=soon.strftime("%Y-%m-%dT%H:%M"))))
    monkeypatch.setattr(timezone, "now", lambda: soon + timedelta(hours=1))
    response = sender_client.post(URL, {"draft": draft, "_action": "confirm"})
    assert response.status_code == 200 and "has passed" in response.content.decode()
    assert not Sendout.objects.exists()


def test_a_tampered_or_foreign_draft_is_refused(sender_client, locmem, django_user_model):
    draft = draft_of(sender_client.post(URL, form()))
    for bad in (draft[:-3] + "abc", "", drafts.pack(django_user_model.objects.create(username="eve"), {}, ["+1"], {})):
        response = sender_client.post(URL, {"draft": bad, "_action": "confirm"}, follow=True)
        assert response.templates[0].name == "admin/d7sms/sendout/compose.html"
        assert "check the list again" in response.content.decode() or "No draft" in response.content.decode()
    assert not Sendout.objects.exists()


def test_an_expired_draft_is_refused(sender_client, locmem, monkeypatch):
    draft = draft_of(sender_client.post(URL, form()))
    monkeypatch.setattr(drafts, "MAX_AGE", -1)
    response = sender_client.post(URL, {"draft": draft, "_action": "confirm"})
    assert "expired" in response.content.decode() and not Sendout.objects.exists()


# -- large lists ----------------------------------------------------------------------------------


def _big_csv(path_rows):
    upload = TemporaryUploadedFile("big.csv", "text/csv", 0, "utf-8")
    upload.write(b"name;phone\n")
    for i in range(path_rows):
        upload.write(f"Person {i};+44791{i:07d}\n".encode())
    upload.flush()
    return upload


def test_a_list_of_100000_lines_is_checked_in_one_request(sender_client, locmem):
    upload = _big_csv(100_000)
    upload.seek(0)
    response = sender_client.post(URL, form(recipients="", upload=upload))
    assert figure(response, "valid") == "100,000" and figure(response, "invalid") == "0"
    # The list stays on the server: the preview page carries a reference, not the numbers.
    token = draft_of(response)
    assert len(token) < 5_000
    _fields, numbers, summary = drafts.unpack(response.wsgi_request.user, token)
    assert numbers == [] and ComposeUpload.objects.get(pk=summary["upload"]).row_count == 100_000
    assert response.context["first_numbers"][0] == "+447910000000"


def test_reading_a_pasted_list_keeps_the_numbers_once(db):
    text = "\n".join(f"+44791{i:07d}" for i in range(20_000))
    tracemalloc.start()
    collected = read_pasted(text, "GB")
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    kept = sys.getsizeof(collected.numbers) + sum(sys.getsizeof(n) for n in collected.numbers)
    assert len(collected.numbers) == 20_000
    assert peak < kept * 1.5, (peak, kept)


@pytest.mark.parametrize(
    "content",
    [
        {"content": "x" * 161},
        {"content": "Привет " * 12},
        {"content": "", "binary": "on", "hex_content": "ab" * 141, "coding": "4"},
        {"content": "", "binary": "on", "hex_content": "0623" * 71, "coding": "8"},
    ],
)
def test_preview_parts_match_what_is_stored(sender_client, locmem, content):
    response = sender_client.post(URL, form(**content))
    previewed = response.context["parts"]
    sender_client.post(URL, {"draft": draft_of(response), "_action": "confirm"})
    assert Sendout.objects.get().parts == previewed == 2
