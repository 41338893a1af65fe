"""Claim messages, hand them to the backend, and record every outcome through :mod:`d7sms.status`.

This is one task's work, whoever runs it (a django-q2 worker through :mod:`d7sms.tasks`, or the
calling process in SYNC mode); nothing here imports django-q2. :func:`send_single` makes one
``/secure/send`` call per message, :func:`send_batch_chunks` one ``/secure/sendbatch`` call per
chunk of a sendout. A message is claimed (queued ->
sending, atomically) right before its call, so however often a task is delivered, each message
is sent at most once. What the call's outcome means for the message:

=======================================  ========================================================
outcome                                  message
=======================================  ========================================================
accepted (200)                           ``accepted``; /secure/send stores D7's message id
certainly not taken: connection          back to ``queued`` with exponential backoff and
refused, 429, 503, a 5xx in Jasmin's     jitter; ``failed`` after MAX_RETRIES retries
own error shape
412 "No route found"                     ``rejected`` at once: D7 refused this message
400 and other refusals                   ``failed`` at once, with the provider's text
ambiguous: 502, 504, any other 5xx,      ``unknown`` (in a sendbatch call, every message of it):
an HTML or unreadable body, a read       never retried on its own; D7's later reports move it
timeout, a connection dropped after the  on, and the admin offers to send again the ones with
request was written                      no sign of life at D7
credentials rejected, no credit          back to ``queued``; all sending pauses (:mod:`d7sms.pause`)
=======================================  ========================================================

Outcomes are written per window of messages in one transaction, never one row at a time.
"""

import logging
import random
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured
from django.db.models import F
from django.utils import timezone

from d7sms import busy, conf, pause, progress, status, throttle, webhook_urls
from d7sms.backends import get_backend
from d7sms.errors import CredentialsRejected, D7Error, NoCredit, NoRoute, OutcomeUnknown, TransportError
from d7sms.models import Message, MessageStatus, Sendout, SendoutStatus

logger = logging.getLogger("d7sms.sending")

_FIELDS = ("id", "sendout_id", "to", "sender", "content", "hex_content", "coding", "dlr_level", "attempts")
# Calls in a row with an unknown outcome after which a task stops: each one is a message a
# person must look at, so a D7 that has stopped answering must not use up the whole queue.
UNKNOWN_STREAK = 3
# Waking a little late for a retry makes sure the database sees it as due.
_EPSILON = 0.02
# Seconds a worker keeps trying a write while the database is busy (d7sms.busy).
RECORD_PATIENCE = 30.0

# Sendouts the current task has seen submitted: an acceptance cannot change them.
_submitted = set()


def retry_delay(attempt, error=None):
    """Seconds before retry number ``attempt`` (1-based): exponential, capped, with jitter.

    Half the delay is fixed and half random, so workers that failed together do not retry
    together. A 429's ``Retry-After`` is honoured (up to the cap).
    """
    cap = float(conf.get("RETRY_BACKOFF_MAX"))
    delay = min(cap, float(conf.get("RETRY_BACKOFF")) * 2 ** max(0, attempt - 1))
    delay = delay / 2 + random.uniform(0, delay / 2)
    retry_after = getattr(error, "retry_after", None)
    if retry_after:
        delay = max(delay, min(cap, float(retry_after)))
    return delay


@dataclass
class Outcomes:
    """What one window's calls did, by message id."""

    accepted: dict = field(default_factory=dict)  # id -> D7 message id (None in a batch)
    failed: dict = field(default_factory=dict)  # id -> (error code, text)
    rejected: dict = field(default_factory=dict)  # id -> (error code, text): D7 refused the message
    unknown: dict = field(default_factory=dict)  # id -> text
    retry: dict = field(default_factory=dict)  # id -> (text, delay)
    released: list = field(default_factory=list)  # claimed, never called: back to the queue
    pause_reason: str = ""
    no_credit: bool = False
    sendout_ids: set = field(default_factory=set)


def _describe(error):
    return str(error)[:1000]


def _judge(out, pk, attempts, error):
    """File the message ``pk`` under the outcome ``error`` stands for."""
    if isinstance(error, (CredentialsRejected, NoCredit)):
        if not out.pause_reason:
            out.pause_reason, out.no_credit = _describe(error), isinstance(error, NoCredit)
        out.released.append(pk)
    elif isinstance(error, OutcomeUnknown) or (isinstance(error, TransportError) and not error.retryable):
        out.unknown[pk] = _describe(error)
    elif isinstance(error, D7Error) and error.retryable:
        if attempts > conf.get("MAX_RETRIES"):
            out.failed[pk] = (type(error).__name__, f"{_describe(error)} (gave up after {attempts} attempts)")
        else:
            out.retry[pk] = (_describe(error), retry_delay(attempts, error))
    elif isinstance(error, NoRoute):
        out.rejected[pk] = (type(error).__name__, _describe(error))
    elif isinstance(error, D7Error):
        out.failed[pk] = (type(error).__name__, _describe(error))
    else:
        # Not a D7 error: a fault in this process, at a point we cannot place before or after
        # the request left, so the message may have gone out.
        out.unknown[pk] = f"unexpected error: {type(error).__name__}: {error}"[:1000]


