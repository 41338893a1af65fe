"""System checks on the D7SMS settings."""

import pytest
from django.core import checks

from d7sms.checks import check_production_settings, check_settings


def ids(messages):
    return sorted(m.id for m in messages)


def test_valid_settings_pass(settings):
    assert check_settings() == []


def test_registered_with_django(settings):
    settings.D7SMS = {**settings.D7SMS, "BASE_URL": "nonsense"}
    assert "d7sms.E002" in ids(checks.run_checks())


@pytest.mark.parametrize("blank", ["USERNAME", "PASSWORD"])
def test_missing_credentials_is_a_deploy_check(settings, blank):
    """migrate, showmigrations and manage.py test run without credentials (as in CI);
    `check --deploy` still says they are missing."""
    settings.D7SMS = {**settings.D7SMS, blank: ""}
    assert "d7sms.E001" not in ids(checks.run_checks())
    assert "d7sms.E001" in ids(checks.run_checks(include_deployment_checks=True))
    assert ids(check_production_settings()) == ["d7sms.E001"]


def test_missing_credentials_fine_with_test_backend(settings):
    settings.D7SMS = {**settings.D7SMS, "USERNAME": "", "PASSWORD": "", "BACKEND": "locmem"}
    assert check_settings() == [] and check_production_settings() == []


@pytest.mark.parametrize("url", ["rest-api.d7networks.com", "ftp://host", "http://", "http://host:port"])
def test_malformed_base_url_shows_the_value(settings, url):
    settings.D7SMS = {**settings.D7SMS, "BASE_URL": url}
    [error] = check_settings()
    assert error.id == "d7sms.E002" and repr(url) in error.msg


def test_a_base_url_shown_in_a_check_hides_its_password(settings):
    settings.D7SMS = {**settings.D7SMS, "BASE_URL": "ftp://user:pa55word@host"}
    [error] = check_settings()
    assert error.id == "d7sms.E002" and "pa55word" not in error.msg and "***@host" in error.msg


@pytest.mark.parametrize(
    "url, root",
    [
        ("https://rest-api.d7networks.com/secure/send", "https://rest-api.d7networks.com"),
        ("https://rest-api.d7networks.com/secure/sendbatch/", "https://rest-api.d7networks.com"),
        ("http://jasmin.example.com:8080/api/secure/balance", "http://jasmin.example.com:8080/api"),
    ],
)
def test_a_base_url_ending_in_an_endpoint(settings, url, root):
    settings.D7SMS = {**settings.D7SMS, "BASE_URL": url}
    [error] = check_settings()
    assert error.id == "d7sms.E031" and repr(url) in error.msg and repr(root) in error.hint


def test_a_base_url_under_a_path_is_fine(settings):
    settings.D7SMS = {**settings.D7SMS, "BASE_URL": "http://jasmin.example.com:8080/api"}
    assert check_settings() == []


def test_plain_http_callback_is_refused_by_the_deploy_check(settings):
    settings.DEBUG = False
    settings.D7SMS = {**settings.D7SMS, "CALLBACK_BASE_URL": "http://example.com"}
    assert "d7sms.E004" not in ids(checks.run_checks())  # manage.py test, migrate
    [error] = check_production_settings()
    assert error.id == "d7sms.E004" and "'http://example.com'" in error.msg and "'https://example.com'" in error.hint


def test_plain_http_callback_allowed_in_development(settings):
    settings.DEBUG = True
    settings.D7SMS = {**settings.D7SMS, "CALLBACK_BASE_URL": "http://127.0.0.1:8000"}
    assert check_settings() == []
    # `check --deploy` asks about production, whatever DEBUG is where it runs.
    assert ids(check_production_settings()) == ["d7sms.E004"]


def test_missing_callback_url_warns(settings):
    settings.D7SMS = {**settings.D7SMS, "CALLBACK_BASE_URL": ""}
    assert ids(check_settings()) == ["d7sms.W002"]


def test_misspelt_setting_warns(settings):
    settings.D7SMS = {**settings.D7SMS, "PASWORD": "x"}
    [warning] = check_settings()
    assert warning.id == "d7sms.W001" and "PASWORD" in warning.msg and "'PASSWORD'" in warning.hint


@pytest.mark.parametrize("region, guess", [("UK", "GB"), ("gb", "GB"), ("de", "DE"), ("+44", "GB"), (49, "DE")])
def test_a_wrong_region_code_suggests_the_right_one(settings, region, guess):
    settings.D7SMS = {**settings.D7SMS, "DEFAULT_REGION": region}
    [error] = check_settings()
    assert error.id == "d7sms.E009" and repr(region) in error.msg and f"Did you mean {guess!r}?" in error.hint


def test_not_a_dict(settings):
    settings.D7SMS = ["BASE_URL"]
    assert ids(check_settings()) == ["d7sms.E000"]


@pytest.mark.parametrize(
    "name,value,code",
    [
        ("DLR_LEVEL", 4, "d7sms.E006"),
        ("DLR_METHOD", "PUT", "d7sms.E007"),
        ("DEFAULT_SENDER", "ThisIsTooLongASender", "d7sms.E008"),
        ("DEFAULT_REGION", "XX", "d7sms.E009"),
        ("BATCH_CHUNK_SIZE", 0, "d7sms.E010"),
        ("THROUGHPUT", -1, "d7sms.E011"),
        ("BACKEND", "carrier-pigeon", "d7sms.E005"),
    ],
)
def test_bad_values(settings, name, value, code):
    settings.D7SMS = {**settings.D7SMS, name: value}
    assert ids(check_settings()) == [code]


def test_password_never_in_check_messages(settings):
    settings.D7SMS = {**settings.D7SMS, "PASSWORD": "s3cr3t-pw", "BASE_URL": "nonsense", "DLR_LEVEL": 9}
    text = " ".join(f"{m.msg} {m.hint}" for m in check_settings())
    assert "s3cr3t-pw" not in text


def test_task_seconds_close_to_cluster_timeout_warns(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 40, "retry": 60}
    settings.D7SMS = {**settings.D7SMS, "TASK_SECONDS": 30, "READ_TIMEOUT": 30}
    assert ids(check_settings()) == ["d7sms.W003"]


def test_retry_not_above_timeout_warns(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 120, "retry": 120}
    assert ids(check_settings()) == ["d7sms.W004"]
