"""System checks of how the D7SMS settings fit the project: URLs, hosts, broker, cache, database."""

import sys

import pytest
from django.core import checks
from django.core.management import call_command
from django.urls import path

from d7sms import project_checks, tasks

# This module doubles as a ROOT_URLCONF that forgot d7sms.urls.
urlpatterns = [path("elsewhere/", lambda request: None)]


def ids(messages):
    return sorted(m.id for m in messages)


def everything(**kwargs):
    return [m for m in checks.run_checks(**kwargs) if m.id.startswith("d7sms.")]


@pytest.fixture
def cluster_settings(settings):
    """Settings that send through the django-q2 cluster (the d7 backend, SYNC off)."""
    settings.D7SMS = {**settings.D7SMS, "BACKEND": "d7", "SYNC": None}
    return settings


def test_the_test_settings_pass_every_check(settings):
    assert everything(include_deployment_checks=True) == []


# -- the URLs given to D7 -------------------------------------------------------------------


@pytest.mark.parametrize("base", ["https://www.example.com/d7sms", "https://www.example.com/d7sms/"])
def test_a_callback_url_ending_in_the_mount_path(settings, base):
    settings.D7SMS = {**settings.D7SMS, "CALLBACK_BASE_URL": base}
    [error] = project_checks.check_callback_urls()
    assert error.id == "d7sms.E030" and repr(base) in error.msg
    assert "https://www.example.com/d7sms/d7sms/dlr/" in error.msg
    assert "'https://www.example.com'" in error.hint


def test_a_callback_url_under_a_path_of_its_own_is_fine(settings):
    settings.D7SMS = {**settings.D7SMS, "CALLBACK_BASE_URL": "https://www.example.com/shop"}
    assert project_checks.check_callback_urls() == []


def test_receivers_not_mounted(settings):
    settings.ROOT_URLCONF = __name__
    [error] = project_checks.check_callback_urls()
    assert error.id == "d7sms.E034" and 'include("d7sms.urls")' in error.hint


def test_receivers_need_not_be_mounted_without_a_callback_url(settings):
    settings.ROOT_URLCONF = __name__
    settings.D7SMS = {**settings.D7SMS, "CALLBACK_BASE_URL": ""}
    assert project_checks.check_callback_urls() == []


# -- ALLOWED_HOSTS ------------------------------------------------------------------------------


def test_a_callback_host_django_would_refuse_in_production(settings):
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["www.example.com"]
    settings.D7SMS = {**settings.D7SMS, "CALLBACK_BASE_URL": "https://hooks.example.com"}
    assert project_checks.check_callback_host() == []  # manage.py test turns DEBUG off
    [error] = project_checks.check_callback_host_deploy()
    assert error.id == "d7sms.E032" and "'hooks.example.com'" in error.msg and "'hooks.example.com'" in error.hint
    assert "d7sms.E032" in ids(everything(include_deployment_checks=True))


@pytest.mark.parametrize("allowed", [["hooks.example.com"], [".example.com"], ["*"]])
def test_an_allowed_callback_host(settings, allowed):
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = allowed
    settings.D7SMS = {**settings.D7SMS, "CALLBACK_BASE_URL": "https://hooks.example.com"}
    assert project_checks.check_callback_host_deploy() == []


def test_in_development_a_tunnel_host_missing_from_allowed_hosts(settings):
    settings.DEBUG = True
    settings.ALLOWED_HOSTS = []
    settings.D7SMS = {**settings.D7SMS, "CALLBACK_BASE_URL": "https://abc123.tunnel.example"}
    [error] = project_checks.check_callback_host()
    assert error.id == "d7sms.E032"


def test_in_development_localhost_is_allowed_as_django_allows_it(settings):
    settings.DEBUG = True
    settings.ALLOWED_HOSTS = []  # what startproject writes
    settings.D7SMS = {**settings.D7SMS, "CALLBACK_BASE_URL": "http://127.0.0.1:8000"}
    assert project_checks.check_callback_host() == []


# -- the broker -------------------------------------------------------------------------------


@pytest.fixture
def without_redis(monkeypatch):
    """The redis package is installed here; a None entry in sys.modules makes importing it fail,
    as it does where it is not installed."""
    monkeypatch.setitem(sys.modules, "redis", None)


@pytest.mark.parametrize(
    "q_cluster", [{"name": "x", "redis": "redis://127.0.0.1:6379/0"}, {"name": "x"}], ids=["redis", "no broker named"]
)
def test_the_redis_broker_without_redis_installed(cluster_settings, without_redis, q_cluster):
    cluster_settings.Q_CLUSTER = q_cluster
    [error] = project_checks.check_broker()
    assert error.id == "d7sms.E033" and "'redis'" in error.msg
    assert 'pip install "d7sms[redis]"' in error.hint and '"orm": "default"' in error.hint


def test_the_orm_broker_needs_no_redis(cluster_settings, without_redis):
    cluster_settings.Q_CLUSTER = {"name": "x", "orm": "default"}
    assert project_checks.check_broker() == []


def test_no_broker_needed_when_sending_in_process(settings, without_redis):
    settings.D7SMS = {**settings.D7SMS, "BACKEND": "locmem"}
    settings.Q_CLUSTER = {"name": "x", "redis": "redis://127.0.0.1:6379/0"}
    assert project_checks.check_broker() == []


