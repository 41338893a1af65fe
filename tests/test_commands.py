"""Management commands: d7sms_send, d7sms_balance, d7sms_setup, and their exit codes."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_q.models import Schedule

from d7sms import pause, tasks
from d7sms.backends import locmem
from d7sms.models import AccountState, Sendout, Message, MessageStatus

S = MessageStatus
pytestmark = pytest.mark.django_db


@pytest.fixture
def local(settings):
    settings.D7SMS = {**settings.D7SMS, "BACKEND": "locmem"}
    return settings


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue()


def exit_code(*args):
    with pytest.raises(CommandError) as info:
        call_command(*args, stdout=io.StringIO(), stderr=io.StringIO())
    return info.value.returncode, str(info.value)


def test_send_one(local, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        out = run("d7sms_send", "--to", "07911123456", "--content", "Hello")
    message = Message.objects.get()
    assert f"Message {message.pk} to +447911123456 queued." in out
    assert [m.content for m in locmem.outbox()] == ["Hello"]


def test_send_several_is_a_sendout(local):
    out = run("d7sms_send", "--to", "+447911000001", "--to", "+447911000002", "--to", "+447911000001",
              "--content", "Hi", "--sender", "Shop")
    sendout = Sendout.objects.get()
    assert (sendout.recipient_count, sendout.duplicate_count, sendout.sender) == (2, 1, "Shop")
    assert "2 recipient(s), 1 duplicate(s) removed" in out


def test_send_at_a_local_time(local, settings):
    at = (timezone.localtime() + timedelta(days=1)).replace(tzinfo=None, microsecond=0)
    out = run("d7sms_send", "--to", "+447911000001", "--content", "Later", "--at", at.isoformat())
    message = Message.objects.get()
    assert message.status == S.PENDING and "scheduled for" in out
    assert timezone.localtime(message.scheduled_at).replace(tzinfo=None) == at


def test_send_invalid_input_exits_2(local):
    code, text = exit_code("d7sms_send", "--to", "+447911000001", "--to", "nonsense", "--content", "Hi")
    assert code == 2 and "#2 'nonsense'" in text
    assert exit_code("d7sms_send", "--to", "+447911000001", "--content", "Hi", "--at", "tomorrow")[0] == 2
    assert not Message.objects.exists()


def test_send_while_paused_exits_3(local):
    AccountState.get()
    pause.pause("D7 rejected the credentials")
    code, text = exit_code("d7sms_send", "--to", "+447911000001", "--content", "Hi")
    assert code == 3 and "paused" in text
    assert Message.objects.get().status == S.QUEUED


def test_balance(d7_settings):
    out = run("d7sms_balance")
    assert "Balance: 100" in out and "SMS count: ND" in out


def test_balance_lifts_a_pause(d7_settings, django_capture_on_commit_callbacks):
    AccountState.get()
    pause.pause("no credit")
    with django_capture_on_commit_callbacks(execute=True):
        out = run("d7sms_balance")
    assert "Sending resumed." in out and not AccountState.get().paused


def test_balance_with_wrong_credentials_exits_1(d7_settings):
    d7_settings.D7SMS = {**d7_settings.D7SMS, "PASSWORD": "nope"}
    code, text = exit_code("d7sms_balance")
    assert code == 1 and "nope" not in text


def test_balance_unreachable_exits_3(settings):
    settings.D7SMS = {**settings.D7SMS, "BASE_URL": "http://127.0.0.1:9", "CONNECT_TIMEOUT": 1}
    assert exit_code("d7sms_balance")[0] == 3


def test_setup_is_idempotent(settings):
    first = run("d7sms_setup")
    second = run("d7sms_setup")
    assert "Created schedule 'd7sms-housekeeping'" in first and "Updated" in second
    schedule = Schedule.objects.get(name=tasks.HOUSEKEEPING_SCHEDULE)
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == ("d7sms.housekeeping.run", "I", 1)


def test_setup_warns_when_the_throttle_cannot_be_shared(settings):
    settings.D7SMS = {**settings.D7SMS, "THROUGHPUT": 10}
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    err = io.StringIO()
    # As `manage.py d7sms_setup` runs it: the system checks first.
    call_command("d7sms_setup", skip_checks=False, stdout=io.StringIO(), stderr=err)
    assert "d7sms.W030" in err.getvalue() and "each process keeps for itself" in err.getvalue()
