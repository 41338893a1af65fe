"""The suppression list: a number that opted out is never reached through any door.

What counts is what reached the sandbox, read over HTTP from ``/_sandbox/messages``: sending runs
in this process through the real D7 backend, into the sandbox. The doors: send_sms, send_batch
(batch and single mode), resend, resend_many, retry_failed, a scheduled sendout, and a number
suppressed after its message was stored but before a worker claimed it. Then the opt-out footer
(counted in the parts), the admin (search, CSV import and export, the compose preview), the
STOP keywords and the signals.
"""

import csv
import io
import json
import time
import urllib.request
from collections import Counter
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

import d7sms
from d7sms import api, scheduling, sending, signals, sql, status, suppression
from d7sms.admin import compose
from d7sms.models import Message, MessageStatus, SendMode, Sendout, SendoutStatus, Suppression

pytest_plugins = ["tests.admin_support"]
S = MessageStatus
A, B, C = "+447911000011", "+447911000012", "+447911000013"


@pytest.fixture
def live(d7_settings):
    """Send in this process, through the D7 backend, into the sandbox (no delivery reports)."""
    d7_settings.D7SMS = {**d7_settings.D7SMS, "SYNC": True, "CALLBACK_BASE_URL": ""}
    return d7_settings


@pytest.fixture
def stored_only(live):
    """Store and enqueue nothing in this process: the test runs the worker's code itself."""
    live.D7SMS = {**live.D7SMS, "SYNC": False}
    return live


def received(sandbox):
    """How often each number reached the sandbox, as its ``/_sandbox/messages`` lists them, once
    it has run every batch it queued."""
    assert sandbox.wait_idle(30)
    with urllib.request.urlopen(sandbox.url + "/_sandbox/messages", timeout=10) as response:
        return Counter(m["to"] for m in json.load(response))


def sendout_ids(sendout):
    return list(sendout.messages.order_by("pk").values_list("pk", flat=True))


# -- send_sms -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_send_sms_refuses_a_suppressed_number_unless_told_it_is_transactional(live, sandbox):
    d7sms.suppress(A, reason="Asked by phone")
    with pytest.raises(ValidationError) as caught:
        d7sms.send_sms(A, "Sale!")
    assert caught.value.code == "suppressed" and A in caught.value.messages[0]
    assert not Message.objects.exists()
    d7sms.send_sms(A, "Your code is 1234", ignore_suppression=True)
    d7sms.send_sms(B, "Sale!")
    assert received(sandbox) == {A: 1, B: 1}


# -- send_batch -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode", [SendMode.BATCH, SendMode.SINGLE])
def test_send_batch_leaves_suppressed_numbers_out_and_counts_them(live, sandbox, mode):
    d7sms.suppress(A)
    d7sms.suppress(C)
    sendout = d7sms.send_batch([A, B, "07911 000013", B], "Sale!", mode=mode, user=None)
    assert (sendout.recipient_count, sendout.suppressed_count, sendout.duplicate_count) == (1, 2, 1)
    assert list(sendout.messages.values_list("to", flat=True)) == [B]
    assert received(sandbox) == {B: 1}


@pytest.mark.django_db(transaction=True)
def test_personalised_sendout_leaves_suppressed_numbers_out(live, sandbox):
    d7sms.suppress(B)
    rows = [{"to": A, "name": "Ada"}, {"to": B, "name": "Bob"}, {"to": [C], "name": "Cy"}]
    sendout = d7sms.send_batch(rows, "Hi {name}")
    assert (sendout.recipient_count, sendout.suppressed_count) == (2, 1)
    assert received(sandbox) == {A: 1, C: 1}


@pytest.mark.django_db(transaction=True)
def test_a_sendout_whose_every_recipient_opted_out_stores_nothing(live, sandbox):
    d7sms.suppress(A)
    with pytest.raises(ValidationError) as caught:
        d7sms.send_batch([A], "Sale!")
    assert caught.value.code == "all_suppressed"
    assert not Sendout.objects.exists() and not Message.objects.exists()
    assert received(sandbox) == {}


# -- resend, resend_many, retry_failed ------------------------------------------------------