def record(out, *, deadline=None, **accepted_fields):
    """Write a window's outcomes in one transaction; return ``{id: monotonic due}`` of the
    retries this process will make itself (those due before ``deadline``).

    A busy database is waited out (:mod:`d7sms.busy`): until this is written, the window's
    messages stay ``sending``, and would end ``unknown``.
    """
    now = timezone.now()
    inline = busy.retry(
        lambda: _write(out, now, time.monotonic(), deadline, accepted_fields), seconds=RECORD_PATIENCE,
        what="the outcome of a send",
    )
    new = out.sendout_ids - _submitted if out.accepted else set()
    if new:
        busy.retry(lambda: progress.mark_submitted(new, now), seconds=RECORD_PATIENCE, what="a sendout's first send")
        _submitted.update(new)
    if out.pause_reason:
        busy.retry(
            lambda: pause.pause(out.pause_reason, no_credit=out.no_credit), seconds=RECORD_PATIENCE, what="a pause"
        )
    return inline


def _write(out, now, mono, deadline, accepted_fields):
    inline = {}
    with busy.write_transaction():
        if out.accepted:
            d7_ids = {pk: v for pk, v in out.accepted.items() if v}
            status.record_accepted(out.accepted, d7_ids=d7_ids or None, submitted_at=now, **accepted_fields)
        for outcomes, new in ((out.failed, MessageStatus.FAILED), (out.rejected, MessageStatus.REJECTED)):
            if outcomes:
                status.change_many(
                    outcomes,
                    new,
                    per_row={
                        "error_code": {pk: code[:40] for pk, (code, _t) in outcomes.items()},
                        "last_error": {pk: text for pk, (_c, text) in outcomes.items()},
                    },
                )
        if out.unknown:
            status.change_many(
                out.unknown, MessageStatus.UNKNOWN, error_code="outcome_unknown", per_row={"last_error": out.unknown}
            )
        if out.retry:
            # One delay per window (the longest): the window's messages failed together.
            delay = max(d for _t, d in out.retry.values())
            text = next(iter(out.retry.values()))[0]
            at = now + timedelta(seconds=delay)
            itself = deadline is not None and mono + delay < deadline
            # enqueued_at = the retry time marks them as covered by this task; otherwise the
            # sweeper enqueues them once due.
            status.requeue(out.retry, next_attempt_at=at, error=text, **({"enqueued_at": at} if itself else {}))
            if itself:
                inline = {pk: mono + delay + _EPSILON for pk in out.retry}
        if out.released:
            # Claimed but never called: the claim's attempt did not happen.
            status.requeue(out.released, next_attempt_at=None, error=out.pause_reason, attempts=F("attempts") - 1)
    return inline


def _claim(ids):
    """Claim ``ids`` (:func:`d7sms.status.claim_messages`), waiting out a busy database; return
    the claimed messages, by id."""

    def claim():
        with busy.write_transaction():
            return status.claim_messages(ids, _FIELDS)

    return busy.retry(claim, seconds=RECORD_PATIENCE, what="a claim")


class _Work:
    """The ids of one task, taken in parts, with the retries it makes itself interleaved."""

    def __init__(self, ids, size, deadline):
        self.ids = list(dict.fromkeys(ids))
        self.size = size
        self.deadline = deadline
        self.pos = 0
        self.retries = {}

    def next_part(self):
        """Return the next ids to try, sleeping for a retry if that is all there is; None when done."""
        while True:
            now = time.monotonic()
            due = [pk for pk, at in self.retries.items() if at <= now]
            if due:
                for pk in due:
                    del self.retries[pk]
                return due
            if self.pos < len(self.ids) and (self.deadline is None or now < self.deadline):
                part = self.ids[self.pos : self.pos + self.size]
                self.pos += self.size
                return part
            if not self.retries:
                return None
            time.sleep(max(0.0, min(self.retries.values()) - now))

    def left(self):
        """The ids this task did not get to (to be handed to another task)."""
        return self.ids[self.pos :]


def webhooks_ready(ids):
    """True when the callback URLs the calls carry can be made; else say why on the queued
    messages ``ids`` and in the log, and return False.

    Checked before anything is claimed: a URL that cannot be built (``d7sms.urls`` not included,
    a webhook secret refused) would otherwise fail mid-call, where a failure must count as
    "may have gone out". The messages stay queued, and go once the installation is fixed.
    """
    try:
        webhook_urls.ready()
    except ImproperlyConfigured as exc:
        text = f"Not sent: {exc}"[:1000]
        logger.error("%s", text)
        Message.objects.filter(status.ids_q(ids), status=MessageStatus.QUEUED).update(last_error=text)
        return False
    return True


