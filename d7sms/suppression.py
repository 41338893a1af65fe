"""The suppression list: numbers that asked not to be contacted, and the opt-out footer.

A number on the list is left out of every sendout when it is stored (counted in
``Sendout.suppressed_count``), refused by ``send_sms``, passed over by resends, and, if it was
added after its message was stored, cancelled where a worker claims the message
(:func:`d7sms.status.claim`), by the database in the same statements as the claim. Only a
message sent with ``ignore_suppression=True`` (a transactional one the law allows) goes to it.

``number_suppressed`` and ``number_unsuppressed`` (:mod:`d7sms.signals`) announce changes once
they commit.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from d7sms import conf, signals, sql
from d7sms.validation import with_footer  # noqa: F401  (the footer's place in a message)
from d7sms.models import Suppression, db_alias
from d7sms.recipients import InvalidNumber, normalise

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

#: A reply that is one of these words, and nothing else (any case, spaces and a final "."
#: or "!" aside), asks to be left alone; the words carriers and the CTIA guidelines name.
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
#: The longest opt-out footer (``Sendout.opt_out_footer``).
FOOTER_MAX = 160
#: Stored as ``error_code`` on a message cancelled because its number opted out.
ERROR_CODE = "suppressed"
_TRAILING = re.compile(r"[\s.!]+$")


def number_or_error(number) -> str:
    """``number`` in E.164, or ``ValidationError`` (code ``invalid_number``) saying why not."""
    try:
        return normalise(number)
    except InvalidNumber as exc:
        raise ValidationError(f"Invalid number {number!r}: {exc}", code="invalid_number") from None


def suppress(
    number: str | int, reason: str = "", source: str = "api", *, user: AbstractBaseUser | None = None
) -> Suppression:
    """Put ``number`` on the suppression list; return its entry.

    A number already on the list keeps its first entry (reason, source and time), and nothing
    is announced again. Raises ``ValidationError`` for a number that is not valid.
    """
    number = number_or_error(number)
    if source not in Suppression.Source.values:
        raise ValidationError(
            f"source must be one of {', '.join(Suppression.Source.values)}, not {source!r}.", code="source"
        )
    with transaction.atomic(using=db_alias()):
        # The unique number decides between callers racing to add it.
        entry, created = Suppression.objects.get_or_create(
            number=number, defaults={"reason": str(reason)[:200], "source": source, "created_by": user}
        )
        if created:
            transaction.on_commit(
                lambda: signals.number_suppressed.send(
                    sender=Suppression, number=number, reason=entry.reason, source=source
                ),
                using=db_alias(),
            )
    return entry


def suppress_many(entries, source: str, *, user: AbstractBaseUser | None = None) -> int:
    """Put every ``(E.164 number, reason)`` of ``entries`` on the list in one transaction;
    return how many were not on it yet. Numbers already on it keep their first entry."""
    entries = dict(entries)  # a number given twice counts once, with its last reason
    added = []
    with transaction.atomic(using=db_alias()):
        known = among(entries)
        new = [
            Suppression(number=n, reason=str(r)[:200], source=source, created_by=user)
            for n, r in entries.items() if n not in known
        ]
        # The unique number decides against a concurrent add: that one's entry stays.
        Suppression.objects.bulk_create(new, ignore_conflicts=True, batch_size=sql.SLICE)
        added = [(e.number, e.reason) for e in new]

        def announce():
            for number, reason in added:
                signals.number_suppressed.send(sender=Suppression, number=number, reason=reason, source=source)

        if added and signals.number_suppressed.has_listeners():
            transaction.on_commit(announce, using=db_alias())
    return len(added)


def unsuppress(number: str | int) -> bool:
    """Take ``number`` off the suppression list; return True if it was on it."""
    number = number_or_error(number)
    with transaction.atomic(using=db_alias()):
        deleted = Suppression.objects.filter(number=number).delete()[0]
        if deleted:
            transaction.on_commit(
                lambda: signals.number_unsuppressed.send(sender=Suppression, number=number), using=db_alias()
            )
    return bool(deleted)


def is_stop(text: str) -> bool:
    """True when ``text`` is a whole-message opt-out word (:data:`STOP_WORDS`)."""
    return _TRAILING.sub("", str(text or "")).strip().upper() in STOP_WORDS


def opt_out_reply(number: str | int, text: str) -> bool:
    """Handle a reply the host project received on its own inbound channel: when ``text`` is an
    opt-out word (:data:`STOP_WORDS`, the whole message), put ``number`` on the list (source
    "reply") and return True; otherwise change nothing and return False."""
    if not is_stop(text):
        return False
    suppress(number, reason=f"Replied {str(text).strip()[:40]!r}", source=Suppression.Source.REPLY)
    return True


def is_suppressed(number: str) -> bool:
    """True when the E.164 ``number`` is on the list."""
    return Suppression.objects.filter(number=number).exists()


def among(numbers) -> set[str]:
    """The E.164 ``numbers`` (any iterable) that are on the list.

    For a count or a preview: what is sent is decided by :func:`blocked_q`, in the database.
    """
    wanted = numbers if isinstance(numbers, (set, dict)) else set(numbers)
    listed = Suppression.objects.count() if wanted else 0
    if not listed:
        return set()
    if listed <= len(wanted):
        # Reading the whole list once is cheaper than asking about each number in slices.
        every = Suppression.objects.values_list("number", flat=True).iterator(chunk_size=5000)
        return {number for number in every if number in wanted}
    found = set()
    for part in sql.slices(wanted):
        found.update(Suppression.objects.filter(number__in=part).values_list("number", flat=True))
    return found


def blocked_q() -> Q:
    """A filter for messages that must not be sent: to a number on the list, and not sent with
    ``ignore_suppression``. Evaluated by the database, in the statement that uses it."""
    return Q(ignore_suppression=False) & Q(Exists(Suppression.objects.filter(number=OuterRef("to"))))


def footer(value: str | None) -> str:
    """The opt-out footer to use: ``value``, or OPT_OUT_FOOTER when it is None."""
    text = conf.get("OPT_OUT_FOOTER") if value is None else value
    if not isinstance(text, str):
        raise ValidationError("The opt-out footer must be text.", code="opt_out_footer")
    text = text.strip()
    if len(text) > FOOTER_MAX:
        raise ValidationError(
            f"The opt-out footer is {len(text)} characters; keep it to {FOOTER_MAX}.", code="opt_out_footer"
        )
    return text
