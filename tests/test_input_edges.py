"""Input at its edges: a sender with a trailing newline, a giant CSV cell, a message id beyond
any primary key. Each gets a clear answer, never a 500, and nothing stored is changed."""

import re

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

import d7sms
from d7sms.checks import check_settings
from d7sms.models import DeliveryReport, Message, Sendout
from d7sms.recipients import is_valid_sender
from tests.webhook_support import ACK, dlr_path, level2

pytest_plugins = ["tests.admin_support"]
COMPOSE = "/admin/d7sms/sendout/compose/"


@pytest.mark.parametrize("sender", ["Brand\n", "12345\n", "Brand\r\n", "\nBrand"])
def test_a_sender_with_a_line_break_is_not_a_sender(sender):
    assert not is_valid_sender(sender)


@pytest.mark.django_db
def test_the_api_refuses_a_sender_with_a_trailing_newline(settings):
    settings.D7SMS = {**settings.D7SMS, "BACKEND": "locmem"}
    with pytest.raises(ValidationError, match="Invalid sender"):
        d7sms.send_sms("+447911123450", "Hi", sender="Brand\n")
    with pytest.raises(ValidationError, match="Invalid sender"):
        d7sms.send_batch(["+447911123450"], "Hi", sender="Brand\n")
    assert not Message.objects.exists() and not Sendout.objects.exists()


def test_a_default_sender_with_a_trailing_newline_fails_the_check(settings):
    settings.D7SMS = {**settings.D7SMS, "DEFAULT_SENDER": "Brand\n"}
    assert [m.id for m in check_settings()] == ["d7sms.E008"]


@pytest.mark.django_db
def test_the_admin_never_stores_a_line_break_in_a_sender(sender_client, locmem):
    # A form field strips surrounding white space, so a pasted "Brand\n" is sent as "Brand".
    data = {"name": "n", "sender": "Brand\n", "content": "Hi", "recipients": "+447911123450", "region": "GB",
            "dlr_level": "3", "mode": "batch", "when": "now", "where": "local", "coding": "8"}
    response = sender_client.post(COMPOSE, data)
    assert response.templates[0].name == "admin/d7sms/sendout/preview.html"
    draft = re.search(r'name="draft" value="([^"]+)"', response.content.decode()).group(1)
    sender_client.post(COMPOSE, {"draft": draft, "_action": "confirm"})
    assert list(Sendout.objects.values_list("sender", flat=True)) == ["Brand"]
    response = sender_client.post(COMPOSE, {**data, "sender": "Br\nand"})
    assert "sender" in response.context["form"].errors


@pytest.mark.django_db
@pytest.mark.parametrize("size", [131_073, 400_000])
def test_a_csv_cell_over_the_csv_field_limit_is_a_form_error(sender_client, size):
    big = b"phone,note\n+447911123450,short\n+447911123460," + b"x" * size + b"\n"
    upload = SimpleUploadedFile("list.csv", big, content_type="text/csv")
    response = sender_client.post(COMPOSE, {
        "name": "n", "sender": "Brand", "content": "Hi", "recipients": "", "region": "GB", "dlr_level": "3",
        "mode": "batch", "when": "now", "where": "local", "coding": "8", "upload": upload,
    })
    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors.get("upload", []))
    assert "line 3" in errors and "longer than" in errors, response.context["form"].errors
    assert not Sendout.objects.exists()


@pytest.mark.django_db
def test_a_report_for_a_message_id_beyond_any_primary_key_is_stored_not_a_5xx(client):
    huge = 10**40
    response = client.post(dlr_path(huge), level2("d7-huge"))
    assert response.status_code == 200 and response.content == ACK  # D7 must not resend it forever
    row = DeliveryReport.objects.get()
    assert row.message_id is None and row.applied_at is None and row.d7_message_id == "d7-huge"
    assert row.problem == "no message with this id"
