"""Without D7 credentials (as in CI, or a release step that only migrates) everything but sending
works; sending fails at the call, saying what to set, and stores nothing."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError

import d7sms
from d7sms import api, housekeeping, sending
from d7sms.models import Message, MessageStatus, Sendout

ROOT = Path(__file__).resolve().parent.parent
NO_CREDENTIALS = {"USERNAME": "", "PASSWORD": ""}


@pytest.fixture
def unconfigured(settings):
    settings.D7SMS = {**settings.D7SMS, **NO_CREDENTIALS, "BACKEND": "d7"}
    return settings


def manage(*args, tmp_path):
    """``python -m django ...`` on a fresh SQLite file, without credentials and with a local
    plain-http callback URL and DEBUG off (what `manage.py test` runs with)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(ROOT),
        # A new SQLite file in either pass: what is checked here does not depend on the database.
        "D7SMS_TEST_DATABASE": "sqlite",
        "D7SMS_DB_NAME": str(tmp_path / "db.sqlite3"),
        "D7SMS_TEST_SETTINGS": json.dumps({**NO_CREDENTIALS, "CALLBACK_BASE_URL": "http://127.0.0.1:8000"}),
    }
    return subprocess.run([sys.executable, "-m", "django", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_migrate_showmigrations_and_check_run_without_credentials(tmp_path):
    for args in (["migrate", "--no-input"], ["showmigrations", "d7sms"], ["check"]):
        result = manage(*args, tmp_path=tmp_path)
        assert result.returncode == 0, f"{args}: {result.stderr}"
        assert "d7sms.E0" not in result.stderr, result.stderr
    deploy = manage("check", "--deploy", tmp_path=tmp_path)
    assert deploy.returncode == 1
    assert "d7sms.E001" in deploy.stderr and "d7sms.E004" in deploy.stderr


@pytest.mark.django_db
@pytest.mark.parametrize("call", [
    lambda: d7sms.send_sms("+447911000001", "Hi"),
    lambda: d7sms.send_batch(["+447911000001", "+447911000002"], "Hi"),
], ids=["send_sms", "send_batch"])
def test_sending_without_credentials_fails_at_the_call(unconfigured, call):
    with pytest.raises(ImproperlyConfigured, match=r"USERNAME.*PASSWORD.*d7sms\.E001.*'locmem'"):
        call()
    assert not Message.objects.exists() and not Sendout.objects.exists()


@pytest.mark.django_db
def test_a_worker_without_credentials_leaves_its_messages_queued(settings):
    settings.D7SMS = {**settings.D7SMS, "BACKEND": "d7", "SYNC": False}
    message = d7sms.send_sms("+447911000001", "Hi")  # stored while the credentials were there
    settings.D7SMS = {**settings.D7SMS, **NO_CREDENTIALS}
    with pytest.raises(ImproperlyConfigured):
        sending.send_single([message.pk])
    message.refresh_from_db()
    assert (message.status, message.attempts) == (MessageStatus.QUEUED, 0)


@pytest.mark.django_db
def test_housekeeping_carries_on_without_credentials(unconfigured, caplog):
    done = housekeeping.run()
    assert done["balance"] is None and "swept" in done
    assert "required to send through D7" in caplog.text


@pytest.mark.django_db
def test_commands_say_what_is_missing(unconfigured):
    with pytest.raises(CommandError, match="USERNAME") as info:
        call_command("d7sms_send", "--to", "+447911000001", "--content", "Hi", stdout=io.StringIO())
    assert info.value.returncode == 1 and not Message.objects.exists()
    with pytest.raises(CommandError, match="USERNAME") as info:
        call_command("d7sms_balance", stdout=io.StringIO())
    assert info.value.returncode == 1


@pytest.mark.django_db
def test_resend_and_retry_refuse_before_storing(settings):
    settings.D7SMS = {**settings.D7SMS, "BACKEND": "locmem"}
    sendout = d7sms.send_batch(["+447911000001"], "Hi")
    Message.objects.update(status=MessageStatus.FAILED)
    settings.D7SMS = {**settings.D7SMS, **NO_CREDENTIALS, "BACKEND": "d7"}
    with pytest.raises(ImproperlyConfigured):
        api.retry_failed(sendout)
    with pytest.raises(ImproperlyConfigured):
        api.resend(Message.objects.get())
    assert Message.objects.count() == 1