def _failed_sendout(sandbox, numbers):
    """A sendout accepted by the sandbox whose messages then failed at the handset. The report
    that says so is applied through d7sms.status directly (this test has no webhook server)."""
    sendout = d7sms.send_batch(numbers, "Sale!", mode=SendMode.SINGLE)
    assert received(sandbox) == dict.fromkeys(numbers, 1)
    status.change_many(sendout_ids(sendout), S.UNDELIVERED)
    return sendout


@pytest.mark.django_db(transaction=True)
def test_resend_and_retry_never_reach_a_suppressed_number(live, sandbox):
    sendout = _failed_sendout(sandbox, [A, B, C])
    d7sms.suppress(A)
    first = sendout.messages.get(to=A)
    with pytest.raises(ValidationError) as caught:
        api.resend(first)
    assert caught.value.code == "suppressed"
    copies = api.resend_many([first.pk, sendout.messages.get(to=B).pk])
    assert (len(copies), copies.suppressed) == (1, 1)
    retried = api.retry_failed(sendout)
    assert (retried, retried.suppressed) == (1, 1)  # C; B's failure was already resent
    assert received(sandbox) == {A: 1, B: 2, C: 2}
    # Off the list, the message can be sent again: it was passed over, not used up.
    d7sms.unsuppress(A)
    assert api.resend(first).to == A
    assert received(sandbox) == {A: 2, B: 2, C: 2}


@pytest.mark.django_db(transaction=True)
def test_a_transactional_message_is_resent_even_to_a_suppressed_number(live, sandbox):
    message = d7sms.send_sms(A, "Your code is 1234", ignore_suppression=True)
    status.change_many([message.pk], S.UNDELIVERED)
    d7sms.suppress(A)
    assert api.resend(message).ignore_suppression is True
    assert received(sandbox) == {A: 2}


# -- suppressed after storing, before the claim -----------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("returning", [True, False])
@pytest.mark.parametrize("mode", [SendMode.BATCH, SendMode.SINGLE])
def test_a_number_suppressed_after_storing_is_cancelled_at_the_claim(
    stored_only, sandbox, mode, returning, monkeypatch, django_capture_on_commit_callbacks
):
    if not returning:  # the claim and record of a database without UPDATE ... RETURNING
        monkeypatch.setattr(sql, "updates_return_rows", lambda: False)
    sendout = d7sms.send_batch([A, B, C], "Sale!", mode=mode)
    transactional = d7sms.send_sms(A, "Your code is 1234", ignore_suppression=True)
    d7sms.suppress(A)
    d7sms.suppress(C)
    deadline = time.monotonic() + 30
    with django_capture_on_commit_callbacks(execute=True):  # the sendout's refresh
        if mode == SendMode.BATCH:
            assert sending.send_batch_chunks(sendout.pk, sendout_ids(sendout), deadline=deadline) == []
        else:
            assert sending.send_single(sendout_ids(sendout), deadline=deadline) == []
        assert sending.send_single([transactional.pk], deadline=deadline) == []
    sendout.refresh_from_db()
    assert sendout.status == SendoutStatus.COMPLETED  # the cancelled messages hold nothing up
    assert received(sandbox) == {A: 1, B: 1}  # A: the transactional message only
    cancelled = sendout.messages.filter(status=S.CANCELLED).order_by("to")
    assert [m.to for m in cancelled] == [A, C]
    assert {(m.error_code, m.attempts) for m in cancelled} == {("suppressed", 0)}
    assert "suppression list" in cancelled[0].last_error
    assert Message.objects.get(pk=transactional.pk).status == S.ACCEPTED


@pytest.mark.django_db
def test_a_number_suppressed_while_its_sendout_is_scheduled_is_not_sent(stored_only, sandbox):
    at = timezone.now() + timedelta(hours=1)
    sendout = d7sms.send_batch([A, B], "Later", schedule_at=at)
    assert set(sendout.messages.values_list("status", flat=True)) == {S.PENDING}
    d7sms.suppress(B)
    rows = scheduling.fire_due(at + timedelta(seconds=1))
    assert len(rows) == 2
    assert sending.send_batch_chunks(sendout.pk, [pk for pk, _s, _m in rows], deadline=time.monotonic() + 30) == []
    assert received(sandbox) == {A: 1}
    assert sendout.messages.get(to=B).status == S.CANCELLED


