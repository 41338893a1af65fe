"""Money as staff see it: the price of a part, what parts cost, amounts with their currency.

D7 charges per part, in the account's currency, for each message it hands to an operator. A
message counts as charged once D7 took it (``submitted_at``: the send call was answered 200)
unless D7 itself refused it before any operator saw it (:data:`REFUSED_BY_D7`). Resends and
retries are charged like any message: the cost of a sendout covers every attempt.
"""

from decimal import Decimal

from django.db.models import Q, Sum

from d7sms import conf
from d7sms.models import Message

#: ``error_code`` of a message that D7 refused, or failed inside D7, before any operator took it.
REFUSED_BY_D7 = ("NoRoute", "errback")
CHARGED = Q(submitted_at__isnull=False) & ~Q(error_code__in=REFUSED_BY_D7)
_CENT = Decimal("0.01")


def price_per_part():
    """The configured price of one part (``D7SMS["PRICE_PER_PART"]``), or None when unknown."""
    value = conf.get("PRICE_PER_PART")
    return Decimal(str(value)) if value is not None else None


def currency():
    """The configured CURRENCY (e.g. "EUR"), or "" when not set."""
    return str(conf.get("CURRENCY") or "")


def cost(parts):
    """What ``parts`` parts cost at PRICE_PER_PART, or None without a price."""
    price = price_per_part()
    return price * parts if price is not None else None


def amount(value):
    """``value`` as plain digits: two decimals, more only where a price is finer than a cent."""
    if value is None:
        return ""
    value = Decimal(value)
    cents = value.quantize(_CENT)
    return str(cents) if cents == value else format(value.normalize(), "f")


def text(value):
    """``value`` with the currency ("12.30 EUR"); "" for None."""
    if value is None:
        return ""
    return f"{amount(value)} {currency()}".strip()


def is_charged(submitted_at, error_code):
    """True when a message with these values was charged by D7 (the row form of CHARGED)."""
    return submitted_at is not None and error_code not in REFUSED_BY_D7


def sendout_cost(sendout):
    """``(parts, cost)`` charged for every attempt of ``sendout`` so far; cost None without a price."""
    parts = Message.objects.filter(CHARGED, sendout=sendout).aggregate(n=Sum("parts"))["n"] or 0
    return parts, cost(parts)