def test_the_redis_broker_with_redis_installed(cluster_settings):
    cluster_settings.Q_CLUSTER = {"name": "x", "redis": "redis://127.0.0.1:6379/0"}
    assert project_checks.check_broker() == []


# -- the cache --------------------------------------------------------------------------------

LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}


def test_throughput_with_a_per_process_cache(settings):
    settings.CACHES = {"default": LOCMEM}
    settings.D7SMS = {**settings.D7SMS, "THROUGHPUT": 10}
    [warning] = project_checks.check_cache()
    assert warning.id == "d7sms.W030" and "LocMemCache" in warning.msg and "DatabaseCache" in warning.hint


def test_throughput_with_a_cache_that_keeps_nothing(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    settings.D7SMS = {**settings.D7SMS, "THROUGHPUT": 10}
    [error] = project_checks.check_cache()
    assert error.id == "d7sms.E035"


def test_throughput_with_a_shared_cache(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "c"}}
    settings.D7SMS = {**settings.D7SMS, "THROUGHPUT": 10}
    assert project_checks.check_cache() == []


def test_no_throughput_no_cache_needed(settings):
    settings.CACHES = {"default": LOCMEM}
    assert project_checks.check_cache() == []


def test_a_cache_alias_that_does_not_exist(settings):
    settings.D7SMS = {**settings.D7SMS, "CACHE_ALIAS": "shared"}
    [error] = project_checks.check_cache()
    assert error.id == "d7sms.E036" and "'shared'" in error.msg


# -- SQLite -----------------------------------------------------------------------------------


def sqlite(options=None):
    """A database entry as `django-admin startproject` writes it, plus ``options``."""
    entry = {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}
    return {**entry, "OPTIONS": options} if options is not None else entry


def test_sqlite_as_startproject_writes_it(cluster_settings, monkeypatch):
    # Only the entry the check reads is replaced: the open test database stays as it is.
    monkeypatch.setitem(cluster_settings.DATABASES, "default", sqlite())
    [warning] = project_checks.check_sqlite()
    assert warning.id == "d7sms.W032" and "'default'" in warning.msg
    for missing in ("timeout", "transaction_mode IMMEDIATE", "journal_mode=WAL"):
        assert missing in warning.msg
    assert repr(project_checks.SQLITE_OPTIONS) in warning.hint


def test_sqlite_with_what_the_hint_says(cluster_settings, monkeypatch):
    monkeypatch.setitem(cluster_settings.DATABASES, "default", sqlite(dict(project_checks.SQLITE_OPTIONS)))
    assert project_checks.check_sqlite() == []


def test_sqlite_with_a_short_timeout(cluster_settings, monkeypatch):
    monkeypatch.setitem(cluster_settings.DATABASES, "default", sqlite({**project_checks.SQLITE_OPTIONS, "timeout": 5}))
    [warning] = project_checks.check_sqlite()
    assert "(it is 5)" in warning.msg and "transaction_mode" not in warning.msg


def test_sqlite_is_fine_when_sending_in_process(settings, monkeypatch):
    settings.D7SMS = {**settings.D7SMS, "BACKEND": "locmem"}
    monkeypatch.setitem(settings.DATABASES, "default", sqlite())
    assert project_checks.check_sqlite() == []


# -- the housekeeping schedule ----------------------------------------------------------------


@pytest.fixture
def outside_a_test_run(monkeypatch):
    """The check stays quiet in a test run, whose database never has the schedule; here it
    must act as under `manage.py migrate`, so Django's test outbox is hidden for a moment."""
    from django.core import mail

    monkeypatch.delattr(mail, "outbox")


@pytest.mark.django_db
def test_missing_housekeeping_schedule(cluster_settings, outside_a_test_run):
    [warning] = project_checks.check_housekeeping(databases=["default"])
    assert warning.id == "d7sms.W031" and "d7sms_setup" in warning.hint
    assert project_checks.check_housekeeping() == []  # plain `check` does not touch the database
    call_command("d7sms_setup", stdout=sys.stderr)
    assert project_checks.check_housekeeping(databases=["default"]) == []


@pytest.mark.django_db
def test_housekeeping_check_is_quiet_in_a_test_run(cluster_settings):
    assert not tasks.housekeeping_scheduled()
    assert project_checks.check_housekeeping(databases=["default"]) == []


@pytest.mark.django_db(transaction=True)
def test_housekeeping_check_waits_for_migrate(cluster_settings, outside_a_test_run):
    call_command("migrate", "d7sms", "zero", verbosity=0)
    try:
        assert project_checks.check_housekeeping(databases=["default"]) == []
    finally:
        call_command("migrate", verbosity=0)


def test_a_callback_url_with_basic_auth_is_shown_masked(settings):
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["www.example.com"]
    settings.D7SMS = {**settings.D7SMS, "CALLBACK_BASE_URL": "https://d7:s3cr3t-pw@hooks.example.com/d7sms"}
    messages = project_checks.check_callback_urls() + project_checks.check_callback_host_deploy()
    assert ids(messages) == ["d7sms.E030", "d7sms.E032"]
    text = " ".join(f"{m.msg} {m.hint}" for m in messages)
    assert "s3cr3t-pw" not in text and "***@hooks.example.com" in text
