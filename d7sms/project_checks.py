"""System checks of how the D7SMS settings fit the rest of the project: the URLs D7 is given,
ALLOWED_HOSTS, django-q2's broker, the cache the throttle shares and the database the workers
share (ids d7sms.E03x / W03x; the README's Troubleshooting section lists them all).

Each message names the value that is wrong and each hint says what to write instead. Checks
that need the database run only when Django hands them one (``migrate``, ``check --database``)
and say nothing when it is not migrated yet.
"""

import importlib
from urllib.parse import urljoin, urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections
from django.http.request import validate_host
from django.urls import NoReverseMatch, reverse

from d7sms import conf, tasks
from d7sms.conf import shown
from d7sms.backends import is_local
from d7sms.models import Message, db_alias

# django-q2 uses Redis unless one of these names another broker.
OTHER_BROKERS = ("orm", "broker_class", "iron_mq", "sqs", "mongo")
# What lets the web server, the workers and the receivers write one SQLite file side by side:
# a writer waits for the lock instead of failing at once, takes it when its transaction begins
# (not halfway through, where SQLite cannot wait), and readers never block writers (WAL).
SQLITE_OPTIONS = {
    "timeout": 20,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}
# Django's own fallback when DEBUG is on and ALLOWED_HOSTS is empty.
DEBUG_HOSTS = [".localhost", "127.0.0.1", "[::1]"]


def _settings():
    user = getattr(settings, "D7SMS", None)
    return conf.all_settings() if user is None or isinstance(user, dict) else None


def _callback_parts(s):
    callback = s["CALLBACK_BASE_URL"] if s else ""
    try:
        parts = urlsplit(callback)
    except ValueError:
        return None
    return parts if callback and parts.scheme in ("http", "https") and parts.hostname else None


def _sends_through_cluster(s):
    return not is_local(s["BACKEND"]) if s["SYNC"] is None else not s["SYNC"]


@register(Tags.urls)
def check_callback_urls(app_configs=None, **kwargs):
    """The receivers are mounted, and CALLBACK_BASE_URL does not repeat their mount path."""
    s = _settings()
    parts = _callback_parts(s)
    if parts is None:
        return []
    try:
        schema = reverse("d7sms:schema")
    except NoReverseMatch:
        return [
            Error(
                "d7sms.urls is not included in ROOT_URLCONF: the delivery reports D7 sends to "
                f"{shown(s['CALLBACK_BASE_URL'])} have nowhere to go, and no message can be given a dlr-url.",
                hint='Add path("d7sms/", include("d7sms.urls")) to your urlpatterns.',
                id="d7sms.E034",
            )
        ]
    except (ImportError, ImproperlyConfigured):
        return []  # Django's own URL checks report a broken ROOT_URLCONF
    mount = schema[: -len("schema/")].rstrip("/")
    path = parts.path.rstrip("/")
    if mount and path.endswith(mount):
        base = s["CALLBACK_BASE_URL"].rstrip("/")
        fixed = base[: len(base) - len(mount)]
        example = urljoin(base + "/", schema.lstrip("/").replace("schema/", "dlr/..."))
        return [
            Error(
                f"D7SMS['CALLBACK_BASE_URL'] {shown(s['CALLBACK_BASE_URL'])} ends in {mount!r}, where d7sms.urls is "
                f"mounted: the URLs given to D7 would repeat it ({shown(example)[1:-1]}) and every report would "
                "get a 404.",
                hint=f"Set CALLBACK_BASE_URL to the site's root, {shown(fixed)}; the mount path is added to it.",
                id="d7sms.E030",
            )
        ]
    return []


def _host_problem(s, allowed):
    parts = _callback_parts(s)
    if parts is None:
        return []
    host = parts.hostname
    shown_host = f"[{host}]" if ":" in host else host
    if validate_host(shown_host, allowed):
        return []
    return [
        Error(
            f"D7SMS['CALLBACK_BASE_URL'] {shown(s['CALLBACK_BASE_URL'])} names the host {shown_host!r}, which "
            f"ALLOWED_HOSTS ({allowed!r}) does not allow: Django would answer every report D7 sends with "
            "400 Bad Request.",
            hint=f"Add {shown_host!r} to ALLOWED_HOSTS.",
            id="d7sms.E032",
        )
    ]


@register(Tags.security)
def check_callback_host(app_configs=None, **kwargs):
    """With DEBUG on (development): the callback host is one Django answers for.

    With DEBUG off the deploy check below says it: the test runner turns DEBUG off and adds its
    own host, which would make this one wrong under ``manage.py test``.
    """
    if not settings.DEBUG:
        return []
    return _host_problem(_settings(), list(settings.ALLOWED_HOSTS) or DEBUG_HOSTS)


@register(Tags.security, deploy=True)
def check_callback_host_deploy(app_configs=None, **kwargs):
    """In production: the callback host is in ALLOWED_HOSTS."""
    if settings.DEBUG:
        return []
    return _host_problem(_settings(), list(settings.ALLOWED_HOSTS))


def _importable(name):
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