def test_the_claim_cancels_in_the_database_without_reading_the_list_first():
    """The cancellation is one conditional UPDATE whose WHERE asks the suppression table: no
    Python-side read of the list, which a suppression could slip past."""
    statement = str(Message.objects.filter(suppression.blocked_q()).query)
    assert "EXISTS" in statement.upper() and Suppression._meta.db_table in statement


# -- the opt-out footer ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_footer_goes_on_every_message_and_counts_in_its_parts(live, sandbox):
    text = "x" * 150  # one part alone; two with the footer
    sendout = d7sms.send_batch([A, B], text, opt_out_footer="Reply STOP to opt out")
    assert (sendout.content, sendout.opt_out_footer, sendout.parts) == (text, "Reply STOP to opt out", 2)
    assert set(sendout.messages.values_list("parts", flat=True)) == {2}
    assert received(sandbox) == {A: 1, B: 1}
    with urllib.request.urlopen(sandbox.url + "/_sandbox/messages", timeout=10) as response:
        assert {m["content"] for m in json.load(response)} == {text + "\nReply STOP to opt out"}


@pytest.mark.django_db
def test_the_footer_setting_is_the_default_and_personalised_texts_carry_it(stored_only):
    stored_only.D7SMS = {**stored_only.D7SMS, "OPT_OUT_FOOTER": "STOP to 60000"}
    sendout = d7sms.send_batch([{"to": A, "name": "Ada"}, {"to": B, "name": "B" * 150}], "Hi {name}")
    texts = dict(sendout.messages.values_list("to", "content"))
    assert texts[A] == "Hi Ada\nSTOP to 60000"
    assert dict(sendout.messages.values_list("to", "parts")) == {A: 1, B: 2}
    assert sendout.parts == 2 and sendout.opt_out_footer == "STOP to 60000"
    plain = d7sms.send_batch([C], "Hello", opt_out_footer="")
    assert plain.messages.get().content == "Hello"


def test_the_preview_counts_the_footer_in_the_parts():
    fields = {"binary": False, "content": "x" * 150, "opt_out_footer": ""}
    assert compose.message_parts(fields) == 1
    assert compose.message_parts({**fields, "opt_out_footer": "Reply STOP to opt out"}) == 2


@pytest.mark.django_db
def test_a_footer_needs_text_content_and_a_bounded_length(stored_only):
    with pytest.raises(ValidationError) as caught:
        d7sms.send_batch([A], hex_content="0041", coding=8, opt_out_footer="STOP")
    assert caught.value.code == "opt_out_footer"
    with pytest.raises(ValidationError, match="161 characters; keep it to 160") as caught:
        d7sms.send_batch([A], "Hi", opt_out_footer="x" * 161)
    assert not Sendout.objects.exists()


# -- the public API, STOP replies, signals -------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_signals_fire_once_per_change_after_commit():
    seen = []

    def on_suppressed(sender, number, reason, source, **kwargs):
        seen.append(("+", number, reason, source))

    def on_unsuppressed(sender, number, **kwargs):
        seen.append(("-", number))

    signals.number_suppressed.connect(on_suppressed)
    signals.number_unsuppressed.connect(on_unsuppressed)
    try:
        entry = d7sms.suppress("447911000011", reason="Asked")
        d7sms.suppress(A, reason="Again")  # already on the list: nothing changes, nothing said
        assert (entry.number, entry.source, entry.reason) == (A, "api", "Asked")
        assert d7sms.unsuppress(A) is True
        assert d7sms.unsuppress(A) is False
        assert d7sms.opt_out_reply(B, "stop") is True
        suppression.suppress_many([(C, "Imported")], Suppression.Source.IMPORT)
    finally:
        signals.number_suppressed.disconnect(on_suppressed)
        signals.number_unsuppressed.disconnect(on_unsuppressed)
    assert seen == [("+", A, "Asked", "api"), ("-", A), ("+", B, "Replied 'stop'", "reply"), ("+", C, "Imported", "import")]


@pytest.mark.parametrize("text", ["STOP", "stop", " Stop. ", "STOPALL", "unsubscribe", "Cancel", "END", "quit!"])
def test_stop_words_are_recognised(text):
    assert suppression.is_stop(text)


