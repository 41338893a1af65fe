"""Fixtures of the admin tests (loaded with ``pytest_plugins``): users, clients, the locmem backend."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client


def _staff(django_user_model, username, codenames):
    user = django_user_model.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="d7sms", codename__in=codenames))
    return user


VIEW = ["view_sendout", "view_message", "view_deliveryreport", "view_batchcallback", "view_accountstate"]


@pytest.fixture
def sender_user(django_user_model):
    """Staff who may view everything of d7sms and send."""
    return _staff(django_user_model, "sender", [*VIEW, "send_sms"])


@pytest.fixture
def viewer_user(django_user_model):
    """Staff who may only look."""
    return _staff(django_user_model, "viewer", VIEW)


@pytest.fixture
def sender_client(sender_user):
    """A test client logged in as ``sender_user``."""
    client = Client()
    client.force_login(sender_user)
    return client


@pytest.fixture
def viewer_client(viewer_user):
    """A test client logged in as ``viewer_user`` (its own client, so both can be used at once)."""
    client = Client()
    client.force_login(viewer_user)
    return client


@pytest.fixture
def locmem(settings):
    """Send through the in-memory backend, in the calling process."""
    from d7sms.backends import locmem

    settings.D7SMS = {**settings.D7SMS, "BACKEND": "locmem", "SYNC": True}
    locmem.reset()
    yield locmem
    locmem.reset()
