"""The secret behind the webhook tokens: refused when anyone can know it, rotated without
breaking the URLs D7 already holds."""

import hashlib
import hmac
import logging

import pytest
from django.core.exceptions import ImproperlyConfigured

from d7sms import sending, webhook_urls
from d7sms.checks import check_webhooks, check_webhooks_deploy
from d7sms.models import DeliveryReport, Message, MessageStatus
from d7sms.webhook_urls import check_token, dlr_url, make_token
from tests.webhook_support import ACK, dlr_path, level2, make_message

S = MessageStatus
REAL_D7 = "https://rest-api.d7networks.com"
DEMO_KEY = "demo-only-insecure-key-change-me"
STRONG = "x7Qp2Lm9Vd4Rt8Kz1Hs6Nf3Bw5Jc0Gy-strong-webhook-secret"
WEAK_KEYS = {
    "demo": DEMO_KEY,
    "startproject": "django-insecure-" + "k3j4h5g6f7d8s9a0p1o2i3u4y5t6r7e8w9q0z1x2c3v4b5n6m7",
    "short": "Zq8-short-Key",
    "repetitive": "ab" * 40,
}


def ids(messages):
    return sorted(m.id for m in messages)


def forged_token(secret_key, message_id):
    """What an attacker who read the published key computes: the derivation is public code."""
    key = hashlib.sha256(b"d7sms.webhooks:" + secret_key.encode()).digest()
    return hmac.new(key, f"dlr:{message_id}".encode(), hashlib.sha256).hexdigest()[:32]


# -- a known key is refused once messages leave this host ---------------------------------------


@pytest.mark.parametrize("key", list(WEAK_KEYS.values()), ids=list(WEAK_KEYS))
def test_a_weak_secret_key_cannot_sign_tokens_for_the_real_d7(settings, key):
    settings.SECRET_KEY = key  # (Django itself refuses an empty one)
    settings.D7SMS = {**settings.D7SMS, "BASE_URL": REAL_D7}
    with pytest.raises(ImproperlyConfigured) as raised:
        make_token("dlr", 1)
    text = str(raised.value)
    assert "SECRET_KEY" in text and "WEBHOOK_SECRET" in text
    assert key not in text  # the message never repeats the secret
    with pytest.raises(ImproperlyConfigured):
        check_token("dlr", 1, "0" * 32)
    assert ids(check_webhooks()) == ["d7sms.E020"]


def test_a_weak_webhook_secret_is_refused_too(settings):
    settings.D7SMS = {**settings.D7SMS, "BASE_URL": REAL_D7, "WEBHOOK_SECRET": "changeme"}
    with pytest.raises(ImproperlyConfigured, match=r"WEBHOOK_SECRET.*shorter than 32"):
        dlr_url(1)
    assert ids(check_webhooks()) == ["d7sms.E021"]
    settings.D7SMS = {**settings.D7SMS, "WEBHOOK_SECRET": STRONG, "WEBHOOK_SECRET_FALLBACKS": [DEMO_KEY]}
    assert ids(check_webhooks()) == ["d7sms.E021"]  # an old secret anyone knows forges as well


def test_a_weak_key_is_fine_against_the_local_sandbox_and_said_at_deploy(settings):
    settings.SECRET_KEY = DEMO_KEY
    for local in ("http://127.0.0.1:8099", "http://localhost:8099", "http://[::1]:8099"):
        settings.D7SMS = {**settings.D7SMS, "BASE_URL": local}
        assert check_token("dlr", 1, make_token("dlr", 1))
        assert check_webhooks() == []
        assert ids(check_webhooks_deploy()) == ["d7sms.W020"]
    settings.D7SMS = {**settings.D7SMS, "BASE_URL": REAL_D7, "BACKEND": "console"}  # nothing leaves the host
    assert check_token("dlr", 1, make_token("dlr", 1))


def test_a_strong_key_passes(settings):
    settings.D7SMS = {**settings.D7SMS, "BASE_URL": REAL_D7}
    assert check_token("dlr", 1, make_token("dlr", 1))
    assert check_webhooks() == [] and check_webhooks_deploy() == []


@pytest.mark.django_db
def test_forged_reports_made_with_the_published_demo_key_are_refused(client, settings, caplog):
    """The issue's attack: the demo pointed at the real D7 with its published key."""
    settings.SECRET_KEY = DEMO_KEY
    settings.D7SMS = {**settings.D7SMS, "BASE_URL": REAL_D7}
    messages = [make_message(status=s, d7_id=f"d7-forge-{i}", to=f"+44770090020{i}") for i, s in enumerate([S.ACCEPTED, S.SENDING, S.AT_SMSC])]
    with caplog.at_level(logging.ERROR, logger="d7sms.webhooks"):
        for message in messages:
            path = dlr_path(message.pk, token=forged_token(DEMO_KEY, message.pk))
            response = client.post(path, level2(message.d7_message_id))
            assert response.status_code == 503 and response.content != ACK
    assert [Message.objects.get(pk=m.pk).status for m in messages] == [S.ACCEPTED, S.SENDING, S.AT_SMSC]
    assert not DeliveryReport.objects.exists()
    assert "refuses to sign or check webhook URLs with SECRET_KEY" in caplog.text
    assert DEMO_KEY not in caplog.text


