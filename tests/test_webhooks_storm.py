"""A storm of callbacks and DLRs in shuffled order, with repeats: the end state is the truth.

2,000 calls, 30 % of them repeats, for one sendout whose messages report on their own DLR URL
(even ones) or on the installation-wide URL (odd ones, so their reports are orphans until the
callback binds the id). Order is random, so level 2 overtakes level 1 and DLRs overtake the
callback that tells us the message's id.
"""

import random
import threading
import uuid
from collections import Counter, defaultdict
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test import Client

from d7sms.models import Sendout, BatchCallback, DeliveryReport, Message, MessageStatus
from d7sms.webhooks import dlr
from tests.webhook_support import (
    ACK,
    any_dlr_path,
    callback_path,
    callback_params,
    dlr_path,
    errback_params,
    level1,
    level2,
)

S = MessageStatus
TOTAL = 2000
MESSAGES = 520  # 1,404 distinct calls; the rest (596, 29.8 %) are repeats

# The sandbox's outcomes by last digit: (level-1 status, level-2 status or None, final status).
OUTCOMES = {
    "9": ("ESME_ROK", "UNDELIV", S.UNDELIVERED),
    "8": ("ESME_RSUBMITFAIL", None, S.REJECTED),  # the SMSC refused it
    "7": (None, None, S.REJECTED),  # no route: errback only, D7 refused it
    "6": ("ESME_ROK", "EXPIRED", S.EXPIRED),
}
DELIVERED = ("ESME_ROK", "DELIVRD", S.DELIVERED)


def build_storm(seed=4):
    """Create the sendout; return (calls, truth) with calls as (kind, path, params) in feed order."""
    sendout = Sendout.objects.create(name="storm", content="Hello", status="in_progress")
    messages = Message.objects.bulk_create(
        Message(sendout=sendout, to=f"+4477009{i:05d}", content="Hello", status=S.SENDING) for i in range(MESSAGES)
    )
    if messages[0].pk is None:  # backends that do not return ids from bulk_create
        messages = list(Message.objects.filter(sendout=sendout).order_by("pk"))
    calls, truth = [], {}
    for i, message in enumerate(messages):
        d7_id = str(uuid.uuid4())
        first, second, final = OUTCOMES.get(message.to[-1], DELIVERED)
        truth[message.pk] = (final, d7_id if first else None)
        if first is None:
            calls.append(("errback", callback_path(sendout.key, "errback"), errback_params(message.to.lstrip("+"))))
            continue
        to = message.to if i % 3 else message.to.lstrip("+")  # sent with and without "+"
        calls.append(("callback", callback_path(sendout.key), callback_params(to, d7_id)))
        path = dlr_path(message.pk) if i % 2 == 0 else any_dlr_path()
        calls.append(("dlr1", path, level1(d7_id, first)))
        if second:
            calls.append(("dlr2", path, level2(d7_id, second, err="000" if second == "DELIVRD" else "001")))
    rng = random.Random(seed)
    distinct = len(calls)
    calls += [rng.choice(calls) for _ in range(TOTAL - distinct)]
    rng.shuffle(calls)
    return sendout, calls, truth, distinct


def overtakes(calls):
    """Counts of level 2 before level 1, and DLR before callback, in the feed order."""
    seen, counts = {}, Counter()
    for kind, _path, params in calls:
        key = params.get("id") or params.get("statusText", "").partition('"')[2].rstrip('"')
        first = seen.setdefault(key, kind)
        if first == "dlr2" and kind == "dlr1":
            counts["level 2 before level 1"] += 1
        if first.startswith("dlr") and kind == "callback":
            counts["DLR before callback"] += 1
    return counts


def send(client, kind, path, params):
    """One call as D7 makes it: DLRs as a POST form, batch callbacks as a GET query."""
    if kind.startswith("dlr"):
        return client.post(path, urlencode(params), content_type="application/x-www-form-urlencoded")
    return client.get(path, params)


def check_truth(sendout, calls, truth, distinct):
    """Assert the database holds exactly the true outcome of the storm."""
    rows = dict(Message.objects.filter(sendout=sendout).values_list("pk", "status"))
    ids = dict(Message.objects.filter(sendout=sendout).values_list("pk", "d7_message_id"))
    wrong = {pk: (rows[pk], want) for pk, (want, _id) in truth.items() if rows[pk] != want}
    assert not wrong, f"{len(wrong)} messages in the wrong state, e.g. {list(wrong.items())[:5]}"
    assert all(ids[pk] == d7_id for pk, (_s, d7_id) in truth.items() if d7_id)

    dlr_calls = sum(1 for kind, _p, _q in calls if kind.startswith("dlr"))
    assert DeliveryReport.objects.count() == dlr_calls
    assert not DeliveryReport.objects.filter(applied_at__isnull=True).exists(), "reports left unapplied"
    per_report = defaultdict(Counter)
    for message_id, level, problem in DeliveryReport.objects.values_list("message_id", "level", "problem"):
        per_report[(message_id, level)][problem] += 1
    thrown = {(kind, params["id"]) for kind, _p, params in calls if kind.startswith("dlr")}
    assert len(per_report) == len(thrown)
    for (message_id, level), counts in per_report.items():
        assert counts[""] == 1 and set(counts) <= {"", dlr.DUPLICATE}, list(
            DeliveryReport.objects.filter(message_id=message_id, level=level).values_list(
                "pk", "message_id", "level", "message_status", "problem", "received_at", "applied_at"
            )
        )
    assert BatchCallback.objects.count() == TOTAL - dlr_calls
    assert not BatchCallback.objects.exclude(problem__in=["", dlr.DUPLICATE]).exists()

    sendout.refresh_from_db()
    assert sendout.status == "completed_with_failures"
    assert Counter(rows.values()) == Counter(want for want, _id in truth.values())


@pytest.mark.django_db(transaction=True)
def test_storm_in_one_stream():
    sendout, calls, truth, distinct = build_storm()
    order = overtakes(calls)
    assert order["level 2 before level 1"] > 20 and order["DLR before callback"] > 100
    client = Client()
    answers = Counter()
    for kind, path, params in calls:
        response = send(client, kind, path, params)
        answers[(response.status_code, response.content == ACK)] += 1
    assert answers == {(200, True): TOTAL}
    check_truth(sendout, calls, truth, distinct)


@pytest.mark.django_db(transaction=True)
def test_storm_from_concurrent_senders():
    """The same storm from 8 threads at once: counters and statuses lose no update."""
    sendout, calls, truth, distinct = build_storm(seed=11)
    answers, lock = Counter(), threading.Lock()
    chunks = [calls[i::8] for i in range(8)]

    def feed(chunk):
        client, mine = Client(), Counter()
        try:
            for kind, path, params in chunk:
                for _attempt in range(5):  # D7 resends whatever was not acknowledged
                    response = send(client, kind, path, params)
                    mine[response.status_code] += 1
                    if response.content == ACK:
                        break
        finally:
            connection.close()
            with lock:
                answers.update(mine)

    threads = [threading.Thread(target=feed, args=(chunk,)) for chunk in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == {200: TOTAL}
    check_truth(sendout, calls, truth, distinct)