@pytest.mark.parametrize("text", ["", "Please stop", "STOP IT", "stopp", "don't stop", "ENDING", "?"])
def test_other_replies_are_not_opt_outs(text):
    assert not suppression.is_stop(text)


@pytest.mark.django_db
def test_opt_out_reply_suppresses_only_on_a_stop_word():
    assert d7sms.opt_out_reply(A, "Thanks!") is False
    assert not Suppression.objects.exists()
    assert d7sms.opt_out_reply(A, "STOP") is True
    assert Suppression.objects.get().source == "reply"


@pytest.mark.django_db
def test_suppress_refuses_an_invalid_number_or_source(settings):
    with pytest.raises(ValidationError) as caught:
        d7sms.suppress("12345")
    assert caught.value.code == "invalid_number"
    with pytest.raises(ValidationError) as caught:
        d7sms.suppress(A, source="fax")
    assert caught.value.code == "source"
    settings.D7SMS = {**settings.D7SMS, "DEFAULT_REGION": "GB"}
    assert d7sms.suppress("07911 000011").number == A


# -- the admin ---------------------------------------------------------------------------------

LIST = "/admin/d7sms/suppression/"


@pytest.fixture
def list_client(django_user_model, client):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("keeper", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__endswith="_suppression"))
    client.force_login(user)
    return client


def _csv(text, name="list.csv"):
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


@pytest.mark.django_db
def test_admin_search_finds_a_number_by_any_run_of_its_digits(list_client):
    d7sms.suppress(A)
    d7sms.suppress("+447922000123")
    for term in ("000011", "7911 000", "911-0000", A):
        response = list_client.get(LIST, {"q": term})
        assert [s.number for s in response.context["cl"].result_list] == [A], term


@pytest.mark.django_db
def test_import_is_all_or_nothing_and_names_each_bad_line(list_client):
    d7sms.suppress(A)
    upload = _csv("number,reason\n07911 000012,Asked\n12345,x\n+447911000013,\nnot a number,y\n")
    response = list_client.post(LIST + "import/", {"upload": upload, "region": "GB", "reason": ""})
    assert response.status_code == 200
    assert response.context["problems"] == [(3, "12345", "not a valid number in GB"), (5, "not a number", "not a phone number")]
    assert "nothing was imported" in response.content.decode()
    assert list(Suppression.objects.values_list("number", flat=True)) == [A]


