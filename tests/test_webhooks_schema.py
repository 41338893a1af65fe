"""The receivers' OpenAPI schema, and generated calls over it that must never meet a 5xx.

Schemathesis draws calls from the schema (fitting it, and deliberately not); half of them get
the token that is valid for their path, so the calls reach the parsing and storing behind the
authentication, not only the 403 in front of it.
"""


import os
import subprocess
import sys
from pathlib import Path

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from d7sms.models import Sendout, Message
from d7sms.webhook_urls import ANY_DLR_KEY, make_token
from tests.webhook_support import dlr_path

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.django_db

EXAMPLES = 60
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


@pytest.fixture
def api_schema():
    """The schema, loaded from the app and called through WSGI inside the test's transaction."""
    # As Django's test client does: a request must not close the connection holding the test.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi(reverse("d7sms:schema") + "?format=json", get_wsgi_application())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def test_schema_is_served_and_lists_every_receiver(client):
    response = client.get(reverse("d7sms:schema"), {"format": "json"})
    assert response.status_code == 200
    document = response.json()
    assert set(document["paths"]) == {
        "/d7sms/dlr/{message_id}/{token}/",
        "/d7sms/dlr/{token}/",
        "/d7sms/callback/{sendout_key}/{token}/",
        "/d7sms/errback/{sendout_key}/{token}/",
    }
    dlr = document["paths"]["/d7sms/dlr/{message_id}/{token}/"]
    assert set(dlr) == {"get", "post"}
    assert "application/x-www-form-urlencoded" in dlr["post"]["requestBody"]["content"]
    assert "text/plain" in dlr["get"]["responses"]["200"]["content"]


def _valid_token(case):
    params = case.path_parameters or {}
    if "message_id" in params:
        return make_token("dlr", params["message_id"])
    if "sendout_key" in params:
        kind = "callback" if case.path.startswith("/d7sms/callback/") else "errback"
        return make_token(kind, params["sendout_key"])
    return make_token("dlr-any", ANY_DLR_KEY)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_calls_never_meet_a_server_error(api_schema, mode):
    # Some rows to find: generated ids and keys that happen to exist reach the apply step.
    sendout = Sendout.objects.create(name="fuzz")
    Message.objects.create(pk=1, sendout=sendout, to="+447700900001", d7_message_id="0", status="accepted")
    seen = []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @SETTINGS
        @given(case=operation.as_strategy(generation_mode=mode), authentic=st.booleans())
        def call(case, authentic):
            if authentic and isinstance(case.path_parameters, dict):
                case.path_parameters["token"] = _valid_token(case)
            response = case.call()
            seen.append(response.status_code)
            assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code}"

        call()
    assert len(seen) >= EXAMPLES
    assert {200, 403} <= set(seen) or {400, 403} <= set(seen)


@SETTINGS
@given(
    params=st.dictionaries(
        st.sampled_from(["id", "level", "message_status", "subdate", "donedate", "err", "id_smsc", "x"])
        | st.text(max_size=8),
        st.text(max_size=80) | st.sampled_from(["1", "2", "ESME_ROK", "DELIVRD", "2611241030", "0"]),
        max_size=10,
    ),
    method=st.sampled_from(["get", "post"]),
)
def test_any_parameters_on_a_valid_url_never_meet_a_server_error(client, params, method):
    message = Message.objects.filter(to="+447700900002").first() or Message.objects.create(
        to="+447700900002", d7_message_id="0", status="accepted"
    )
    response = getattr(client, method)(dlr_path(message.pk), params)
    assert response.status_code in (200, 400)


def test_schema_is_served_without_any_drf_settings(tmp_path):
    """A project that sets neither REST_FRAMEWORK nor drf-spectacular's settings, nor lists
    drf_spectacular in INSTALLED_APPS (the views are imported fresh in their own process)."""
    code = (
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "assert not hasattr(settings, 'REST_FRAMEWORK')\n"
        "from django.test import Client\n"
        "from django.test.utils import setup_test_environment; setup_test_environment()\n"
        "response = Client().get('/d7sms/schema/', {'format': 'json'})\n"
        "print(response.status_code, sorted(response.json()['paths']))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT),
           "D7SMS_TEST_WITHOUT_DRF_SETTINGS": "1"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("200 ") and "/d7sms/dlr/{message_id}/{token}/" in result.stdout
    assert "Warning" not in result.stderr, result.stderr  # quiet when healthy
