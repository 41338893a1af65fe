"""Who may resend or cancel which message: the send permission AND the right to see that message.

A user with ``send_sms`` but without the view permission on messages, or a project that narrows
which messages a user sees (per-object ``has_view_permission``), must not act on other messages
by guessing their ids, through the buttons' URLs or the list actions.
"""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import Client

from d7sms.models import Message
from tests.admin_data import S, make_sendout

pytest_plugins = ["tests.admin_support"]
pytestmark = pytest.mark.django_db

LIST = "/admin/d7sms/message/"


def _staff(django_user_model, username, codenames):
    user = django_user_model.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="d7sms", codename__in=codenames))
    return user


def page(message, suffix):
    return f"/admin/d7sms/message/{message.pk}/{suffix}"


def login(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def send_only(django_user_model, locmem):
    """Staff with ``send_sms`` and no view permission on messages."""
    return login(_staff(django_user_model, "send-only", ["send_sms", "view_sendout"]))


@pytest.fixture
def own_messages_only(monkeypatch):
    """The project's message admin shows each user only the messages they created."""
    model_admin = admin.site._registry[Message]

    def mine(request, obj=None):
        return obj is None or obj.created_by_id == request.user.pk

    monkeypatch.setattr(model_admin, "has_view_permission", mine)
    monkeypatch.setattr(
        model_admin, "get_queryset", lambda request: Message.objects.filter(created_by=request.user)
    )


@pytest.mark.parametrize("action", ["resend/", "cancel/"])
def test_send_permission_alone_does_not_reach_a_message(send_only, action):
    failed, queued = make_sendout([S.FAILED, S.QUEUED]).messages.order_by("pk")
    target = failed if action == "resend/" else queued
    assert send_only.post(page(target, action)).status_code in (403, 404)
    assert not Message.objects.filter(resend_of=target).exists()
    assert Message.objects.get(pk=queued.pk).status == S.QUEUED


def test_a_message_the_user_may_not_see_cannot_be_resent_or_cancelled(
    sender_user, django_user_model, own_messages_only, locmem
):
    other = _staff(django_user_model, "other", ["send_sms", "view_message"])
    mine_failed, mine_queued, theirs_failed, theirs_queued = make_sendout([S.FAILED, S.QUEUED, S.FAILED, S.QUEUED]).messages.order_by("pk")
    Message.objects.filter(pk__in=[mine_failed.pk, mine_queued.pk]).update(created_by=sender_user)
    Message.objects.filter(pk__in=[theirs_failed.pk, theirs_queued.pk]).update(created_by=other)
    client = login(sender_user)
    assert client.post(page(theirs_failed, "resend/")).status_code in (403, 404)
    assert client.post(page(theirs_queued, "cancel/")).status_code in (403, 404)
    assert not Message.objects.filter(resend_of=theirs_failed).exists()
    assert Message.objects.get(pk=theirs_queued.pk).status == S.QUEUED
    # Their own still work.
    assert client.post(page(mine_failed, "resend/")).status_code == 302
    assert Message.objects.filter(resend_of=mine_failed).count() == 1


def test_list_actions_skip_messages_the_user_may_not_see(sender_user, django_user_model, monkeypatch, locmem):
    """A project narrowing only ``has_view_permission(request, obj)`` (not the queryset)."""
    other = _staff(django_user_model, "other2", ["send_sms", "view_message"])
    mine, theirs, queued_theirs, unknown_theirs = make_sendout([S.FAILED, S.FAILED, S.QUEUED, S.UNKNOWN]).messages.order_by("pk")
    Message.objects.filter(pk=mine.pk).update(created_by=sender_user)
    Message.objects.exclude(pk=mine.pk).update(created_by=other)
    model_admin = admin.site._registry[Message]
    monkeypatch.setattr(
        model_admin, "has_view_permission", lambda request, obj=None: obj is None or obj.created_by_id == request.user.pk
    )
    client = login(sender_user)
    client.post(LIST, {"action": "resend_selected", "_selected_action": [mine.pk, theirs.pk]})
    client.post(LIST, {"action": "cancel_selected", "_selected_action": [queued_theirs.pk]})
    client.post(LIST, {"action": "mark_failed", "_selected_action": [unknown_theirs.pk]})
    assert Message.objects.filter(resend_of=mine).count() == 1
    assert not Message.objects.filter(resend_of=theirs).exists()
    assert Message.objects.get(pk=queued_theirs.pk).status == S.QUEUED
    assert Message.objects.get(pk=unknown_theirs.pk).status == S.UNKNOWN


def _silent_unknown(sendout_statuses, **fields):
    from datetime import timedelta

    from django.utils import timezone

    long_ago = timezone.now() - timedelta(hours=2)
    sendout = make_sendout(sendout_statuses)
    sendout.messages.update(claimed_at=long_ago, error_code="outcome_unknown", **fields)
    return sendout.messages.order_by("pk")


def test_the_unknown_review_shows_and_resends_only_messages_the_user_may_see(
    sender_user, django_user_model, own_messages_only, locmem
):
    other = _staff(django_user_model, "other3", ["send_sms", "view_message"])
    mine, theirs = _silent_unknown([S.UNKNOWN, S.UNKNOWN])
    Message.objects.filter(pk=mine.pk).update(created_by=sender_user)
    Message.objects.filter(pk=theirs.pk).update(created_by=other)
    client = login(sender_user)
    page = client.get(f"{LIST}unknown/")
    assert [m.pk for m in page.context["silent"]["rows"]] == [mine.pk]
    assert page.context["silent"]["count"] == 1
    assert client.post(f"{LIST}unknown/", {"confirm": "1"}).status_code == 302
    assert Message.objects.filter(resend_of=mine).count() == 1
    assert not Message.objects.filter(resend_of=theirs).exists()


def test_the_unknown_review_leaves_alone_what_a_per_message_rule_hides(
    sender_user, django_user_model, monkeypatch, locmem
):
    """A project narrowing only ``has_view_permission(request, obj)`` (not the queryset)."""
    other = _staff(django_user_model, "other4", ["send_sms", "view_message"])
    mine, theirs = _silent_unknown([S.UNKNOWN, S.UNKNOWN])
    Message.objects.filter(pk=mine.pk).update(created_by=sender_user)
    Message.objects.filter(pk=theirs.pk).update(created_by=other)
    model_admin = admin.site._registry[Message]
    monkeypatch.setattr(
        model_admin, "has_view_permission", lambda request, obj=None: obj is None or obj.created_by_id == request.user.pk
    )
    assert login(sender_user).post(f"{LIST}unknown/", {"confirm": "1"}).status_code == 302
    assert Message.objects.filter(resend_of=mine).count() == 1
    assert not Message.objects.filter(resend_of=theirs).exists()
