"""Round trips through the real sandbox: it sends, then calls our live server back over HTTP."""

from collections import Counter, defaultdict
from unittest import mock

import pytest
from django.db import OperationalError

from d7sms.client import D7Client
from d7sms.models import Sendout, BatchCallback, DeliveryReport, Message, MessageStatus
from d7sms import webhook_urls
from d7sms.webhooks import dlr
from tests.conftest import SANDBOX_USER

S = MessageStatus
pytestmark = pytest.mark.django_db(transaction=True)

TRUTH = {"9": S.UNDELIVERED, "8": S.REJECTED, "7": S.REJECTED, "6": S.EXPIRED}


@pytest.fixture
def wired(d7_settings, live_server, sandbox):
    """Settings with the sandbox as D7 and the live server as the site D7 calls back."""
    d7_settings.D7SMS = {**d7_settings.D7SMS, "CALLBACK_BASE_URL": live_server.url}
    return sandbox


def make_sendout(count):
    sendout = Sendout.objects.create(name="round trip", content="Hello", status="in_progress")
    messages = [
        Message.objects.create(sendout=sendout, to=f"+4477009000{i:02d}", content="Hello", status=S.SENDING)
        for i in range(count)
    ]
    return sendout, messages


def send(sandbox, sendout, messages, dlr_url=webhook_urls.dlr_url, method="POST"):
    with D7Client(sandbox.url, *SANDBOX_USER) as client:
        return client.sendbatch(
            [{"to": m.to.lstrip("+"), "dlr_url": dlr_url(m.pk)} for m in messages],
            globals={"content": "Hello", "from": "D7sms", "dlr": "yes", "dlr_level": 3, "dlr_method": method},
            callback_url=webhook_urls.callback_url(sendout.key),
            errback_url=webhook_urls.errback_url(sendout.key),
        )


def assert_true_final_states(messages):
    for message in messages:
        message.refresh_from_db()
        assert message.status == TRUTH.get(message.to[-1], S.DELIVERED), message.to


def reports_by_thrown(sandbox):
    """{(D7 id, level): attempts} for every DLR the sandbox threw."""
    thrown = defaultdict(list)
    for attempt in sandbox.deliveries("dlr"):
        thrown[(attempt["params"]["id"], attempt["params"]["level"])].append(attempt)
    return thrown


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_level3_batch_ends_in_true_states(wired, method):
    sendout, messages = make_sendout(20)
    result = send(wired, sendout, messages, method=method)
    assert result.message_count == 20
    assert wired.wait_idle(20)
    assert_true_final_states(messages)
    thrown = reports_by_thrown(wired)
    assert all(len(attempts) == 1 and attempts[0]["acked"] for attempts in thrown.values())
    rows = Counter(DeliveryReport.objects.values_list("d7_message_id", "level"))
    assert rows == Counter({(d7_id, int(level)): 1 for d7_id, level in thrown})
    assert not DeliveryReport.objects.exclude(problem="").exists()
    assert DeliveryReport.objects.filter(method=method).count() == len(thrown)
    callbacks = wired.deliveries("callback") + wired.deliveries("errback")
    assert BatchCallback.objects.filter(applied_at__isnull=False).count() == len(callbacks) == 20
    for message in messages:
        expect_id = message.to[-1] != "7"
        assert (message.d7_message_id is not None) == expect_id
    sendout.refresh_from_db()
    assert sendout.status == "completed_with_failures"


def test_unacknowledged_reports_are_resent_and_kept_raw(wired):
    sendout, messages = make_sendout(10)
    real = dlr.receive
    failed = set()

    def fail_first_level2(params, report, **kwargs):
        # The first level-2 attempt for every other message cannot be stored: D7 must retry.
        key = (report.d7_message_id, report.level)
        if report.level == 2 and kwargs.get("message_id", 0) % 2 and key not in failed:
            failed.add(key)
            raise OperationalError("could not serialize access")
        return real(params, report, **kwargs)

    with mock.patch.object(dlr, "receive", side_effect=fail_first_level2):
        send(wired, sendout, messages)
        assert wired.wait_idle(20)
    assert failed
    assert_true_final_states(messages)
    thrown = reports_by_thrown(wired)
    attempts = sum(len(a) for a in thrown.values())
    assert DeliveryReport.objects.count() == attempts == len(thrown) + len(failed)
    applied = Counter(DeliveryReport.objects.filter(applied_at__isnull=False).values_list("d7_message_id", "level"))
    assert applied == Counter({(d7_id, int(level)): 1 for d7_id, level in thrown})
    raw = DeliveryReport.objects.filter(applied_at__isnull=True)
    assert raw.count() == len(failed) and all(r.problem.startswith("not applied") for r in raw)
    for (d7_id, level), tries in thrown.items():
        assert [t["acked"] for t in tries] == ([False, True] if (d7_id, int(level)) in failed else [True])


def test_installation_wide_dlr_url(wired):
    sendout, messages = make_sendout(10)
    send(wired, sendout, messages, dlr_url=lambda pk: webhook_urls.any_dlr_url())
    assert wired.wait_idle(20)
    assert_true_final_states(messages)
    assert not DeliveryReport.objects.filter(applied_at__isnull=True).exists()


def test_forged_dlr_urls_change_nothing(wired, live_server):
    sendout, messages = make_sendout(3)
    other = messages[2]
    forged = {
        messages[0].pk: f"{live_server.url}/d7sms/dlr/{messages[0].pk}/{'0' * 32}/",  # made-up token
        messages[1].pk: webhook_urls.dlr_url(other.pk).replace(f"/{other.pk}/", f"/{messages[1].pk}/"),  # tampered id
        other.pk: f"{live_server.url}/d7sms/dlr/{other.pk}/",  # no token
    }
    with D7Client(wired.url, *SANDBOX_USER) as client:
        for message in messages:
            client.send(message.to.lstrip("+"), content="Hi", dlr=True, dlr_url=forged[message.pk], dlr_level=3)
    assert wired.wait_idle(20)
    attempts = wired.deliveries("dlr")
    assert attempts and all(a["status_code"] == 403 and not a["acked"] for a in attempts)
    assert not DeliveryReport.objects.exists()
    assert set(Message.objects.values_list("status", flat=True)) == {S.SENDING}


@pytest.mark.parametrize("mode", ["batch", "single"])
def test_sending_pipeline_round_trip(wired, d7_settings, mode):
    """d7sms.send_batch end to end: sent, called back, every message in its true final state."""
    import d7sms

    d7_settings.D7SMS = {**d7_settings.D7SMS, "SYNC": True, "DLR_LEVEL": 3}
    numbers = [f"+4915112345{i:03d}" for i in range(20)]  # valid mobile numbers, every last digit twice
    sendout = d7sms.send_batch(numbers, "Hello from the pipeline", mode=mode, dlr_level=3)
    assert wired.wait_idle(30)
    messages = list(Message.objects.filter(sendout=sendout))
    assert len(messages) == 20
    assert_true_final_states(messages)
    thrown = reports_by_thrown(wired)
    rows = Counter(DeliveryReport.objects.filter(applied_at__isnull=False).values_list("d7_message_id", "level"))
    assert rows == Counter({(d7_id, int(level)): 1 for d7_id, level in thrown})
    sendout.refresh_from_db()
    assert sendout.status == "completed_with_failures"
