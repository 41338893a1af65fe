"""The fast parts of the chaos harness (chaos/), in `make test`: the 504 gateway and 8 callers at once.

Counted at the sandbox, as `make chaos` counts. Sending runs in the test's process (SYNC);
the races' failures are the sandbox's own (a report says undelivered), made while the app
receives reports over HTTP, which then stops (see chaos/races.py for why).

Before issue 9's fixes, six of these sent twice: a 504 retried as "not sent" (single and
batch), racing resends, racing confirms, and on PostgreSQL racing retries and claims without
SKIP LOCKED.
"""

import os
from collections import Counter

import pytest
import requests

import d7sms
from chaos import crowd, ledger
from chaos.failures import DELIVERED, FAILING, numbers_ending, wait_final
from chaos.proxy import GatewayProxy
from chaos.webapp import AppServer
from d7sms.models import FAILURES, Message, Sendout
from tests.cluster import numbers
from tests.conftest import SANDBOX_USER

POSTGRES = os.environ.get("D7SMS_TEST_DATABASE") == "postgres"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sync(d7_settings):
    """Send in the calling thread, retrying a few milliseconds apart; the sandbox's reports go
    where nothing listens (refused at once) unless a test serves the app."""
    d7_settings.D7SMS = {
        **d7_settings.D7SMS, "SYNC": True, "RETRY_BACKOFF": 0.01, "RETRY_BACKOFF_MAX": 0.05,
        "CALLBACK_BASE_URL": "https://127.0.0.1:9",
    }
    return d7_settings


@pytest.fixture
def gateway(sync, sandbox):
    """A 504-injecting proxy in front of the sandbox, with D7SMS["BASE_URL"] pointed at it."""
    with GatewayProxy(sandbox.url, every=3) as proxy:
        sync.D7SMS = {**sync.D7SMS, "BASE_URL": proxy.url}
        yield proxy


def received(sandbox):
    return ledger.received(sandbox.accepted())


def failed_for_real(settings, send):
    """Call ``send()`` (it returns message ids) while the app receives the sandbox's reports,
    wait until those messages are final, then stop receiving; returns the ids."""
    with AppServer() as app:
        settings.D7SMS = {**settings.D7SMS, "CALLBACK_BASE_URL": app.url}
        ids = send()
        wait_final(ids, timeout=30)
    return ids


# -- the parts themselves -------------------------------------------------------------------


def test_proxy_answers_every_third_post_504_after_the_sandbox_took_it(sandbox):
    with GatewayProxy(sandbox.url, every=3) as proxy:
        session = requests.Session()
        answers = [
            session.post(f"{proxy.url}/secure/send", json={"to": n, "content": "Hi", "from": "Chaos"},
                         auth=SANDBOX_USER, timeout=10)
            for n in numbers(4)
        ]
        balance = session.get(f"{proxy.url}/secure/balance", auth=SANDBOX_USER, timeout=10)
    assert [a.status_code for a in answers] == [200, 200, 504, 200]
    assert answers[2].headers["Content-Type"] == "text/html"
    assert "<title>504 Gateway Time-out</title>" in answers[2].text
    assert balance.status_code == 200  # only POSTs are counted and replaced
    assert (proxy.posts, proxy.injected) == (4, 1)
    assert sorted(m["to"] for m in sandbox.accepted()) == numbers(4)  # the 504'd one too


def test_tally_compares_what_was_meant_with_what_the_sandbox_received():
    text = "t"
    intended = {("+1", text): 1, ("+2", text): 1, ("+3", text): 2, ("+4", text): 1, ("+5", text): 1}
    got = Counter({("+1", text): 1, ("+2", text): 3, ("+3", text): 1, ("+9", text): 1, ("+1", "other"): 5})
    statuses = {("+3", text): ["undelivered", "queued"], ("+4", text): ["unknown"], ("+5", text): ["accepted"]}
    row = ledger.tally("s", intended, got, statuses)
    # +1 once; +2 three times and +9 (meant for nobody) are duplicates; +3 missing its resend and
    # +5 (the app thinks D7 has it) are lost; +4 is excused by its unknown message.
    assert (row.messages, row.once, row.twice_or_more, row.lost, row.unknown) == (5, 1, 2, 2, 1)
    assert not row.ok


