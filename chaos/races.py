"""Scenario "race": 8 callers at once through each door that sends again.

Sending runs in the calling thread (``D7SMS["SYNC"]``). First the failures are made for real:
messages to numbers the sandbox fails (:mod:`chaos.failures`) are sent while the app receives
the sandbox's reports over HTTP (:class:`chaos.webapp.AppServer`). Then that server stops, so
a resent copy cannot fail again before a later caller arrives (retrying it then would be a
new, legitimate retry), and with :mod:`chaos.crowd`:

- **resend**: each failed message resent by 8 callers at once; intended: the original and
  exactly one resend reach the sandbox;
- **retry_failed**: a sendout, half delivered and half failed, retried by 8 callers at once;
  intended: each failed number once more, each delivered one never again;
- **confirm**: one admin preview confirmed by 8 POSTs at once; intended: one sendout, each
  number once;
- **claims**: one single-mode task run by 8 workers at once (as when a task is delivered
  again), with the database reporting no ``SKIP LOCKED`` (as MySQL/MariaDB without it);
  intended: each message once.
"""

from chaos import crowd, ledger
from chaos.failures import DELIVERED, FAILING, numbers_ending, wait_final
from chaos.webapp import AppServer

SIZES = {"resend": (3, 1), "retry_failed": (40, 10), "confirm": (40, 10), "claims": (100, 50)}  # (full, --quick)
SETTINGS = {"SYNC": True, "DLR_LEVEL": 3}
# Reports come fast, and again if the app was busy.
SANDBOX_OPTIONS = ("--dlr-delay", "0.05", "--dlr-retries", "3", "--dlr-retry-delay", "0.5")
TEXTS = {name: f"chaos race {name}" for name in SIZES}


def run(stage, rng, *, quick=False, **_options):
    """The three races on ``stage``; returns their :class:`chaos.ledger.Row`."""
    from django.conf import settings

    sizes = {name: both[quick] for name, both in SIZES.items()}
    with AppServer() as app:
        settings.D7SMS = {**settings.D7SMS, "CALLBACK_BASE_URL": app.url}
        originals = _failed_messages(sizes["resend"])
        sendout, good, bad = _half_failed_sendout(sizes["retry_failed"])
        stage.sandbox.wait_idle(30)
    notes = stage.log.take()
    rows = [_resend(stage, originals), _retry_failed(stage, sendout, good, bad), _confirm(stage, sizes["confirm"]),
            _claims(stage, sizes["claims"])]
    rows[0].notes[:0] = notes
    return rows


def _failed_messages(count):
    import d7sms

    originals = [d7sms.send_sms(n, TEXTS["resend"]) for n in numbers_ending("9", count, start=230_000)]
    wait_final([m.pk for m in originals])
    return originals


def _half_failed_sendout(count):
    import d7sms

    good = numbers_ending(DELIVERED, count - count // 2, start=240_000)
    bad = numbers_ending(FAILING, count // 2, start=250_000)
    sendout = d7sms.send_batch(good + bad, TEXTS["retry_failed"], mode="batch")
    wait_final(sendout.messages.values_list("pk", flat=True))
    return sendout, good, bad


def _resend(stage, originals):
    from d7sms.models import Message

    for message in originals:
        crowd.resend(message.pk)
    copies = [Message.objects.filter(resend_of=m).count() for m in originals]
    intended = {(m.to, TEXTS["resend"]): 2 for m in originals}
    return _row(stage, f"8 x resend, {len(originals)} failed message(s)", "resend", intended,
                [f"copies made per original: {copies}"])


def _retry_failed(stage, sendout, good, bad):
    from d7sms.models import FAILURES, Message

    failed = list(Message.objects.filter(sendout=sendout, status__in=FAILURES).values_list("pk", flat=True))
    answers = crowd.retry_failed(sendout.pk)
    copies = sorted({Message.objects.filter(resend_of=pk).count() for pk in failed})
    all_copies = Message.objects.filter(sendout=sendout, resend_of__isnull=False).count()
    text = TEXTS["retry_failed"]
    intended = {**{(n, text): 1 for n in good}, **{(n, text): 2 for n in bad}}
    return _row(stage, f"8 x retry_failed, sendout of {len(good) + len(bad)}", "retry_failed", intended,
                [f"{len(failed)} failed, callers returned {answers}",
                 f"copies per failed message: {copies} ({all_copies} copies in all)"])


def _confirm(stage, count):
    from django.contrib.auth import get_user_model

    from d7sms.models import Sendout
    from tests.cluster import numbers

    user = get_user_model().objects.create_superuser("chaos", password="chaos")
    recipients = numbers(count, start=260_000)
    draft = crowd.preview(user, recipients, TEXTS["confirm"])
    answers = crowd.confirm(user, draft)
    made = Sendout.objects.filter(content=TEXTS["confirm"]).count()
    intended = dict.fromkeys(((n, TEXTS["confirm"]) for n in recipients), 1)
    return _row(stage, f"8 x confirm, preview of {count}", "confirm", intended,
                [f"HTTP answers {answers}", f"sendouts created: {made}"])


def _claims(stage, count):
    from d7sms import creation
    from d7sms.models import Message
    from tests.cluster import numbers

    recipients = numbers(count, start=270_000)
    made = creation.create_messages([Message(to=n, content=TEXTS["claims"]) for n in recipients], scheduled=False)
    with crowd.no_skip_locked():
        left = crowd.send_single([m.pk for m in made])
    intended = dict.fromkeys(((n, TEXTS["claims"]) for n in recipients), 1)
    return _row(stage, f"8 x one task of {count}, no SKIP LOCKED", "claims", intended,
                [f"workers returned {[len(x) if isinstance(x, list) else repr(x) for x in left]} left over"])


def _row(stage, title, name, intended, notes):
    stage.sandbox.wait_idle(30)
    row = ledger.tally(f"{title} / {stage.label}", intended, ledger.received(stage.sandbox.messages()),
                       ledger.app_statuses([TEXTS[name]]))
    row.notes += notes + stage.log.take()
    return row
