"""Every status the message list offers as a filter can be reached; "Rejected" in particular.

An SMSC's refusal (a level-1 report other than ESME_ROK, a level-2 REJECTD) and D7's refusal
of one message (412 "No route found" on /secure/send, an errback saying so in a batch) end
``rejected``; a failure on our side or on the way (a 5xx after every retry, an errback for
anything else) ends ``failed``. The final ones are reached here through the sandbox.
"""

import pytest

import d7sms
from d7sms import creation, status
from d7sms.admin.messages import StatusFilter
from d7sms.models import MessageStatus, SendMode

pytest_plugins = ["tests.admin_support"]
S = MessageStatus


@pytest.fixture
def wired(d7_settings, live_server, sandbox):
    d7_settings.D7SMS = {**d7_settings.D7SMS, "CALLBACK_BASE_URL": live_server.url, "SYNC": True, "MAX_RETRIES": 0}
    return sandbox


def offered(client):
    """The statuses the message list's status filter offers."""
    response = client.get("/admin/d7sms/message/")
    spec = next(f for f in response.context["cl"].filter_specs if isinstance(f, StatusFilter))
    return {value for value, _label in spec.lookup_choices if value in S.values}


def reachable_in_the_machine():
    """Statuses the state machine (d7sms.status) can reach from where a new message starts."""
    seen = {creation.first_status(True), creation.first_status(False)}
    grew = True
    while grew:
        grew = False
        for new, sources in status.ALLOWED_FROM.items():
            if new not in seen and sources & seen:
                seen.add(new)
                grew = True
    return seen


@pytest.mark.django_db
def test_every_offered_status_is_reachable_in_the_state_machine(viewer_client):
    assert offered(viewer_client) == set(S.values)  # what the filter offers...
    assert offered(viewer_client) <= reachable_in_the_machine()  # ...the machine can reach


@pytest.mark.django_db(transaction=True)
def test_every_offered_final_status_is_reached_through_the_sandbox(wired, sender_client):
    single = d7sms.send_batch(
        ["+447911140010", "+447911140029", "+447911140036", "+447911140048", "+447911140057"],
        "Fates", dlr_level=3, mode=SendMode.SINGLE,
    )
    batch = d7sms.send_batch(["+447911140117", "+447911140128"], "Fates in a batch", dlr_level=3)
    assert wired.wait_idle(20)
    wired.set_faults(error_500_rate=1.0)  # D7 keeps failing on its side: given up, failed
    broken = d7sms.send_sms("+447911140200", "Unlucky")
    wired.set_faults()
    scheduled = d7sms.send_batch(["+447911140300"], "Later", schedule_at=d7sms_time(hours=1))
    d7sms.api.cancel_sendout(scheduled)

    fate = {m.to: (m.status, m.error_code) for m in single.messages.all()}
    assert fate == {
        "+447911140010": (S.DELIVERED, ""),
        "+447911140029": (S.UNDELIVERED, "UNDELIV"),
        "+447911140036": (S.EXPIRED, "EXPIRED"),
        "+447911140048": (S.REJECTED, "ESME_RSUBMITFAIL"),  # the SMSC refused it (level-1 report)
        "+447911140057": (S.REJECTED, "NoRoute"),  # D7 refused it: 412 No route found
    }
    fate = {m.to: (m.status, m.error_code) for m in batch.messages.all()}
    assert fate == {
        "+447911140117": (S.REJECTED, "NoRoute"),  # the batch's errback said no route
        "+447911140128": (S.REJECTED, "ESME_RSUBMITFAIL"),
    }
    broken.refresh_from_db()
    assert (broken.status, broken.error_code) == (S.FAILED, "ServerError")
    assert set(scheduled.messages.values_list("status", flat=True)) == {S.CANCELLED}
    # What reached D7: the routable ones only (no route is refused before it is taken).
    assert sorted(m["to"].lstrip("+") for m in wired.accepted()) == [
        "447911140010", "447911140029", "447911140036", "447911140048", "447911140128",
    ]

    final_offered = offered(sender_client) & {S.DELIVERED, S.UNDELIVERED, S.EXPIRED, S.REJECTED, S.FAILED, S.CANCELLED}
    for value in final_offered:
        listed = sender_client.get("/admin/d7sms/message/", {"status": value}).context["cl"].result_list
        assert listed, f"the {value!r} filter is empty"
    rejected = sender_client.get("/admin/d7sms/message/", {"status": "rejected"}).context["cl"].result_list
    assert len(rejected) == 4


def d7sms_time(**delta):
    from django.utils import timezone

    return timezone.now() + timezone.timedelta(**delta)