def test_crowd_releases_callers_together_each_on_its_own_connection():
    from django.db import connection

    def own_connection(i):
        connection.ensure_connection()
        return i, id(connection.connection)  # all 8 are open at once: before the release

    seen = crowd.at_once(lambda prepared: prepared, 8, prepare=own_connection)
    assert [i for i, _conn in seen] == list(range(8))
    assert len({conn for _i, conn in seen}) == 8
    assert isinstance(crowd.at_once(lambda _p: 1 / 0, 2)[0], ZeroDivisionError)


# -- a gateway that times out after D7 took the message --------------------------------------


def test_504_after_acceptance_never_sends_a_number_twice_single_mode(gateway, sandbox):
    recipients = numbers(9, start=200_000)
    d7sms.send_batch(recipients, "Through a gateway", mode="single")
    got = received(sandbox)
    assert gateway.injected >= 3
    assert sorted(n for n, _t in got) == recipients
    assert set(got.values()) == {1}


def test_504_after_acceptance_never_sends_a_number_twice_batch_mode(gateway, sandbox, sync):
    sync.D7SMS = {**sync.D7SMS, "BATCH_CHUNK_SIZE": 2}
    recipients = numbers(6, start=210_000)
    d7sms.send_batch(recipients, "Through a gateway", mode="batch")
    sandbox.wait_idle(10)
    got = received(sandbox)
    assert gateway.injected >= 1
    assert sorted(n for n, _t in got) == recipients
    assert set(got.values()) == {1}


# -- 8 callers at once --------------------------------------------------------------------------


def test_eight_resends_at_once_send_the_number_once_more(sync, sandbox):
    to = numbers_ending("9", 1, start=230_000)[0]
    [pk] = failed_for_real(sync, lambda: [d7sms.send_sms(to, "Again").pk])
    crowd.resend(pk)
    sandbox.wait_idle(10)
    assert Message.objects.filter(resend_of=pk).count() == 1
    assert received(sandbox)[(to, "Again")] == 2  # the original and one resend


def test_eight_retry_failed_at_once_send_each_failure_once_more(sync, sandbox):
    good, bad = numbers_ending(DELIVERED, 3, start=240_000), numbers_ending(FAILING, 3, start=250_000)

    def send():
        return list(d7sms.send_batch(good + bad, "Retry", mode="batch").messages.values_list("pk", flat=True))

    failed_for_real(sync, send)
    sendout = Sendout.objects.get()
    assert Message.objects.filter(status__in=FAILURES).count() == 3
    answers = crowd.retry_failed(sendout.pk)
    sandbox.wait_idle(10)
    assert sorted(answers) == [0] * 7 + [3]
    got = received(sandbox)
    assert [got[(n, "Retry")] for n in good + bad] == [1, 1, 1, 2, 2, 2]


def test_eight_confirms_of_one_preview_make_one_sendout(sync, sandbox, admin_user):
    recipients = numbers(5, start=260_000)
    draft = crowd.preview(admin_user, recipients, "Once")
    answers = crowd.confirm(admin_user, draft)
    sandbox.wait_idle(10)
    assert all(a in (200, 302) for a in answers)
    assert Sendout.objects.count() == 1
    got = received(sandbox)
    assert [got[(n, "Once")] for n in recipients] == [1] * 5


def test_one_task_run_by_eight_workers_without_skip_locked_sends_each_message_once(sync, sandbox):
    from d7sms import creation

    recipients = numbers(20, start=270_000)
    made = creation.create_messages([Message(to=n, content="Claimed") for n in recipients], scheduled=False)
    with crowd.no_skip_locked():  # no MySQL/MariaDB here: the one thing stood in for
        crowd.send_single([m.pk for m in made])
    got = received(sandbox)
    assert [got[(n, "Claimed")] for n in recipients] == [1] * 20
