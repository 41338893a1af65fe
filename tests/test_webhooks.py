"""The receivers through Django's test client: storing, applying, ordering, auth, bad input."""

import datetime
import logging
import uuid
from unittest import mock

import pytest
from django.db import OperationalError

from d7sms import signals
from d7sms.models import AccountState, BatchCallback, DeliveryReport, Message, MessageStatus
from d7sms import sql
from d7sms.webhooks import dlr, security
from d7sms.webhook_urls import any_dlr_url, dlr_url, make_token
from tests.webhook_support import (
    ACK,
    any_dlr_path,
    callback_path,
    callback_params,
    dlr_path,
    errback_params,
    level1,
    level2,
    make_sendout,
    make_message,
)

S = MessageStatus
pytestmark = pytest.mark.django_db
UTC = datetime.timezone.utc


def post_dlr(client, message, params, **kwargs):
    return client.post(dlr_path(message.pk), params, **kwargs)


def status_of(message):
    return Message.objects.values_list("status", flat=True).get(pk=message.pk)


# -- the happy path ---------------------------------------------------------------------------


def test_level1_ack_and_raw_row(client):
    message = make_message(d7_id="d7-1")
    response = post_dlr(client, message, level1("d7-1"), REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 200
    assert response.content == ACK
    assert response["Content-Type"].startswith("text/plain")
    assert status_of(message) == S.AT_SMSC
    row = DeliveryReport.objects.get()
    assert row.message_id == message.pk
    assert (row.level, row.message_status, row.method) == (1, "ESME_ROK", "POST")
    assert row.params == level1("d7-1")
    assert row.remote_addr == "203.0.113.9"
    assert row.applied_at is not None and row.problem == ""


def test_level2_keeps_receipt_fields(client):
    message = make_message(d7_id="d7-2")
    response = client.get(dlr_path(message.pk), level2("d7-2"))
    assert response.content == ACK
    row = DeliveryReport.objects.get()
    assert (row.method, row.id_smsc, row.err) == ("GET", "1a2b3c", "000")
    assert row.submitted_date == datetime.datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
    assert row.done_date == datetime.datetime(2026, 11, 24, 10, 31, tzinfo=UTC)
    message.refresh_from_db()
    assert message.status == S.DELIVERED and message.final_at is not None


def test_receipt_dates_in_configured_zone(client, settings):
    settings.D7SMS = {**settings.D7SMS, "DLR_TIME_ZONE": "Asia/Dubai"}
    message = make_message(d7_id="d7-tz")
    client.post(dlr_path(message.pk), level2("d7-tz", donedate="261124143000"))
    row = DeliveryReport.objects.get()
    assert row.done_date == datetime.datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("level", "state", "expected", "error_code"),
    [
        (1, "ESME_ROK", S.AT_SMSC, ""),
        (1, "ESME_RSUBMITFAIL", S.REJECTED, "ESME_RSUBMITFAIL"),  # the SMSC refused it
        (1, "esme_rinvnumdests", S.REJECTED, "ESME_RINVNUMDESTS"),
        (2, "DELIVRD", S.DELIVERED, ""),
        (2, "UNDELIV", S.UNDELIVERED, "UNDELIV"),
        (2, "EXPIRED", S.EXPIRED, "EXPIRED"),
        (2, "REJECTD", S.REJECTED, "REJECTD"),
        (2, "DELETED", S.FAILED, "DELETED"),
        (2, "UNKNOWN", S.UNDELIVERED, "UNKNOWN"),
        (2, "ACCEPTD", S.AT_SMSC, ""),
        (2, "ENROUTE", S.AT_SMSC, ""),
    ],
)
def test_status_mapping(client, level, state, expected, error_code):
    message = make_message(d7_id="d7-map")
    params = level1("d7-map", state) if level == 1 else level2("d7-map", state, err="001")
    assert post_dlr(client, message, params).content == ACK
    message.refresh_from_db()
    assert message.status == expected
    assert message.error_code == error_code


def test_level2_failure_names_err(client):
    message = make_message(d7_id="d7-err")
    post_dlr(client, message, level2("d7-err", "UNDELIV", err="001"))
    message.refresh_from_db()
    assert "err 001" in message.last_error


