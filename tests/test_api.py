"""The public API: validation, storage, on_commit enqueueing, schedules, resends and backends."""

import io
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_q.models import Schedule

import d7sms
from d7sms import api, pause, tasks, webhook_urls
from d7sms.backends import console, locmem
from d7sms.errors import NoRoute
from d7sms.models import AccountState, Sendout, SendoutStatus, Message, MessageStatus, SendMode

S = MessageStatus
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def outbox(settings):
    """The locmem backend (sending in this process on commit), with an empty outbox."""
    settings.D7SMS = {**settings.D7SMS, "BACKEND": "locmem"}
    pause.forget()
    locmem.reset()
    yield locmem.outbox()
    locmem.reset()


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    """Run what the code defers to commit, as a real commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


# -- numbers --------------------------------------------------------------------------------


def test_send_sms_normalises_a_national_number(commit, outbox):
    with commit():
        message = d7sms.send_sms("07911 123456", "Hi")
    assert message.to == "+447911123456"
    assert [m.to for m in outbox] == ["+447911123456"]
    message.refresh_from_db()
    assert message.status == S.ACCEPTED and message.d7_message_id == outbox[0].d7_message_id


def test_send_sms_refuses_an_invalid_number():
    with pytest.raises(ValidationError) as info:
        d7sms.send_sms("12345", "Hi")
    assert "12345" in info.value.messages[0]
    assert not Message.objects.exists()


def test_send_batch_names_every_bad_entry_and_its_position():
    with pytest.raises(ValidationError) as info:
        d7sms.send_batch(["+447911000001", "abc", "07911000002", "123"], "Hi")
    assert info.value.messages == ["#2 'abc': not a phone number", "#4 '123': not a valid number in GB"]
    assert not Sendout.objects.exists() and not Message.objects.exists()


def test_send_batch_removes_and_counts_duplicates(commit, outbox):
    with commit():
        sendout = d7sms.send_batch(["+447911000001", "07911000001", "+447911000002", "+447911000001"], "Hi")
    assert (sendout.recipient_count, sendout.duplicate_count) == (2, 2)
    assert sorted(m.to for m in outbox) == ["+447911000001", "+447911000002"]


def test_send_batch_adds_repeats_the_caller_already_removed(commit, outbox):
    with commit():
        sendout = d7sms.send_batch(["+447911000001", "+447911000001"], "Hi", duplicates_removed=3)
    assert Sendout.objects.get(pk=sendout.pk).duplicate_count == 4


def test_send_batch_takes_any_iterable_once():
    sendout = d7sms.send_batch((f"+44791100{i:04d}" for i in range(10) if i != 7), "Hi")
    assert sendout.messages.count() == 9


def test_send_batch_needs_recipients():
    with pytest.raises(ValidationError):
        d7sms.send_batch([], "Hi")


# -- content --------------------------------------------------------------------------------


def test_gsm_text_is_sent_as_content_with_its_parts():
    message = d7sms.send_sms("+447911000001", "x" * 161)
    assert (message.content, message.hex_content, message.coding, message.parts) == ("x" * 161, "", None, 2)


def test_other_text_is_sent_as_ucs2_hex(commit, outbox):
    with commit():
        message = d7sms.send_sms("+447911000001", "Ünïcødé ☺")
    assert (message.coding, message.parts) == (8, 1)
    assert bytes.fromhex(message.hex_content).decode("utf-16-be") == "Ünïcødé ☺"
    assert outbox[0].params["coding"] == 8 and "content" not in outbox[0].params


def test_hex_content_is_validated_and_needs_its_coding():
    with pytest.raises(ValidationError, match="coding"):
        d7sms.send_sms("+447911000001", hex_content="0041")
    with pytest.raises(ValidationError, match="odd length"):
        d7sms.send_sms("+447911000001", hex_content="004", coding=8)
    message = d7sms.send_sms("+447911000001", hex_content="0623063106460628", coding=8)
    assert (message.hex_content, message.coding, message.parts) == ("0623063106460628", 8, 1)


@pytest.mark.parametrize("content, hex_content", [(None, None), ("", None), ("Hi", "0041")])
def test_exactly_one_kind_of_content(content, hex_content):
    with pytest.raises(ValidationError):
        d7sms.send_sms("+447911000001", content, hex_content=hex_content, coding=8)


def test_sender_and_dlr_level_are_validated():
    with pytest.raises(ValidationError, match="sender"):
        d7sms.send_sms("+447911000001", "Hi", sender="Much too long a name")
    with pytest.raises(ValidationError, match="dlr_level"):
        d7sms.send_sms("+447911000001", "Hi", dlr_level=4)
    assert d7sms.send_sms("+447911000001", "Hi").sender == "D7sms"  # DEFAULT_SENDER


# -- transactions ---------------------------------------------------------------------------


@pytest.fixture
def printed(settings, capsys):
    """The console backend, which sends in this process once the caller commits; returns a
    function giving the recipients it printed so far."""
    settings.D7SMS = {**settings.D7SMS, "BACKEND": "console"}
    return lambda: [line.split()[2] for line in capsys.readouterr().out.splitlines() if line.startswith("SMS to ")]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_caller_sends_nothing(printed):
    with pytest.raises(RuntimeError), transaction.atomic():
        d7sms.send_sms("+447911000001", "Hi")
        d7sms.send_batch(["+447911000002", "+447911000003"], "Hi")
        raise RuntimeError("the caller fails")
    assert printed() == [] and not Message.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_work_waits_for_the_callers_commit(printed):
    with transaction.atomic():
        d7sms.send_sms("+447911000001", "Hi")
        assert printed() == []
    assert printed() == ["+447911000001"]


@pytest.mark.django_db(transaction=True)
def test_the_locmem_outbox_records_at_the_call_like_mail_outbox(outbox):
    """As Django's locmem mail backend: recorded when sent, whatever the transaction does later."""
    with pytest.raises(RuntimeError), transaction.atomic():
        d7sms.send_sms("+447911000001", "Hi")
        assert [m.to for m in outbox] == ["+447911000001"]
        raise RuntimeError("the caller fails")
    assert len(outbox) == 1 and not Message.objects.exists()


