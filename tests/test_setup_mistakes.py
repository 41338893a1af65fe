"""Set-up mistakes an adopter makes, caught by ``check`` and stopped before anything leaves."""

import pytest
from django.core import checks
from django.urls import clear_url_caches

from d7sms import sending
from d7sms.models import Message, MessageStatus, Sendout

S = MessageStatus


@pytest.fixture
def no_d7sms_urls(settings):
    settings.ROOT_URLCONF = "tests.urls_without_d7sms"
    clear_url_caches()
    yield settings
    clear_url_caches()


def test_check_catches_a_missing_include(no_d7sms_urls):
    [error] = [m for m in checks.run_checks() if m.id == "d7sms.E034"]
    assert 'include("d7sms.urls")' in error.hint


def test_no_include_needed_without_callback_base_url(no_d7sms_urls):
    no_d7sms_urls.D7SMS = {**no_d7sms_urls.D7SMS, "CALLBACK_BASE_URL": ""}
    assert not [m for m in checks.run_checks() if m.id == "d7sms.E034"]


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["single", "batch"])
def test_a_send_without_the_webhook_urls_fails_before_the_call(no_d7sms_urls, d7_settings, sandbox, mode):
    sendout = Sendout.objects.create(name="no urls", content="Hi", mode=mode)
    message = Message.objects.create(sendout=sendout, to="+447911123450", content="Hi", status=S.QUEUED, dlr_level=3)
    if mode == "single":
        left = sending.send_single([message.pk])
    else:
        left = sending.send_batch_chunks(sendout.pk, [message.pk])
    assert left == []
    message.refresh_from_db()
    # Nothing left the host: not "unknown", no attempt spent, the reason on the message.
    assert (message.status, message.attempts) == (S.QUEUED, 0)
    assert 'include("d7sms.urls")' in message.last_error
    assert sandbox.accepted() == []
