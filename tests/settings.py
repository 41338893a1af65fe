"""Settings for the test suite.

``D7SMS_TEST_DATABASE=postgres`` runs on PostgreSQL (127.0.0.1:5432, database ``test``) with
django-q2's Redis broker and a Redis cache; the default is SQLite with the ORM broker.
Processes started by the tests (django-q2 clusters, gunicorn) get ``D7SMS_DB_NAME`` so that
they open the test database rather than the one named here.
"""

import json
import os
import tempfile

BACKEND = os.environ.get("D7SMS_TEST_DATABASE", "sqlite")
REDIS_URL = os.environ.get("D7SMS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

# Long and varied like a production key: the webhook secret is derived from it (d7sms.E020).
SECRET_KEY = "tests-only-secret-key-5f0c2a9e7b1d4c6e8a3f2b9d0e7c1a4b-9e2d"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "Europe/Berlin"

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
]
ROOT_URLCONF = "tests.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
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
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if BACKEND == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("D7SMS_DB_NAME", "test"),
            "USER": "postgres",
            "HOST": "127.0.0.1",
            "PORT": 5432,
            "CONN_MAX_AGE": 60,
            # Per process, so two runs on one server never flush each other's tables.
            "TEST": {"NAME": f"test_d7sms_{os.getpid()}"},
        }
    }
else:
    _file = os.path.join(tempfile.gettempdir(), f"d7sms-test-{os.getpid()}.sqlite3")
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("D7SMS_DB_NAME", _file),
            # A file, not memory: cluster processes started by the tests share it.
            "TEST": {"NAME": _file},
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }

# What a fresh `django-admin startproject` writes (DEBUG on; SQLite without OPTIONS: a 5 s busy
# timeout, deferred transactions, no WAL), for the processes of tests/test_sqlite_contention.py.
if BACKEND != "postgres" and os.environ.get("D7SMS_TEST_SQLITE_DEFAULTS"):
    del DATABASES["default"]["OPTIONS"]
    DEBUG = True

# A second database: tests/test_routing.py routes d7sms to it (tests/routers.py) to prove that
# every statement and transaction follows the project's routers.
if BACKEND == "postgres":
    DATABASES["sms"] = {**DATABASES["default"], "TEST": {"NAME": f"test_d7sms_sms_{os.getpid()}"}}
else:
    _sms_file = os.path.join(tempfile.gettempdir(), f"d7sms-test-sms-{os.getpid()}.sqlite3")
    DATABASES["sms"] = {**DATABASES["default"], "NAME": _sms_file, "TEST": {"NAME": _sms_file}}

if BACKEND == "postgres":
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# A cache that keeps nothing, as a project may configure in development (tests/test_throttle_cache.py).
CACHES["dummy"] = {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}

Q_CLUSTER = {
    # Per test run (clusters it starts inherit it), so concurrent runs sharing one Redis never
    # take each other's tasks.
    "name": os.environ.get("D7SMS_TEST_Q_NAME", f"d7sms_tests_{os.getpid()}"),
    "workers": 2,
    "timeout": 90,
    "retry": 120,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "poll": 0.1,
    "sync": False,
}
if BACKEND == "postgres":
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

D7SMS = {
    "BASE_URL": "http://127.0.0.1:9",  # tests point this at their own sandbox
    "USERNAME": "foo",
    "PASSWORD": "bar",
    "DEFAULT_SENDER": "D7sms",
    "CALLBACK_BASE_URL": "https://testserver",
    "DEFAULT_REGION": "GB",
}

# Processes started by the tests (see tests/cluster.py) get the test's sandbox and overrides.
if os.environ.get("D7SMS_TEST_BASE_URL"):
    D7SMS["BASE_URL"] = os.environ["D7SMS_TEST_BASE_URL"]
if os.environ.get("D7SMS_TEST_SETTINGS"):
    D7SMS.update(json.loads(os.environ["D7SMS_TEST_SETTINGS"]))
if os.environ.get("D7SMS_TEST_Q_CLUSTER"):
    Q_CLUSTER.update(json.loads(os.environ["D7SMS_TEST_Q_CLUSTER"]))

# Processes started by tests/test_webhooks_schema.py run without them, as a new project does.
if os.environ.get("D7SMS_TEST_WITHOUT_DRF_SETTINGS"):
    INSTALLED_APPS.remove("drf_spectacular")
else:
    REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
    SPECTACULAR_SETTINGS = {"TITLE": "d7sms webhooks", "VERSION": "1", "SERVE_INCLUDE_SCHEMA": False}