def test_with_the_d7_backend_work_goes_to_the_cluster(settings, commit, monkeypatch):
    settings.D7SMS = {**settings.D7SMS, "BACKEND": "d7"}
    calls = []
    monkeypatch.setattr(tasks, "_put", lambda func, *args: calls.append((func, args)))
    with commit():
        message = d7sms.send_sms("+447911000001", "Hi")
        sendout = d7sms.send_batch(["+447911000002", "+447911000003"], "Hi")
    ids = sorted(sendout.messages.values_list("pk", flat=True))
    assert calls == [(tasks.SINGLE_TASK, ([message.pk],)), (tasks.BATCH_CHUNK_TASK, (sendout.pk, ids))]


# -- schedules ------------------------------------------------------------------------------


def test_a_scheduled_message_waits_and_fires_once(commit, outbox):
    at = timezone.now() + timedelta(hours=1)
    with commit():
        message = d7sms.send_sms("+447911000001", "Later", schedule_at=at)
    assert (message.status, message.scheduled_at) == (S.PENDING, at)
    assert Schedule.objects.get(name=tasks.schedule_name(message_id=message.pk)).next_run == at
    assert tasks.fire_task() == 0
    with commit():
        assert tasks.fire_task(now=at + timedelta(seconds=1)) == 1
        assert tasks.fire_task(now=at + timedelta(seconds=2)) == 0
    assert len(outbox) == 1
    assert not Schedule.objects.filter(name__startswith="d7sms-message-").exists()


def test_schedule_at_must_be_aware():
    with pytest.raises(ValidationError, match="timezone-aware"):
        d7sms.send_sms("+447911000001", "Hi", schedule_at=datetime(2030, 1, 1, 9, 0))


def test_a_past_schedule_sends_now(commit, outbox):
    with commit():
        d7sms.send_sms("+447911000001", "Hi", schedule_at=timezone.now() - timedelta(minutes=1))
    assert len(outbox) == 1


def test_cancelling_a_scheduled_batch_stops_it_completely(commit, outbox):
    later = timezone.now() + timedelta(hours=1)
    sendout = d7sms.send_batch(["+447911000001", "+447911000002"], "Later", schedule_at=later)
    assert sendout.status == SendoutStatus.SCHEDULED
    assert api.cancel_sendout(sendout) == 2
    assert sendout.status == SendoutStatus.CANCELLED
    assert not Schedule.objects.filter(name=tasks.schedule_name(sendout_id=sendout.pk)).exists()
    with commit():
        assert tasks.fire_task(now=timezone.now() + timedelta(hours=2)) == 0
    assert outbox == []


def test_cancel_message(commit, outbox):
    message = d7sms.send_sms("+447911000001", "Later", schedule_at=timezone.now() + timedelta(hours=1))
    assert api.cancel_message(message) is True
    assert api.cancel_message(message) is False
    assert Message.objects.get(pk=message.pk).status == S.CANCELLED


def test_remote_schedule_needs_batch_mode_and_a_time():
    at = timezone.now() + timedelta(hours=1)
    with pytest.raises(ValidationError, match="batch mode"):
        d7sms.send_batch(["+447911000001"], "Hi", schedule_at=at, remote_schedule=True, mode=SendMode.SINGLE)
    with pytest.raises(ValidationError, match="schedule_at"):
        d7sms.send_batch(["+447911000001"], "Hi", remote_schedule=True)


def test_remote_schedule_goes_to_d7_at_once(commit, outbox):
    at = timezone.now() + timedelta(hours=1)
    with commit():
        sendout = d7sms.send_batch(["+447911000001"], "Hi", schedule_at=at, remote_schedule=True)
    assert outbox[0].schedule_at == at
    assert sendout.messages.get().status == S.ACCEPTED


# -- resend and retry -----------------------------------------------------------------------