@register(Tags.compatibility)
def check_broker(app_configs=None, **kwargs):
    """django-q2's broker can be imported where sends go through the cluster."""
    s = _settings()
    if s is None or not _sends_through_cluster(s):
        return []
    q_cluster = getattr(settings, "Q_CLUSTER", None) or {}
    if any(q_cluster.get(key) for key in OTHER_BROKERS):
        return []
    needed = ["redis", "django_redis"] if q_cluster.get("django_redis") else ["redis"]
    missing = [name for name in needed if not _importable(name)]
    if not missing:
        return []
    which = "Q_CLUSTER names the Redis broker" if q_cluster.get("redis") or q_cluster.get("django_redis") else (
        "Q_CLUSTER names no broker, so django-q2 uses Redis"
    )
    return [
        Error(
            f"{which}, but the {' and '.join(repr(m) for m in missing)} package is not installed: "
            "`manage.py qcluster` would die at start ('sentinel exited with code 1') and nothing would be sent.",
            hint='Install it (pip install "d7sms[redis]"), or use the database as the broker: '
            'Q_CLUSTER = {..., "orm": "default"}.',
            id="d7sms.E033",
        )
    ]


@register(Tags.caches)
def check_cache(app_configs=None, **kwargs):
    """The cache the throttle and the receivers count in exists and is shared between processes."""
    s = _settings()
    if s is None:
        return []
    alias = s["CACHE_ALIAS"]
    caches_setting = getattr(settings, "CACHES", {})
    if alias not in caches_setting:
        return [
            Error(
                f"D7SMS['CACHE_ALIAS'] {alias!r} is not a cache in CACHES ({sorted(caches_setting)!r}).",
                hint="Name one of CACHES, or leave CACHE_ALIAS out to use 'default'.",
                id="d7sms.E036",
            )
        ]
    if not s["THROUGHPUT"]:
        return []
    backend = str(caches_setting[alias].get("BACKEND", ""))
    if backend.endswith(".DummyCache"):
        return [
            Error(
                f"D7SMS['THROUGHPUT'] is {s['THROUGHPUT']!r} but the {alias!r} cache is a DummyCache, which "
                "keeps nothing: the workers could not share a count, so each would throttle only itself.",
                hint="Use Redis, Memcached or the database cache (manage.py createcachetable) for that cache.",
                id="d7sms.E035",
            )
        ]
    if backend.endswith(".LocMemCache"):
        return [
            Warning(
                f"D7SMS['THROUGHPUT'] is {s['THROUGHPUT']!r} but the {alias!r} cache is a LocMemCache, which "
                "each process keeps for itself: every worker would send THROUGHPUT messages a second.",
                hint="Use a cache all workers share: Redis, Memcached, or the database cache "
                '({"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "d7sms_cache"} '
                "and manage.py createcachetable).",
                id="d7sms.W030",
            )
        ]
    return []


@register(Tags.database)
def check_sqlite(app_configs=None, **kwargs):
    """On SQLite, the options that let the web server, the workers and the receivers share the file."""
    s = _settings()
    if s is None or not _sends_through_cluster(s):
        return []
    alias = db_alias()
    entry = settings.DATABASES.get(alias, {})
    if entry.get("ENGINE") != "django.db.backends.sqlite3":
        return []
    options = entry.get("OPTIONS") or {}
    init = str(options.get("init_command", "")).lower().replace(" ", "")
    timeout = options.get("timeout")
    missing = []
    if not isinstance(timeout, (int, float)) or timeout < 10:
        missing.append(f"a timeout of at least 10 s (it is {timeout!r})" if timeout else "a timeout")
    if str(options.get("transaction_mode", "")).upper() != "IMMEDIATE":
        missing.append("transaction_mode IMMEDIATE")
    if "journal_mode=wal" not in init:
        missing.append("journal_mode=WAL")
    if not missing:
        return []
    return [
        Warning(
            f"DATABASES[{alias!r}] is SQLite without {', '.join(missing)}: while the workers, the web server "
            "and D7's reports write at once, calls fail with 'database is locked' and messages are left stuck.",
            hint=f'Add DATABASES[{alias!r}]["OPTIONS"] = {SQLITE_OPTIONS!r}, or use PostgreSQL.',
            id="d7sms.W032",
        )
    ]


def _in_test_run():
    # django.core.mail.outbox exists exactly while Django's test environment is set up; a test
    # database never has the schedule, which d7sms_setup creates, not a migration.
    from django.core import mail

    return hasattr(mail, "outbox")


@register(Tags.database)
def check_housekeeping(app_configs=None, databases=None, **kwargs):
    """The housekeeping schedule exists, once the database is migrated (database checks only)."""
    s = _settings()
    if not databases or s is None or not _sends_through_cluster(s) or _in_test_run():
        return []
    alias = db_alias()
    if alias not in databases:
        return []
    try:
        tables = set(connections[alias].introspection.table_names())
        if Message._meta.db_table not in tables:
            return []  # not migrated yet
        scheduled = tasks.housekeeping_scheduled()
    except DatabaseError:
        return []
    if scheduled is not False:
        return []
    return [
        Warning(
            f"There is no django-q2 schedule {tasks.HOUSEKEEPING_SCHEDULE!r}: messages left in 'sending' by a "
            "stopped worker, tasks the broker lost and local schedules missed while the cluster was down "
            "would never be dealt with.",
            hint="Run `python manage.py d7sms_setup` (safe to run on every deploy).",
            id="d7sms.W031",
        )
    ]