@pytest.mark.django_db
def test_nothing_is_sent_while_the_secret_is_refused(settings):
    """The send stops before the call: the message stays queued with the reason, no attempt made."""
    settings.SECRET_KEY = DEMO_KEY
    # Not on this host, and never reachable: a call would leave a NotSent retry behind.
    settings.D7SMS = {**settings.D7SMS, "BASE_URL": "http://d7.invalid", "CALLBACK_BASE_URL": "https://example.com"}
    message = Message.objects.create(to="+447700900301", content="Hi", status=S.QUEUED)
    assert sending.send_single([message.pk]) == []
    message.refresh_from_db()
    assert (message.status, message.attempts) == (S.QUEUED, 0)
    assert "SECRET_KEY" in message.last_error


# -- rotation --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_urls_made_before_a_webhook_secret_rotation_still_work(client, settings):
    old, new = STRONG, STRONG[::-1]
    settings.D7SMS = {**settings.D7SMS, "WEBHOOK_SECRET": old}
    message = make_message(d7_id="d7-rot")
    old_path = dlr_path(message.pk)
    settings.D7SMS = {**settings.D7SMS, "WEBHOOK_SECRET": new}
    assert client.post(old_path, level2("d7-rot")).status_code == 403  # without the fallback
    settings.D7SMS = {**settings.D7SMS, "WEBHOOK_SECRET_FALLBACKS": [old]}
    assert dlr_path(message.pk) != old_path  # new URLs use the new secret only
    assert client.post(old_path, level2("d7-rot")).content == ACK
    assert Message.objects.get(pk=message.pk).status == S.DELIVERED


@pytest.mark.django_db
def test_urls_made_before_a_secret_key_rotation_still_work(client, settings):
    old_key = settings.SECRET_KEY
    message = make_message(d7_id="d7-rot-key")
    old_path = dlr_path(message.pk)
    settings.SECRET_KEY = old_key[::-1]
    settings.SECRET_KEY_FALLBACKS = [old_key]
    assert dlr_path(message.pk) != old_path
    assert client.post(old_path, level2("d7-rot-key")).content == ACK
    assert Message.objects.get(pk=message.pk).status == S.DELIVERED


@pytest.mark.django_db(transaction=True)
def test_reports_d7_holds_during_a_rotation_are_applied(d7_settings, live_server, sandbox):
    """The issue's scenario: D7 holds the URLs when the secret changes; its reports still land."""
    import d7sms

    old, new = STRONG, STRONG[::-1]
    d7_settings.D7SMS = {
        **d7_settings.D7SMS, "CALLBACK_BASE_URL": live_server.url, "SYNC": True, "WEBHOOK_SECRET": old,
    }
    sandbox.gateway.dlr_delay = 1.0  # the reports come after the rotation below
    sendout = d7sms.send_batch([f"+44791100{i:04d}" for i in range(1, 6)], "Rotate", mode="batch")
    d7_settings.D7SMS = {**d7_settings.D7SMS, "WEBHOOK_SECRET": new, "WEBHOOK_SECRET_FALLBACKS": [old]}
    assert sandbox.wait_idle(20)
    attempts = sandbox.deliveries("dlr")
    assert len(attempts) == 10 and all(a["acked"] for a in attempts)
    assert set(sendout.messages.values_list("status", flat=True)) == {S.DELIVERED}


def test_fallbacks_must_be_a_list_of_secrets(settings):
    settings.D7SMS = {**settings.D7SMS, "WEBHOOK_SECRET": STRONG, "WEBHOOK_SECRET_FALLBACKS": STRONG}
    assert ids(check_webhooks()) == ["d7sms.E024"]
    with pytest.raises(ImproperlyConfigured, match="WEBHOOK_SECRET_FALLBACKS"):
        webhook_urls.make_token("dlr", 1)


def test_the_demo_pointed_at_the_real_d7_fails_check_until_it_has_its_own_key(tmp_path):
    """The issue's adopter: the README's D7SMS_* variables set, DJANGO_SECRET_KEY forgotten."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("D7SMS_", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="demo_project.settings", D7SMS_DATA_DIR=str(tmp_path),
        D7SMS_BASE_URL=REAL_D7, D7SMS_USERNAME="me", D7SMS_PASSWORD="real-password",
        D7SMS_CALLBACK_BASE_URL="https://sms.example.com",
        DJANGO_ALLOWED_HOSTS="sms.example.com",
    )
    check = [sys.executable, "manage.py", "check"]
    refused = subprocess.run(check, cwd=root, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "d7sms.E020" in refused.stderr
    assert DEMO_KEY not in refused.stderr
    env["DJANGO_SECRET_KEY"] = STRONG + "-for-the-demo"
    passed = subprocess.run(check, cwd=root, env=env, capture_output=True, text=True, timeout=60)
    assert passed.returncode == 0, passed.stderr