@pytest.mark.django_db
def test_export_then_import_gives_back_the_same_list(list_client):
    d7sms.suppress(A, reason="Asked by phone")
    d7sms.suppress(B, reason="=1+1")  # a formula is written so that a spreadsheet will not run it
    d7sms.opt_out_reply(C, "STOP")
    exported = b"".join(list_client.get(LIST + "export/").streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [(r["number"], r["reason"], r["source"]) for r in rows] == [
        (A, "Asked by phone", "api"), (B, "'=1+1", "api"), (C, "Replied 'STOP'", "reply"),
    ]
    before = dict(Suppression.objects.values_list("number", "reason"))
    Suppression.objects.all().delete()
    response = list_client.post(LIST + "import/", {"upload": _csv(exported), "region": "", "reason": "Imported"})
    assert response.status_code == 302
    after = dict(Suppression.objects.values_list("number", "reason"))
    assert after == {**before, B: "'=1+1"}
    assert set(Suppression.objects.values_list("source", flat=True)) == {"import"}
    # Filtered: only what the change list shows.
    filtered = b"".join(list_client.get(LIST + "export/", {"q": "000012"}).streaming_content).decode()
    assert [r["number"] for r in csv.DictReader(io.StringIO(filtered))] == [B]


@pytest.mark.django_db
def test_numbers_added_in_the_admin_are_normalised_and_announced(list_client, settings, django_capture_on_commit_callbacks):
    settings.D7SMS = {**settings.D7SMS, "DEFAULT_REGION": "GB"}
    seen = []
    receiver = lambda sender, number, **kw: seen.append(number)  # noqa: E731
    signals.number_suppressed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = list_client.post(LIST + "add/", {"number": "07911 000011", "reason": "Phoned", "source": "admin"})
    finally:
        signals.number_suppressed.disconnect(receiver)
    assert response.status_code == 302
    entry = Suppression.objects.get()
    assert (entry.number, entry.created_by.username) == (A, "keeper")
    assert seen == [A]
    response = list_client.post(LIST + "add/", {"number": "+447911000011", "reason": "", "source": "admin"})
    assert response.status_code == 200 and "already exists" in response.content.decode()


@pytest.mark.django_db
def test_the_compose_preview_says_how_many_opted_out(sender_client, locmem):
    d7sms.suppress(A)
    d7sms.suppress(B)
    data = {"name": "Sale", "sender": "MyShop", "content": "x" * 150, "opt_out_footer": "Reply STOP to opt out",
            "recipients": f"{A}\n{B}\n{C}", "region": "GB", "dlr_level": "3", "mode": "batch", "when": "now",
            "where": "local", "coding": "8"}
    response = sender_client.post("/admin/d7sms/sendout/compose/", data)
    html = response.content.decode()
    assert 'id="d7-suppressed"><span class="d7-value">2</span><span class="d7-label">opted out, left out' in html
    assert response.context["summary"]["valid"] == 1
    assert (response.context["parts"], response.context["total_parts"]) == (2, 2)
    assert response.context["first_numbers"] == [C]
    response = sender_client.post("/admin/d7sms/sendout/compose/", {"_action": "confirm", "draft": response.context["draft"]})
    sendout = Sendout.objects.get()
    assert (sendout.recipient_count, sendout.suppressed_count, sendout.parts) == (1, 2, 2)
    assert [m.to for m in d7sms.outbox] == [C]


@pytest.mark.django_db
def test_the_preview_of_an_uploaded_list_leaves_opted_out_rows_out(sender_client, locmem):
    d7sms.suppress(B)
    upload = _csv(f"name,phone\nAda,{A}\nBob,{B}\nCy,{C}\n")
    data = {"name": "Sale", "sender": "MyShop", "content": "Hi {name}, " + "x" * 150, "opt_out_footer": "STOP to end",
            "recipients": "", "upload": upload, "region": "GB", "dlr_level": "3", "mode": "batch", "when": "now",
            "where": "local", "coding": "8"}
    response = sender_client.post("/admin/d7sms/sendout/compose/", data)
    summary = response.context["summary"]
    assert (summary["valid"], summary["suppressed"]) == (2, 1)
    # "Hi Ada, " + 150 x is one part alone; the footer makes it two.
    assert (response.context["parts"], summary["total_parts"]) == (2, 4)
    assert B not in response.context["first_numbers"]
    assert 'id="d7-suppressed"><span class="d7-value">1</span>' in response.content.decode()
    sender_client.post("/admin/d7sms/sendout/compose/", {"_action": "confirm", "draft": response.context["draft"]})
    sendout = Sendout.objects.get()
    assert (sendout.recipient_count, sendout.suppressed_count) == (2, 1)
    assert sorted(m.to for m in d7sms.outbox) == [A, C]
    assert {m.content for m in d7sms.outbox} == {"Hi Ada, " + "x" * 150 + "\nSTOP to end", "Hi Cy, " + "x" * 150 + "\nSTOP to end"}


@pytest.mark.django_db
def test_a_unicode_footer_makes_the_messages_ucs2_and_the_sendout_keeps_the_text_as_written(stored_only):
    sendout = d7sms.send_batch([A], "Sale today", opt_out_footer="Répondez STOP ✋")
    message = sendout.messages.get()
    assert (message.content, message.coding, message.parts) == ("Sale today\nRépondez STOP ✋", 8, 1)
    assert bytes.fromhex(message.hex_content).decode("utf-16-be") == message.content
    assert (sendout.content, sendout.hex_content, sendout.coding) == ("Sale today", "", 8)


@pytest.mark.django_db
def test_among_finds_the_same_numbers_whichever_side_is_smaller():
    listed = [f"+44792{i:07d}" for i in range(2000)]
    suppression.suppress_many([(n, "") for n in listed], Suppression.Source.IMPORT)
    few = [listed[5], listed[1999], A]  # fewer than the list: asked about in slices
    many = listed[::2] + [f"+44793{i:07d}" for i in range(3000)]  # more: the list is read once
    assert suppression.among(few) == {listed[5], listed[1999]}
    assert suppression.among(iter(many)) == set(listed[::2])
    assert suppression.among([]) == set()
