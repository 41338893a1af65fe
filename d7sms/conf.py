"""The ``D7SMS`` settings dict, read lazily so ``override_settings`` works in tests.

Every module reads configuration through :func:`get` (or :func:`all_settings`); nothing is
cached at import time. The README's Settings section describes every key of :data:`DEFAULTS`
(tests/test_docs.py keeps the two in step).
"""

from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS = {
    # Where the D7 (or Jasmin) REST API lives, and the account to use.
    "BASE_URL": "https://rest-api.d7networks.com",
    "USERNAME": "",
    "PASSWORD": "",
    # Sender used when a message names none: up to 11 alphanumerics or a number.
    "DEFAULT_SENDER": "",
    # The public URL of this site, as D7 must call it back, without d7sms's mount path (the
    # URLs are reversed, so the path where d7sms.urls is included is added to it).
    "CALLBACK_BASE_URL": "",
    "CONNECT_TIMEOUT": 5.0,
    "READ_TIMEOUT": 30.0,
    # (single part, per part when split) sizes; gateways differ, so they are settings.
    "GSM7_PART_SIZES": (160, 153),
    "UCS2_PART_SIZES": (70, 67),
    # ISO 3166 region used to read national numbers, e.g. "GB"; None accepts only +E.164.
    "DEFAULT_REGION": None,
    # "d7" (the real API), "locmem" (an outbox for tests), "console", or a dotted path.
    "BACKEND": "d7",
    # 0 = no DLR, 1 = SMSC level, 2 = terminal level, 3 = both.
    "DLR_LEVEL": 3,
    "DLR_METHOD": "POST",
    # Messages per /secure/sendbatch call, and per worker task for single sends.
    "BATCH_CHUNK_SIZE": 500,
    "SEND_CHUNK_SIZE": 50,
    # Single sends a worker claims (and records) at a time: the most a worker killed mid-call
    # can leave "unknown". Smaller costs more database writes per message (bench/send_bench.py).
    "SEND_WINDOW": 4,
    # Seconds an "unknown" message is left for D7 to report on before the admin lists it as
    # having no sign of life at D7 (and offers to send it again).
    "UNKNOWN_QUIET_PERIOD": 900,
    # Messages per second for the whole installation (None: unthrottled).
    "THROUGHPUT": None,
    "CACHE_ALIAS": "default",
    # Retries for errors that certainly did not reach D7, 5xx and 429.
    "MAX_RETRIES": 5,
    "RETRY_BACKOFF": 2.0,
    "RETRY_BACKOFF_MAX": 300.0,
    # A message left in "sending" longer than this becomes "unknown".
    "SENDING_TIMEOUT": 300,
    # A queued message still unclaimed this many seconds after it was due is enqueued again
    # (its task was lost); claims are atomic, so a second task for it does no harm.
    "REQUEUE_AFTER": 300,
    # How long one worker task keeps sending before it hands the rest to a new task; keep it
    # well under Q_CLUSTER["timeout"], which kills a task mid-call.
    "TASK_SECONDS": 30,
    # Send in the calling process instead of through django-q2. None: only with the locmem
    # and console backends, so host-project tests see their outbox at once.
    "SYNC": None,
    # django-q2 cluster name to enqueue on (None: the default cluster).
    "Q_CLUSTER_NAME": None,
    # Seconds between housekeeping runs (stuck sends, due schedules, balance).
    "HOUSEKEEPING_INTERVAL": 60,
    # Webhook authentication: HMAC secret for URL tokens (None: derived from SECRET_KEY, and
    # from SECRET_KEY_FALLBACKS for old URLs), optional client IP allowlist and Basic auth
    # credentials ("user", "password"), which d7sms puts into every callback URL it makes.
    "WEBHOOK_SECRET": None,
    # Old WEBHOOK_SECRETs whose URLs D7 may still call (a list): tokens are made with
    # WEBHOOK_SECRET only and checked against it and these, so rotating it breaks nothing.
    "WEBHOOK_SECRET_FALLBACKS": [],
    "WEBHOOK_ALLOWED_IPS": None,
    "WEBHOOK_BASIC_AUTH": None,
    "WEBHOOK_MAX_BODY": 16384,
    # Time zone of the SMSC clock behind DLR receipt dates (subdate/donedate); D7 does not say.
    "DLR_TIME_ZONE": "UTC",
    # Admin: warn when the balance falls below this; how long a read balance is trusted.
    "BALANCE_WARNING_THRESHOLD": Decimal("10"),
    "BALANCE_CACHE_SECONDS": 300,
    # Price of one part in the balance's currency: lets the compose preview say whether the
    # balance covers a sendout (D7 reports money, not a count of messages). None: unknown.
    "PRICE_PER_PART": None,
    # The default quiet hours of a sendout: the local times, in each recipient's own time zone,
    # between which its messages may arrive, e.g. ("09:00", "20:00"). None: no window.
    "QUIET_HOURS": None,
    # The currency of the D7 account (e.g. "EUR"), shown beside the balance and every cost.
    "CURRENCY": "",
    # Opt-out footer appended to each message of a sendout that names none (e.g. "Reply STOP
    # to opt out"); counted in the parts. "": none.
    "OPT_OUT_FOOTER": "",
}


#: BACKEND values of the backends that send nothing anywhere (no message leaves the host).
LOCAL_BACKENDS = frozenset(
    {"locmem", "console", "d7sms.backends.locmem.LocmemBackend", "d7sms.backends.console.ConsoleBackend"}
)


def all_settings():
    """Return the effective D7SMS settings: DEFAULTS updated with the project's dict."""
    user = getattr(django_settings, "D7SMS", None) or {}
    if not isinstance(user, dict):
        raise ImproperlyConfigured("settings.D7SMS must be a dict.")
    merged = dict(DEFAULTS)
    merged.update(user)
    return merged


def get(name):
    """Return one D7SMS setting; an unknown name is a programming error."""
    if name not in DEFAULTS:
        raise KeyError(f"Unknown D7SMS setting {name!r}.")
    user = getattr(django_settings, "D7SMS", None) or {}
    return user.get(name, DEFAULTS[name])


def shown(url):
    """``repr(url)`` for a message (a check's, an error's), with any ``user:password@`` masked."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return repr(url)
    if "@" not in parts.netloc:
        return repr(url)
    return repr(urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2])))
