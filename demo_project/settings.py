"""Settings of the demo host project: SQLite, django-q2's ORM broker, the local sandbox.

Every D7 and infrastructure setting can come from the environment, so the same demo can be
pointed at the real D7 service or a self-hosted Jasmin unchanged.
"""

import os
from decimal import Decimal
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("D7SMS_DATA_DIR", BASE_DIR / ".demo"))
DATA_DIR.mkdir(exist_ok=True)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-insecure-key-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_q",
    "d7sms",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo_project.urls"
WSGI_APPLICATION = "demo_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

if os.environ.get("D7SMS_DATABASE_URL", "").startswith("postgres"):
    from urllib.parse import urlsplit

    _db = urlsplit(os.environ["D7SMS_DATABASE_URL"])
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _db.path.lstrip("/") or "postgres",
            "USER": _db.username or "postgres",
            "PASSWORD": _db.password or "",
            "HOST": _db.hostname or "127.0.0.1",
            "PORT": _db.port or 5432,
            # Persistent connections: a new connection per request costs ~10x on webhooks.
            "CONN_MAX_AGE": 600,
            "CONN_HEALTH_CHECKS": True,
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "db.sqlite3",
            # WAL lets the dev server, the cluster and the webhooks write side by side.
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }

AUTH_PASSWORD_VALIDATORS = []
LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("DJANGO_TIME_ZONE", "Europe/London")
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_redis = os.environ.get("D7SMS_REDIS_URL")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _redis}
        if _redis
        # The throttle is shared through the cache: the database cache is shared by every
        # process of the demo, where a local-memory cache would not be.
        else {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "d7sms_cache"}
    )
}

# django-q2 carries d7sms's send tasks. The choice for a host project:
# - ORM broker (the default here): nothing to run but the database. Tasks are rows, so with
#   PostgreSQL several clusters on several hosts share one queue. It redelivers a task whose
#   worker died after `retry` seconds; measured ~400-750 tasks/s, enough because one task
#   carries a chunk of messages (SEND_CHUNK_SIZE / BATCH_CHUNK_SIZE), not one.
# - Redis broker (set D7SMS_REDIS_URL): less load on the database; it drops the task of a
#   killed worker instead of redelivering it.
# Either way the database, not the queue, decides: a redelivered task finds its messages
# already claimed and does nothing, and d7sms's housekeeping (`manage.py d7sms_setup` creates
# its schedule) re-enqueues messages whose task was lost. So:
# - `timeout` must exceed D7SMS["TASK_SECONDS"] (a task hands its remaining messages to a new
#   task after that) plus one read timeout: a task killed by `timeout` leaves the message it
#   was sending `unknown`;
# - `retry` must exceed `timeout`, or a task still running is delivered a second time;
# - `max_attempts` 1: d7sms retries failed sends itself, with backoff, per message;
# - `catch_up` False: a schedule missed while the cluster was down runs once, not once per
#   missed tick.
Q_CLUSTER = {
    "name": "d7sms",
    "workers": int(os.environ.get("D7SMS_Q_WORKERS", "2")),
    "timeout": 120,
    "retry": 180,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "poll": 0.2,
    "label": "Django Q2",
}
if _redis:
    Q_CLUSTER["redis"] = _redis
else:
    Q_CLUSTER["orm"] = "default"

# The sandbox charges per part (d7sms.sandbox.gateway.DEFAULT_PRICE_PER_PART, "0.01").
_price = os.environ.get("D7SMS_PRICE_PER_PART", "0.01" if "D7SMS_BASE_URL" not in os.environ else "")
_price = Decimal(_price) if _price else None

D7SMS = {
    "BASE_URL": os.environ.get("D7SMS_BASE_URL", "http://127.0.0.1:8099"),
    "USERNAME": os.environ.get("D7SMS_USERNAME", "sandbox"),
    "PASSWORD": os.environ.get("D7SMS_PASSWORD", "sandbox"),
    "DEFAULT_SENDER": os.environ.get("D7SMS_DEFAULT_SENDER", "D7sms"),
    "CALLBACK_BASE_URL": os.environ.get("D7SMS_CALLBACK_BASE_URL", "http://127.0.0.1:8000"),
    "DEFAULT_REGION": os.environ.get("D7SMS_DEFAULT_REGION", "GB"),
    # The price of a part, so that costs show in money: the sandbox's own price (demo_project.run
    # starts it with this one); unknown for another endpoint unless given.
    "PRICE_PER_PART": _price,
    "CURRENCY": os.environ.get("D7SMS_CURRENCY", "EUR"),
}

REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
SPECTACULAR_SETTINGS = {"TITLE": "d7sms webhooks", "VERSION": "1", "SERVE_INCLUDE_SCHEMA": False}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"d7sms": {"handlers": ["console"], "level": os.environ.get("D7SMS_LOG_LEVEL", "INFO")}},
}
