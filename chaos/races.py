"""Scenario "race": 8 callers at once through each door that sends again.

Sending runs in the calling thread (``D7SMS["SYNC"]``), the sandbox's delivery reports reach
the app over real HTTP (:class:`chaos.webapp.AppServer`), so the failures are the sandbox's own
(:mod:`chaos.failures`). Then, with :mod:`chaos.crowd`:

- **resend**: failed messages, each resent by 8 callers at once; intended: the original and
  exactly one resend reach the sandbox;
- **retry_failed**: a sendout, half delivered and half failed, retried by 8 callers at once;
  intended: each failed number once more, each delivered one never again;
- **confirm**: one admin preview confirmed by 8 POSTs at once; intended: one sendout, each
  number once.
"""

from chaos import crowd, ledger
from chaos.failures import FAILING, numbers_ending, wait_final
from chaos.webapp import AppServer

SIZES = {"resend": (3, 1), "retry_failed": (40, 10), "confirm": (40, 10)}  # (full run, --quick)
SETTINGS = {"SYNC": True, "DLR_LEVEL": 3}
# Reports come fast, and again if the app was busy.
SANDBOX_OPTIONS = ("--dlr-delay", "0.05", "--dlr-retries", "3", "--dlr-retry-delay", "0.5")


def run(stage, rng, *, quick=False, **_options):
    """The three races on ``stage``; returns their :class:`chaos.ledger.Row`."""
    from django.conf import settings

    with AppServer() as app:
        settings.D7SMS = {**settings.D7SMS, "CALLBACK_BASE_URL": app.url}
        rows = [race(stage, SIZES[name][quick]) for name, race in
                (("resend", _resend), ("retry_failed", _retry_failed), ("confirm", _confirm))]
        stage.sandbox.wait_idle(30)  # the last reports, before the server goes
    return rows


def _resend(stage, count):
    import d7sms
    from d7sms.models import Message

    text = "chaos race resend"
    originals = [d7sms.send_sms(n, text) for n in numbers_ending("9", count, start=230_000)]
    wait_final([m.pk for m in originals])
    for message in originals:
        crowd.resend(message.pk)
    copies = [Message.objects.filter(resend_of=m).count() for m in originals]
    intended = {(m.to, text): 2 for m in originals}
    return _row(stage, f"8 x resend, {count} failed message(s)", text, intended,
                [f"copies made per original: {copies}"])


def _retry_failed(stage, count):
    import d7sms
    from d7sms.models import FAILURES, Message
    from tests.cluster import numbers

    text = "chaos race retry_failed"
    good, bad = numbers(count - count // 2, start=240_000), numbers_ending(FAILING, count // 2, start=250_000)
    sendout = d7sms.send_batch(good + bad, text, mode="batch")
    fates = wait_final(sendout.messages.values_list("pk", flat=True))
    answers = crowd.retry_failed(sendout.pk)
    failed = Message.objects.filter(sendout=sendout, resend_of__isnull=True, status__in=FAILURES)
    copies = sorted({Message.objects.filter(resend_of=m).count() for m in failed})
    intended = {**{(n, text): 1 for n in good}, **{(n, text): 2 for n in bad}}
    return _row(stage, f"8 x retry_failed, sendout of {count}", text, intended,
                [f"first fates {fates}", f"callers returned {answers}", f"copies per failed message: {copies}"])


def _confirm(stage, count):
    from django.contrib.auth import get_user_model

    from d7sms.models import Sendout
    from tests.cluster import numbers

    text = "chaos race confirm"
    user = get_user_model().objects.create_superuser("chaos", password="chaos")
    recipients = numbers(count, start=260_000)
    draft = crowd.preview(user, recipients, text)
    answers = crowd.confirm(user, draft)
    made = Sendout.objects.filter(content=text).count()
    return _row(stage, f"8 x confirm, preview of {count}", text, dict.fromkeys(((n, text) for n in recipients), 1),
                [f"HTTP answers {answers}", f"sendouts created: {made}"])


def _row(stage, title, text, intended, notes):
    stage.sandbox.wait_idle(30)
    row = ledger.tally(f"{title} / {stage.label}", intended, ledger.received(stage.sandbox.messages()),
                       ledger.app_statuses([text]))
    row.notes = notes
    return row
