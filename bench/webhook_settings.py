"""Settings of the webhook benchmark's server: PostgreSQL with persistent connections.

The database name comes from ``D7SMS_BENCH_DB`` (the harness creates and drops it), the
parameter binding from ``D7SMS_BENCH_BINDING`` ("server", the default, or "client"). The
middleware is the part of a host project's stack a webhook request pays for; both the d7sms
receiver and the bare baseline view go through the same stack.
"""

import os

# Long and varied: d7sms refuses a weak key for webhook tokens once BASE_URL is not local.
SECRET_KEY = "bench-only-secret-key-8c41e0b7d29f4a6c93e15b7028fd6a1e-c7b2"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "drf_spectacular",
    "d7sms",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "bench.bare_app"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("D7SMS_BENCH_DB", "d7sms_bench"),
        "USER": os.environ.get("D7SMS_BENCH_DB_USER", "postgres"),
        "HOST": os.environ.get("D7SMS_BENCH_DB_HOST", "127.0.0.1"),
        "PORT": int(os.environ.get("D7SMS_BENCH_DB_PORT", "5432")),
        # Persistent connections: a new one per request costs about ten times the throughput.
        "CONN_MAX_AGE": 600,
        # Server-side binding lets psycopg prepare the statements a webhook repeats, which
        # halves what PostgreSQL spends on each; "client" is Django's default.
        "OPTIONS": (
            {"server_side_binding": True, "prepare_threshold": 2}
            if os.environ.get("D7SMS_BENCH_BINDING", "server") == "server"
            else {}
        ),
    }
}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}

REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
D7SMS = {"CALLBACK_BASE_URL": "http://127.0.0.1", "USERNAME": "bench", "PASSWORD": "bench"}