def send_single(ids, *, deadline=None):
    """Send the queued messages ``ids`` one per ``/secure/send`` call; return ids left over.

    Stops at ``deadline`` (a :func:`time.monotonic` value) and returns the messages not yet
    tried, for the caller to hand to another task. Does nothing while sending is paused, and
    stops after UNKNOWN_STREAK calls in a row whose outcome is unknown (D7 is not answering):
    what was not tried stays queued for the sweeper, which comes back after REQUEUE_AFTER.
    """
    if not webhooks_ready(ids):
        return []
    backend = get_backend()
    _submitted.clear()
    # One claim and one write per SEND_WINDOW messages: a larger window keeps the database off
    # the hot path, a smaller one leaves fewer messages in doubt when a worker is killed.
    work = _Work(ids, throttle.chunk_limit(conf.get("SEND_WINDOW")), deadline)
    streak = 0
    handed_back = []
    while (part := work.next_part()) is not None:
        if pause.is_paused():
            return []
        mine = _claim(part)
        if not mine:
            continue
        out = Outcomes()
        for message in mine:
            if message.sendout_id:
                out.sendout_ids.add(message.sendout_id)
            if out.pause_reason or streak >= UNKNOWN_STREAK:
                out.released.append(message.pk)
                continue
            if deadline is not None and time.monotonic() >= deadline:
                out.released.append(message.pk)
                handed_back.append(message.pk)
                continue
            throttle.acquire(1)
            try:
                out.accepted[message.pk] = backend.send_message(message)
            except Exception as error:  # noqa: BLE001  (every failure is judged and recorded)
                _log_failure(error, message.pk)
                _judge(out, message.pk, message.attempts, error)
            streak = streak + 1 if message.pk in out.unknown else 0
        work.retries.update(record(out, deadline=deadline))
        if out.pause_reason:
            return []
        if streak >= UNKNOWN_STREAK:
            logger.error("Stopped sending: %d calls in a row got no usable answer from D7.", streak)
            return []
    return handed_back + work.left()


def send_batch_chunks(sendout_id, ids, *, deadline=None):
    """Send the queued messages ``ids`` of sendout ``sendout_id`` through ``/secure/sendbatch``.

    The messages go in as few calls as the throttle allows, each with what its messages share
    in ``globals`` and one item per message with the rest (its own ``dlr-url``, and its text
    and sender where they differ). After a 200 they are
    ``accepted`` (D7 has them; the batch callback or the first report binds each message id)
    and are never sent again by this app. Returns ids left over, as :func:`send_single`.
    """
    sendout = Sendout.objects.filter(pk=sendout_id).first()
    if sendout is None or sendout.status == SendoutStatus.CANCELLED or not webhooks_ready(ids):
        return []
    backend = get_backend()
    _submitted.clear()
    work = _Work(ids, throttle.chunk_limit(conf.get("BATCH_CHUNK_SIZE")), deadline)
    while (part := work.next_part()) is not None:
        if pause.is_paused():
            return []
        if throttle.rate() is not None:
            # A redelivered task must not spend throttle tokens on messages already sent.
            due = Message.objects.filter(status.due_q(), status.ids_q(part)).count()
            if not due:
                continue
            throttle.acquire(due)
        rows = _claim(part)
        if not rows:
            continue
        out = Outcomes(sendout_ids={sendout.pk})
        accepted_fields = {}
        try:
            result = backend.send_chunk(sendout, rows, schedule_at=_remote_time(sendout))
        except Exception as error:  # noqa: BLE001  (every failure is judged and recorded)
            _log_failure(error, f"sendout {sendout.pk}")
            for message in rows:
                _judge(out, message.pk, message.attempts, error)
        else:
            if result.message_count != len(rows):
                logger.warning(
                    "Sendout %s: D7 batch %s queued %s of the %s messages sent.",
                    sendout.pk, result.batch_id, result.message_count, len(rows),
                )
            out.accepted = dict.fromkeys((message.pk for message in rows), None)
            accepted_fields["d7_batch_id"] = result.batch_id
            busy.retry(
                lambda: progress.add_d7_batch(sendout.pk, result.batch_id), seconds=RECORD_PATIENCE, what="a batch id"
            )
        work.retries.update(record(out, deadline=deadline, **accepted_fields))
        if out.pause_reason:
            return []
        if out.unknown:
            # A whole chunk is in doubt already; the rest waits for the sweeper.
            logger.error("Stopped sendout %s: D7 gave no usable answer to a sendbatch call.", sendout.pk)
            return []
    return work.left()


def _remote_time(sendout):
    """The time D7 should hold the sendout until, or None to send now (also when it has passed)."""
    if sendout.remote_schedule and sendout.schedule_at and sendout.schedule_at > timezone.now():
        return sendout.schedule_at
    return None


def _log_failure(error, what):
    if isinstance(error, D7Error):
        logger.warning("Sending %s: %s", what, error)
    else:
        logger.exception("Sending %s failed unexpectedly; its outcome is unknown.", what)