def test_unknown_extra_and_repeated_params_are_kept(client):
    message = make_message(d7_id="d7-x")
    body = "id=d7-x&level=2&message_status=DELIVRD&flag=a&flag=b&new_param=1"
    response = client.post(dlr_path(message.pk), body, content_type="application/x-www-form-urlencoded")
    assert response.content == ACK
    assert DeliveryReport.objects.get().params["flag"] == ["a", "b"]


def test_post_keeps_the_urls_own_query(client):
    message = make_message(d7_id="d7-q")
    response = client.post(dlr_path(message.pk) + "?tenant=7", level1("d7-q"))
    assert response.content == ACK
    assert DeliveryReport.objects.get().params["tenant"] == "7"


# -- ordering and repeats ---------------------------------------------------------------------


def test_hot_path_is_one_update_and_one_insert(client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    message = make_message(d7_id="d7-hot")
    with CaptureQueriesContext(connection) as ctx:
        assert post_dlr(client, message, level1("d7-hot")).content == ACK
    statements = [q["sql"].split()[0].upper() for q in ctx.captured_queries]
    statements = [s for s in statements if s not in ("SAVEPOINT", "RELEASE", "BEGIN", "COMMIT")]
    assert statements == ["UPDATE", "INSERT"]
    assert status_of(message) == S.AT_SMSC


def test_level2_before_level1(client):
    message = make_message(d7_id="d7-o")
    post_dlr(client, message, level2("d7-o"))
    post_dlr(client, message, level1("d7-o"))
    assert status_of(message) == S.DELIVERED
    assert DeliveryReport.objects.filter(applied_at__isnull=False, problem="").count() == 2


def test_duplicate_changes_nothing_and_is_flagged(client):
    message = make_message(d7_id="d7-d")
    post_dlr(client, message, level1("d7-d"))
    post_dlr(client, message, level2("d7-d"))
    updated = Message.objects.get(pk=message.pk).updated_at
    assert post_dlr(client, message, level2("d7-d")).content == ACK
    assert post_dlr(client, message, level1("d7-d")).content == ACK
    assert Message.objects.get(pk=message.pk).updated_at == updated
    problems = list(DeliveryReport.objects.order_by("pk").values_list("problem", flat=True))
    assert problems == ["", "", dlr.DUPLICATE, dlr.DUPLICATE]


def test_dlr_binds_the_d7_id_before_any_callback(client):
    sendout, [message] = make_sendout(["+447700900001"], status=S.SENDING)
    post_dlr(client, message, level1("d7-new"))
    message.refresh_from_db()
    assert (message.status, message.d7_message_id) == (S.AT_SMSC, "d7-new")
    # The callback that tells us the id comes afterwards and changes nothing but marks it seen.
    response = client.get(callback_path(sendout.key), callback_params("447700900001", "d7-new"))
    assert response.content == ACK
    message.refresh_from_db()
    assert message.status == S.AT_SMSC
    assert BatchCallback.objects.get().message_id == message.pk


def test_callback_after_final_dlr_keeps_final_state(client):
    sendout, [message] = make_sendout(["+447700900002"], status=S.SENDING)
    post_dlr(client, message, level2("d7-late"))
    client.get(callback_path(sendout.key), callback_params("+447700900002", "d7-late"))
    message.refresh_from_db()
    assert (message.status, message.d7_message_id) == (S.DELIVERED, "d7-late")


def test_dlr_with_another_id_is_stored_not_applied(client):
    message = make_message(d7_id="d7-mine")
    assert post_dlr(client, message, level2("d7-other")).content == ACK
    row = DeliveryReport.objects.get()
    assert row.message_id == message.pk and row.applied_at is None
    assert row.problem.startswith("id mismatch")
    assert status_of(message) == S.ACCEPTED


def test_deleted_message_is_an_orphan_and_acked(client):
    message = make_message(d7_id="d7-gone")
    pk = message.pk
    message.delete()
    assert client.post(dlr_path(pk), level1("d7-gone")).content == ACK
    row = DeliveryReport.objects.get()
    assert (row.message_id, row.problem, row.applied_at) == (None, dlr.ORPHAN, None)


# -- the installation-wide DLR URL and orphans ------------------------------------------------


def test_any_dlr_url_applies_by_d7_id(client):
    message = make_message(d7_id="d7-any")
    assert client.post(any_dlr_path(), level2("d7-any")).content == ACK
    assert status_of(message) == S.DELIVERED


def test_orphan_applied_when_callback_binds_the_id(client):
    sendout, [message] = make_sendout(["+447700900003"], status=S.SENDING)
    client.post(any_dlr_path(), level2("d7-orph"))
    client.post(any_dlr_path(), level1("d7-orph"))
    assert DeliveryReport.objects.filter(problem=dlr.ORPHAN).count() == 2
    assert status_of(message) == S.SENDING
    client.get(callback_path(sendout.key), callback_params("447700900003", "d7-orph"))
    assert status_of(message) == S.DELIVERED
    rows = DeliveryReport.objects.all()
    assert all(r.message_id == message.pk and r.applied_at and r.problem == "" for r in rows)


def test_bound_elsewhere_orphans_are_swept(client):
    client.post(any_dlr_path(), level2("d7-sweep", "EXPIRED"))
    message = make_message(d7_id="d7-sweep")
    assert dlr.apply_bound_orphans() == 1
    assert status_of(message) == S.EXPIRED


def test_housekeeping_task_applies_bound_orphans(client, settings):
    settings.D7SMS = {**settings.D7SMS, "BACKEND": "locmem"}
    from d7sms import housekeeping

    client.post(any_dlr_path(), level2("d7-housekeeping", "DELIVRD"))
    message = make_message(d7_id="d7-housekeeping")
    assert housekeeping.run()["orphans_applied"] == 1
    assert status_of(message) == S.DELIVERED


def test_errback_for_no_credit_pauses_sending(client):
    from d7sms import pause

    sendout, [message] = make_sendout(["+447700900018"], status=S.ACCEPTED)
    text = "Cannot charge submit_sm, check RouterPB log file for details"
    assert not pause.is_paused(fresh=True)
    response = client.get(callback_path(sendout.key, "errback"), errback_params("447700900018", text))
    assert response.content == ACK
    assert status_of(message) == S.FAILED
    assert pause.is_paused(fresh=True)
    assert "could not charge" in AccountState.get().pause_reason


def test_url_builders_match_routes(settings):
    settings.D7SMS = {**settings.D7SMS, "CALLBACK_BASE_URL": "https://example.com"}
    assert dlr_url(5) == f"https://example.com{dlr_path(5)}"
    assert any_dlr_url() == f"https://example.com{any_dlr_path()}"


# -- batch callbacks --------------------------------------------------------------------------


def test_callback_binds_and_accepts(client):
    sendout, messages = make_sendout(["+447700900010", "+447700900011"], status=S.SENDING)
    response = client.get(callback_path(sendout.key), callback_params("447700900011", "d7-cb"))
    assert response.content == ACK
    messages[1].refresh_from_db()
    assert (messages[1].status, messages[1].d7_message_id) == (S.ACCEPTED, "d7-cb")
    assert status_of(messages[0]) == S.SENDING
    row = BatchCallback.objects.get()
    assert (row.sendout_id, row.message_id, row.d7_message_id, row.status) == (sendout.pk, messages[1].pk, "d7-cb", 1)


def test_callback_duplicate_flagged(client):
    sendout, [message] = make_sendout(["+447700900012"], status=S.SENDING)
    client.get(callback_path(sendout.key), callback_params("+447700900012", "d7-dup"))
    client.get(callback_path(sendout.key), callback_params("+447700900012", "d7-dup"))
    assert list(BatchCallback.objects.order_by("pk").values_list("problem", flat=True)) == ["", dlr.DUPLICATE]


def test_errback_for_no_route_rejects_the_message_with_its_text(client):
    sendout, [message] = make_sendout(["+447700900017"], status=S.SENDING)
    response = client.get(callback_path(sendout.key, "errback"), errback_params("447700900017"))
    assert response.content == ACK
    message.refresh_from_db()
    assert (message.status, message.error_code) == (S.REJECTED, "NoRoute")  # D7 refused it
    assert "No route found" in message.last_error


def test_any_other_errback_fails_the_message_with_its_text(client):
    sendout, [message] = make_sendout(["+447700900018"], status=S.SENDING)
    params = {**errback_params("447700900018"), "statusText": 'HTTPAPI error: Error "Something broke inside'}
    client.get(callback_path(sendout.key, "errback"), params)
    message.refresh_from_db()
    assert (message.status, message.error_code) == (S.FAILED, "errback")
    assert "Something broke" in message.last_error


def test_callback_prefers_the_resend_waiting_for_an_id(client):
    sendout, [original] = make_sendout(["+447700900013"], status=S.FAILED)
    resend = Message.objects.create(sendout=sendout, to="+447700900013", status=S.SENDING, resend_of=original)
    client.get(callback_path(sendout.key), callback_params("447700900013", "d7-re"))
    assert Message.objects.get(pk=resend.pk).d7_message_id == "d7-re"
    assert Message.objects.get(pk=original.pk).d7_message_id is None


def test_callback_for_unknown_number_or_sendout_is_stored(client):
    sendout, _ = make_sendout(["+447700900014"], status=S.SENDING)
    assert client.get(callback_path(sendout.key), callback_params("447700900099", "x")).content == ACK
    other = uuid.uuid4()
    assert client.get(callback_path(other), callback_params("447700900014", "y")).content == ACK
    problems = list(BatchCallback.objects.order_by("pk").values_list("problem", flat=True))
    assert problems == ["no message to this number in the sendout", "unknown sendout"]


def test_batch_completes_when_the_last_report_lands(client, django_capture_on_commit_callbacks):
    sendout, messages = make_sendout(["+447700900020", "+447700900029"], with_ids=True)
    with django_capture_on_commit_callbacks(execute=True):
        post_dlr(client, messages[0], level2(messages[0].d7_message_id))
    sendout.refresh_from_db()
    assert sendout.status == "in_progress"
    with django_capture_on_commit_callbacks(execute=True):
        post_dlr(client, messages[1], level2(messages[1].d7_message_id, "UNDELIV"))
    sendout.refresh_from_db()
    assert sendout.status == "completed_with_failures"


def test_signal_sent_on_commit(client, django_capture_on_commit_callbacks):
    message = make_message(d7_id="d7-sig")
    received = []

    def receiver(sender, report, message, **kwargs):
        received.append((report.level, message.pk if message else None))

    signals.delivery_report_received.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            post_dlr(client, message, level1("d7-sig"))
        with django_capture_on_commit_callbacks(execute=True):
            client.post(any_dlr_path(), level1("d7-unknown"))
    finally:
        signals.delivery_report_received.disconnect(receiver)
    assert received == [(1, message.pk), (1, None)]


# -- authentication ---------------------------------------------------------------------------


@pytest.fixture
def fresh_denied_count(settings):
    from django.core.cache import caches

    caches["default"].delete(security.FORGED_COUNT_KEY)
    yield
    caches["default"].delete(security.FORGED_COUNT_KEY)


def test_forged_calls_change_nothing(client, caplog, fresh_denied_count):
    message, other = make_message(d7_id="d7-f"), make_message(d7_id="d7-g", to="+447700900002")
    sendout, _ = make_sendout(["+447700900030"], status=S.SENDING)
    good = make_token("dlr", message.pk)
    forged = [
        client.post(dlr_path(message.pk, token="0" * 32), level2("d7-f")),
        client.post(dlr_path(message.pk, token=make_token("dlr", other.pk)), level2("d7-f")),
        client.post(dlr_path(other.pk, token=good), level2("d7-g")),  # tampered id
        client.post(dlr_path(message.pk, token=good[:-1]), level2("d7-f")),
        client.post(any_dlr_path(token=good), level2("d7-f")),
        client.get(callback_path(sendout.key, token=make_token("errback", sendout.key)), callback_params("447700900030", "z")),
        client.get(callback_path(uuid.uuid4(), token=make_token("callback", sendout.key)), callback_params("1", "z")),
    ]
    with caplog.at_level(logging.WARNING, logger="d7sms.webhooks"):
        forged.append(client.post(dlr_path(message.pk, token="f" * 32), level2("d7-f")))
    assert [r.status_code for r in forged] == [403] * len(forged)
    assert not DeliveryReport.objects.exists() and not BatchCallback.objects.exists()
    assert status_of(message) == S.ACCEPTED and status_of(other) == S.ACCEPTED
    assert security.denied_count() == len(forged)
    assert "Refused dlr webhook" in caplog.text and "invalid token" in caplog.text
    assert "f" * 32 not in caplog.text and good not in caplog.text


def test_missing_token_segment_is_refused(client):
    message = make_message(d7_id="d7-nt")
    assert client.post(f"/d7sms/dlr/{message.pk}/", level1("d7-nt")).status_code == 403
    assert not DeliveryReport.objects.exists()


def test_ip_allowlist(client, settings, fresh_denied_count):
    settings.D7SMS = {**settings.D7SMS, "WEBHOOK_ALLOWED_IPS": ["198.51.100.0/24", "2001:db8::1"]}
    message = make_message(d7_id="d7-ip")
    assert post_dlr(client, message, level1("d7-ip"), REMOTE_ADDR="203.0.113.5").status_code == 403
    assert post_dlr(client, message, level1("d7-ip"), REMOTE_ADDR="198.51.100.77").content == ACK
    assert post_dlr(client, message, level2("d7-ip"), REMOTE_ADDR="2001:db8::1").content == ACK
    assert DeliveryReport.objects.count() == 2


def test_basic_auth(client, settings, fresh_denied_count):
    settings.D7SMS = {**settings.D7SMS, "WEBHOOK_BASIC_AUTH": ("d7", "s3cret")}
    message = make_message(d7_id="d7-ba")
    missing = post_dlr(client, message, level1("d7-ba"))
    assert missing.status_code == 401 and "Basic" in missing["WWW-Authenticate"]
    wrong = post_dlr(client, message, level1("d7-ba"), HTTP_AUTHORIZATION="Basic ZDc6bm9wZQ==")
    assert wrong.status_code == 401
    ok = post_dlr(client, message, level1("d7-ba"), HTTP_AUTHORIZATION="Basic ZDc6czNjcmV0")
    assert ok.content == ACK
    assert DeliveryReport.objects.count() == 1


def test_secret_setting_changes_tokens(client, settings):
    message = make_message(d7_id="d7-sec")
    old = make_token("dlr", message.pk)
    settings.D7SMS = {**settings.D7SMS, "WEBHOOK_SECRET": "another secret"}
    assert make_token("dlr", message.pk) != old
    assert client.post(dlr_path(message.pk, token=old), level1("d7-sec")).status_code == 403
    assert client.post(dlr_path(message.pk), level1("d7-sec")).content == ACK


# -- malformed, oversized, storage failures ---------------------------------------------------


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"level": "1", "message_status": "ESME_ROK"}, "'id'"),
        ({"id": "d7-m", "level": "3", "message_status": "ESME_ROK"}, "'level'"),
        ({"id": "d7-m", "level": "x", "message_status": "ESME_ROK"}, "'level'"),
        ({"id": "d7-m", "level": "1"}, "'message_status'"),
        ({"id": "d7-m", "level": "1", "message_status": "DELIVRD"}, "ESME_"),
        ({"id": "d7-m", "level": "2", "message_status": "GREAT"}, "level-2"),
        ({**level2("d7-m"), "donedate": "yesterday"}, "'donedate'"),
        ({**level2("d7-m"), "subdate": "2613451299"}, "'subdate'"),
        ({"id": "a b", "level": "1", "message_status": "ESME_ROK"}, "'id'"),
        ({"id": "x" * 65, "level": "1", "message_status": "ESME_ROK"}, "'id'"),
        ({**level2("d7-m"), "err": "12345678901"}, "'err'"),
    ],
)
def test_malformed_dlr_is_400_and_stored(client, params, named):
    message = make_message(d7_id="d7-m")
    response = post_dlr(client, message, params)
    assert response.status_code == 400
    assert named in response.content.decode()
    row = DeliveryReport.objects.get()
    assert row.message_id == message.pk and row.applied_at is None
    assert named in row.problem
    assert status_of(message) == S.ACCEPTED


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"batchId": "b", "status": "1", "statusText": 'Success "x"'}, "'to'"),
        ({"to": "+", "statusText": 'Success "x"'}, "'to'"),
        ({"to": "447700900040", "status": "2", "statusText": 'Success "x"'}, "'status'"),
        ({"to": "447700900040", "status": "1", "statusText": "Success"}, "statusText"),
    ],
)
def test_malformed_callback_is_400_and_stored(client, params, named):
    sendout, [message] = make_sendout(["+447700900040"], status=S.SENDING)
    response = client.get(callback_path(sendout.key), params)
    assert response.status_code == 400 and named in response.content.decode()
    row = BatchCallback.objects.get()
    assert row.sendout_id == sendout.pk and named in row.problem
    assert status_of(message) == S.SENDING