def test_resend_creates_a_new_linked_message(commit, outbox, django_user_model):
    user = django_user_model.objects.create(username="staff")
    locmem.inject(NoRoute("No route found", status_code=412))
    with commit():
        original = d7sms.send_sms("+447911000001", "Hi")
    original.refresh_from_db()
    assert original.status == S.REJECTED
    with commit():
        again = api.resend(original, user=user)
    assert again.pk != original.pk and again.resend_of == original and again.created_by == user
    again.refresh_from_db()
    assert again.status == S.ACCEPTED and [m.message_id for m in outbox] == [again.pk]
    assert Message.objects.get(pk=original.pk).status == S.REJECTED


def test_an_original_sent_again_can_be_deleted_in_code_and_a_number_is_still_stored_once(commit, outbox):
    locmem.inject(NoRoute("No route found", status_code=412))
    with commit():
        sendout = d7sms.send_batch(["+447911000001", "+447911000002"], "Hi", mode=SendMode.SINGLE)
    original = sendout.messages.get(status=S.REJECTED)
    with commit():
        copy = api.resend(original)
    # A retention purge deletes the original: its copy stays, as the recipient's first attempt now.
    Message.objects.filter(pk=original.pk).delete()
    copy.refresh_from_db()
    assert copy.resend_of_id is None and sendout.messages.count() == 2
    # The database still refuses a second first attempt to a number of the sendout.
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(sendout=sendout, to=copy.to, content="Hi")


def test_resend_is_refused_while_the_message_is_on_its_way():
    message = Message.objects.create(to="+447911000001", content="Hi", status=S.QUEUED)
    with pytest.raises(ValidationError, match="still queued") as info:
        api.resend(message)
    assert info.value.code == "in_progress" and not Message.objects.filter(resend_of=message).exists()


def test_retry_failed_resends_each_failure_once(commit, outbox):
    locmem.inject(NoRoute("No route found", status_code=412))
    with commit():
        sendout = d7sms.send_batch(["+447911000001", "+447911000002"], "Hi", mode=SendMode.SINGLE)
    assert sendout.messages.filter(status=S.REJECTED).count() == 1
    with commit():
        assert api.retry_failed(sendout) == 1
    assert api.retry_failed(sendout) == 0
    assert sendout.messages.filter(resend_of__isnull=False, status=S.ACCEPTED).count() == 1
    assert len(outbox) == 2


# -- balance --------------------------------------------------------------------------------


def test_get_balance_stores_the_reading(monkeypatch):
    monkeypatch.setattr(locmem, "balance", locmem.Balance(Decimal("12.50"), 40))
    balance = d7sms.get_balance()
    assert (balance.balance, balance.sms_count) == (Decimal("12.50"), 40)
    state = AccountState.get()
    assert (state.balance, state.sms_count) == (Decimal("12.50"), 40) and state.balance_read_at
    monkeypatch.setattr(locmem, "balance", locmem.Balance(Decimal(1), 1))
    assert d7sms.get_balance(refresh=False).balance == Decimal("12.50")  # the stored, recent reading
    assert d7sms.get_balance().balance == Decimal(1)


# -- backends -------------------------------------------------------------------------------


def test_console_backend_prints_each_message(settings, commit, capsys):
    settings.D7SMS = {**settings.D7SMS, "BACKEND": "console"}
    with commit():
        d7sms.send_batch(["+447911000001", "+447911000002"], "Hello there")
    out = capsys.readouterr().out
    assert out.count("Hello there") == 2 and "SMS to +447911000002 from D7sms" in out


def test_console_backend_writes_to_a_given_stream():
    stream = io.StringIO()
    backend = console.ConsoleBackend(stream)
    message = Message(pk=1, to="+447911000001", content="Hi", sender="Me", dlr_level=0)
    assert backend.send_message(message)
    assert "SMS to +447911000001 from Me" in stream.getvalue()


def test_locmem_records_what_d7_would_receive(commit, outbox):
    with commit():
        sendout = d7sms.send_batch(["+447911000001"], "Hi")
    [sent] = outbox
    message = sendout.messages.get()
    assert sent.message_id == message.pk and sent.d7_batch_id == message.d7_batch_id
    assert sent.params["dlr_url"] == webhook_urls.dlr_url(message.pk)
    assert set(sent.extra) == {"callback_url", "errback_url"}


def test_the_public_api_has_real_signatures():
    import inspect

    assert d7sms.send_sms is api.send_sms and d7sms.send_batch is api.send_batch
    assert d7sms.get_balance is api.get_balance
    assert list(inspect.signature(d7sms.send_sms).parameters)[:2] == ["to", "content"]
    assert inspect.signature(d7sms.send_batch).parameters["mode"].kind is inspect.Parameter.KEYWORD_ONLY
    assert "Sendout" in str(inspect.signature(d7sms.send_batch).return_annotation)
    with pytest.raises(AttributeError, match="no attribute 'send_sendout'"):
        d7sms.send_sendout  # noqa: B018