def test_oversized_body_is_413_and_stored_truncated(client, settings):
    settings.D7SMS = {**settings.D7SMS, "WEBHOOK_MAX_BODY": 1024}
    message = make_message(d7_id="d7-big")
    response = post_dlr(client, message, {**level1("d7-big"), "text": "x" * 5000})
    assert response.status_code == 413
    row = DeliveryReport.objects.get()
    assert row.problem.startswith("body longer than 1024")
    assert len(row.params["_body"]) == 1024
    assert status_of(message) == S.ACCEPTED


def test_oversized_query_is_414(client, settings):
    settings.D7SMS = {**settings.D7SMS, "WEBHOOK_MAX_BODY": 512}
    message = make_message(d7_id="d7-bq")
    response = client.get(dlr_path(message.pk), {**level1("d7-bq"), "text": "y" * 2000})
    assert response.status_code == 414
    assert DeliveryReport.objects.get().problem.startswith("query string longer")


def test_too_many_fields_is_400(client):
    message = make_message(d7_id="d7-many")
    body = "&".join(f"k{i}=v" for i in range(1200)) + "&id=d7-many&level=1&message_status=ESME_ROK"
    response = client.post(dlr_path(message.pk), body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and b"too many parameters" in response.content


def test_nul_bytes_and_odd_encodings_are_stored(client):
    message = make_message(d7_id="d7-nul")
    body = b"id=d7-nul&level=2&message_status=DELIVRD&text=a%00b%ff&%00k=v"
    response = client.post(dlr_path(message.pk), body, content_type="application/x-www-form-urlencoded")
    assert response.content == ACK
    assert "\x00" not in DeliveryReport.objects.get().params["text"]


def test_storage_failure_is_503_and_the_call_kept_raw(client):
    message = make_message(d7_id="d7-503")
    with mock.patch.object(dlr, "outcome", side_effect=OperationalError("database is locked")):
        response = post_dlr(client, message, level2("d7-503"))
    assert response.status_code == 503
    row = DeliveryReport.objects.get()
    assert row.problem.startswith("not applied") and row.applied_at is None
    assert status_of(message) == S.ACCEPTED
    # D7 sends it again; this time it goes through.
    assert post_dlr(client, message, level2("d7-503")).content == ACK
    assert status_of(message) == S.DELIVERED


def test_nothing_stored_is_503(client):
    message = make_message(d7_id="d7-down")
    down = OperationalError("connection refused")
    with mock.patch.object(sql, "insert_row", side_effect=down), mock.patch.object(
        DeliveryReport, "save", side_effect=down
    ):
        response = post_dlr(client, message, level2("d7-down"))
    assert response.status_code == 503
    assert not DeliveryReport.objects.exists()


def test_d7_id_owned_by_another_message_is_stored_and_acked(client):
    make_message(d7_id="d7-taken")
    orphan_row = make_message(status=S.SENDING, to="+447700900050")
    response = post_dlr(client, orphan_row, level1("d7-taken"))
    assert response.content == ACK
    row = DeliveryReport.objects.get()
    assert row.problem.startswith("conflict")
    assert status_of(orphan_row) == S.SENDING


def test_wrong_method_is_405_not_500(client):
    message = make_message(d7_id="d7-put")
    assert client.put(dlr_path(message.pk), "x").status_code == 405
    sendout, _ = make_sendout(["+447700900060"])
    assert client.post(callback_path(sendout.key), {}).status_code == 405


def test_no_valid_token_reaches_the_logs(client, caplog):
    message = make_message(d7_id="d7-log")
    with caplog.at_level(logging.DEBUG):
        assert post_dlr(client, message, {"id": "d7-log"}).status_code == 400
        assert client.put(dlr_path(message.pk), "x").status_code == 405
    assert "missing parameter 'level'" in caplog.text
    assert make_token("dlr", message.pk) not in caplog.text


def test_non_ascii_token_is_refused_not_an_error(client, fresh_denied_count):
    message = make_message(d7_id="d7-u")
    assert client.post(f"/d7sms/dlr/{message.pk}/tøken/", level1("d7-u")).status_code == 403
