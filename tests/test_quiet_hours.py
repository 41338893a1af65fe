"""Quiet hours: the window math (crossing midnight, DST, numbers spanning several zones,
windows that never open), and sendouts whose messages wait for it and then reach the sandbox.

The window math is checked against a brute-force minute-by-minute scan. The sendout tests run
the real send path into the sandbox; where a test must be at the release instant without
waiting for it, it hands that instant to ``fire_task`` (the one fake clock here, said where
used). ``test_cluster_holds_until_the_window_opens`` waits for a real release on a real cluster.
"""

import datetime as dt
from html import unescape
import os
import random
import re
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from django.core.checks import run_checks
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.formats import date_format
from django_q.models import Schedule

import d7sms
from d7sms import api, quiet_hours, tasks
from d7sms.models import Message, MessageStatus, Sendout, SendoutStatus
from d7sms.quiet_hours import Window, WindowError, parse, release, zones_for
from tests.cluster import Cluster, redis_up, wait_for

S = MessageStatus
pytest_plugins = ["tests.admin_support"]
UTC = dt.timezone.utc
LONDON, BERLIN = ZoneInfo("Europe/London"), ZoneInfo("Europe/Berlin")
NY = "America/New_York"
RU_MOBILE, AU_MOBILE, ID_MOBILE = "+79161234567", "+61412345678", "+6281234567890"
US_TOLL_FREE, US_NY, US_LA = "+18005550100", "+12125550100", "+14155550100"


def at(*args):
    return dt.datetime(*args, tzinfo=UTC)


def brute_release(zones, window, now):
    """The first whole minute from ``now`` (a whole minute) inside ``window`` in every zone."""
    tzs = [ZoneInfo(z) for z in zones]
    for minute in range(int(quiet_hours.HORIZON.total_seconds() // 60) + 1):
        when = now + dt.timedelta(minutes=minute)
        if all(window.contains(when.astimezone(tz).time()) for tz in tzs):
            return when
    return None


# -- reading a window -----------------------------------------------------------------------------


def test_a_window_includes_its_start_and_excludes_its_end():
    day = parse(("09:00", "20:00"))
    assert [day.contains(dt.time(h, m)) for h, m in ((8, 59), (9, 0), (19, 59), (20, 0))] == [False, True, True, False]


def test_a_window_may_cross_midnight():
    night = parse("21:00-02:00")
    inside = [night.contains(dt.time(h, m)) for h, m in ((20, 59), (21, 0), (23, 59), (0, 0), (1, 59), (2, 0), (12, 0))]
    assert inside == [False, True, True, True, True, False, False]


@pytest.mark.parametrize("value", [None, False, "", ()])
def test_no_window(value):
    assert parse(value) is None


def test_windows_are_read_from_pairs_strings_and_times():
    expected = Window(dt.time(9), dt.time(20))
    assert parse(("09:00", "20:00")) == parse(["9:00", "20:00"]) == parse("09:00 – 20:00") == expected
    assert parse((dt.time(9), dt.time(20))) == expected
    assert str(expected) == "09:00–20:00" and expected.as_setting() == ("09:00", "20:00")


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (("09:00", "09:00"), "empty"),
        (("25:00", "20:00"), "'25:00'"),
        (("9", "20:00"), "'9'"),
        ("09:00", "two times"),
        (("09:00",), "pair"),
        (900, "pair"),
    ],
)
def test_a_bad_window_is_refused_naming_the_problem(value, says):
    with pytest.raises(WindowError, match=says):
        parse(value)


# -- the time zones of a number -------------------------------------------------------------------


def test_zones_of_numbers():
    assert zones_for("+442079460000") == ("Europe/London",)
    assert zones_for("+4915112345678") == ("Europe/Berlin",)
    assert zones_for(US_NY) == (NY,)
    assert zones_for(US_LA) == ("America/Los_Angeles",)
    assert len(zones_for(US_TOLL_FREE)) > 20  # not geographic: every zone of +1
    assert {"Europe/Moscow", "Asia/Kamchatka"} <= set(zones_for(RU_MOBILE))
    assert {"Australia/Perth", "Australia/Sydney"} <= set(zones_for(AU_MOBILE))
    assert zones_for("+80080000000") == ()  # international freephone: no zone


# -- release: the first instant the window holds in every zone ------------------------------------


def test_release_in_one_zone():
    day = parse(("09:00", "20:00"))
    zones = ("Europe/London",)
    assert release(zones, day, at(2026, 12, 2, 7, 0)) == at(2026, 12, 2, 9, 0)
    assert release(zones, day, at(2026, 12, 2, 12, 34, 56)) == at(2026, 12, 2, 12, 34, 56)  # open: now
    assert release(zones, day, at(2026, 12, 2, 20, 0)) == at(2026, 12, 3, 9, 0)
    # British summer time: 09:00 local is 08:00 UTC.
    assert release(zones, day, at(2026, 7, 1, 3, 0)) == at(2026, 7, 1, 8, 0)


def test_release_of_a_window_crossing_midnight():
    night = parse(("22:00", "02:00"))
    zones = ("Europe/London",)
    assert release(zones, night, at(2026, 12, 2, 3, 0)) == at(2026, 12, 2, 22, 0)
    assert release(zones, night, at(2026, 12, 2, 1, 0)) == at(2026, 12, 2, 1, 0)


def test_release_across_daylight_saving_changes():
    day = parse(("09:00", "20:00"))
    # New York springs forward on 8 March 2026: 09:00 is then 13:00 UTC, the day before 14:00.
    assert release((NY,), day, at(2026, 3, 8, 4, 0)) == at(2026, 3, 8, 13, 0)
    # ...and falls back on 1 November 2026: 09:00 is 14:00 UTC again.
    assert release((NY,), day, at(2026, 11, 1, 3, 0)) == at(2026, 11, 1, 14, 0)
    # A start the clock jumps over (02:30, as 02:00 becomes 03:00 EDT) opens with the jump.
    assert release((NY,), parse(("02:30", "05:00")), at(2026, 3, 8, 6, 0)) == at(2026, 3, 8, 7, 0)
    # Lord Howe Island moves its clock by half an hour: 02:00 becomes 02:30 on 4 October 2026.
    assert release(("Australia/Lord_Howe",), parse(("02:15", "05:00")), at(2026, 10, 3, 12, 0)) == at(2026, 10, 3, 15, 30)
    # A start the clock shows twice (01:30 as New York falls back) opens the first time.
    assert release((NY,), parse(("01:30", "05:00")), at(2026, 11, 1, 4, 0)) == at(2026, 11, 1, 5, 30)


def test_a_number_spanning_zones_waits_for_all_of_them():
    day = parse(("09:00", "20:00"))
    now = at(2026, 12, 2, 13, 30)  # 08:30 in New York, 05:30 in Los Angeles
    assert release(zones_for(US_NY), day, now) == at(2026, 12, 2, 14, 0)
    # A toll-free number is in every +1 zone, Guam (UTC+10) to Pago Pago (UTC-11): the window holds
    # in all of them at once only briefly, and later than in New York alone.
    free = release(zones_for(US_TOLL_FREE), day, now)
    assert free > at(2026, 12, 2, 14, 0)
    assert all(day.contains(free.astimezone(ZoneInfo(z)).time()) for z in zones_for(US_TOLL_FREE))


@pytest.mark.parametrize("number", [RU_MOBILE, AU_MOBILE, ID_MOBILE, US_TOLL_FREE, US_NY, "+5511987654321"])
@pytest.mark.parametrize(
    "window", [("09:00", "20:00"), ("08:00", "21:30"), ("20:00", "09:00"), ("21:00", "08:00"), ("02:30", "06:00")]
)
@pytest.mark.parametrize(
    "now", [at(2026, 12, 2, 7, 0), at(2026, 3, 28, 23, 15), at(2026, 10, 3, 12, 0), at(2026, 3, 8, 6, 0), at(2026, 10, 24, 22, 0)]
)
def test_release_matches_a_minute_by_minute_scan(number, window, now):
    zones, window = zones_for(number), parse(window)
    assert release(zones, window, now) == brute_release(zones, window, now)


def test_a_window_too_narrow_for_a_numbers_zones_never_opens():
    # Russia's zones (with phonenumbers' Almaty and Bucharest) span ten hours; a one-hour window
    # never holds in all of them at once.
    assert release(zones_for(RU_MOBILE), parse(("09:00", "10:00")), at(2026, 12, 2, 7, 0)) is None
    assert brute_release(zones_for(RU_MOBILE), parse(("09:00", "10:00")), at(2026, 12, 2, 7, 0)) is None


def test_a_plan_counts_by_release_and_its_shortcut_changes_no_release():
    random.seed(13)
    numbers = (
        [f"+4479{random.randint(10**7, 10**8 - 1)}" for _ in range(50)]
        + [f"+1{random.choice(['212', '415', '808', '907', '312', '416', '604', '709', '800'])}555{random.randint(0, 9999):04d}" for _ in range(200)]
        + [f"+7{random.choice(['916', '913', '914', '701'])}{random.randint(10**6, 10**7 - 1)}" for _ in range(50)]
        + [f"+614{random.randint(10**7, 10**8 - 1)}" for _ in range(50)]
    )
    # Numbers are validated before they are planned (d7sms.recipients.normalise).
    numbers = [n for n in numbers if phonenumbers.is_valid_number(phonenumbers.parse(n))] + ["+80012345678"]
    assert len(numbers) > 300
    for window in (("09:00", "20:00"), ("10:00", "12:00")):
        for now in (at(2026, 12, 2, 7, 0), at(2026, 6, 2, 19, 0), at(2026, 12, 2, 13, 0)):
            plan = quiet_hours.plan(numbers, parse(window), now)
            expected = [release(zones_for(n), parse(window), now) for n in numbers]
            assert [plan._release(zones_for(n)) for n in numbers] == expected
            never = [n for n, when in zip(numbers, expected) if when is None]
            waiting = [when for when in expected if when is not None and when > now]
            assert plan.never == never
            assert plan.at_once == len(numbers) - len(never) - len(waiting)
            assert sum(plan.waiting.values()) == len(waiting) and plan.unknown == 1


# -- the setting -----------------------------------------------------------------------------------


def test_a_bad_setting_fails_its_system_check(settings):
    settings.D7SMS = {**settings.D7SMS, "QUIET_HOURS": ("9am", "8pm")}
    errors = [m for m in run_checks() if m.id == "d7sms.E050"]
    assert len(errors) == 1 and "'9am'" in errors[0].msg
    settings.D7SMS = {**settings.D7SMS, "QUIET_HOURS": ("09:00", "20:00")}
    assert not [m for m in run_checks() if m.id == "d7sms.E050"]


# -- sendouts: held here, then sent -----------------------------------------------------------------

LONDON_NUMBERS = [f"+447911{n:06d}" for n in range(1, 13) if n % 10 != 7]
BERLIN_NUMBERS = [f"+491511234{n:04d}" for n in range(1, 13) if n % 10 != 7]


def closed_in_london_open_in_berlin(now, minutes=30, seconds=0):
    """A window that opens ``minutes`` (and ``seconds``) from ``now`` in London: open already in
    Berlin (an hour ahead, all year), closed in London; and the instant it opens in London."""
    opens = (now.astimezone(LONDON) + dt.timedelta(minutes=minutes, seconds=seconds)).replace(microsecond=0)
    window = Window(opens.time(), (opens + dt.timedelta(hours=3)).time())
    return window, opens.astimezone(UTC)


@pytest.fixture
def sync_sandbox(d7_settings, sandbox):
    """Sending in this process, through the real client, into the sandbox (which then has no
    reports to throw)."""
    d7_settings.D7SMS = {**d7_settings.D7SMS, "SYNC": True, "CALLBACK_BASE_URL": ""}
    return sandbox


def received(sandbox):
    assert sandbox.wait_idle(10)  # a /secure/sendbatch call is answered before its messages are counted
    return sorted(m["to"] for m in sandbox.accepted())


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode", ["batch", "single"])
def test_messages_outside_the_window_wait_and_then_go(sync_sandbox, mode):
    window, opens = closed_in_london_open_in_berlin(timezone.now())
    sendout = d7sms.send_batch(LONDON_NUMBERS + BERLIN_NUMBERS, "Sale", quiet_hours=window, mode=mode)
    assert (sendout.send_from, sendout.send_until) == (window.start, window.end)
    assert received(sync_sandbox) == sorted(BERLIN_NUMBERS)
    waiting = Message.objects.filter(sendout=sendout, status=S.PENDING)
    assert sorted(waiting.values_list("to", flat=True)) == sorted(LONDON_NUMBERS)
    assert set(waiting.values_list("scheduled_at", flat=True)) == {opens}
    assert Schedule.objects.get(name=tasks.schedule_name(sendout.pk)).next_run == opens
    # Fake clock: the schedule firing a second before the window opens, and at the opening.
    assert tasks.fire_task(now=opens - dt.timedelta(seconds=1)) == 0
    assert received(sync_sandbox) == sorted(BERLIN_NUMBERS)
    assert tasks.fire_task(now=opens) == len(LONDON_NUMBERS)
    assert received(sync_sandbox) == sorted(LONDON_NUMBERS + BERLIN_NUMBERS)
    assert not Schedule.objects.filter(name=tasks.schedule_name(sendout.pk)).exists()
    if mode == "batch":
        # A /secure/sendbatch call never mixes messages released at different times.
        by_batch = {}
        for m in sync_sandbox.accepted():
            by_batch.setdefault(m["batch_id"], set()).add(m["to"][:3])
        assert sorted(map(sorted, by_batch.values())) == [["+44"], ["+49"]]


@pytest.mark.django_db(transaction=True)
def test_a_personalised_sendout_waits_per_recipient(sync_sandbox):
    window, opens = closed_in_london_open_in_berlin(timezone.now())
    rows = [{"to": n, "name": f"N{i}"} for i, n in enumerate(LONDON_NUMBERS + BERLIN_NUMBERS)]
    sendout = d7sms.send_batch(rows, "Hi {name}", quiet_hours=window)
    assert sendout.personalised and received(sync_sandbox) == sorted(BERLIN_NUMBERS)
    assert set(sendout.messages.filter(to__in=LONDON_NUMBERS).values_list("status", "scheduled_at")) == {(S.PENDING, opens)}
    tasks.fire_task(now=opens)  # fake clock, as above
    texts = {m["to"]: m["content"] for m in sync_sandbox.accepted()}
    assert len(texts) == len(rows) and texts[LONDON_NUMBERS[0]] == "Hi N0"


@pytest.mark.django_db(transaction=True)
def test_each_release_moves_the_schedule_on_to_the_next(sync_sandbox):
    now = timezone.now()
    # Opens in 30 min in London and in 90 min in Berlin: two releases, nothing at once.
    opens = (now.astimezone(LONDON) + dt.timedelta(minutes=90)).replace(microsecond=0)
    window = Window(opens.time(), (opens + dt.timedelta(hours=1)).time())
    sendout = d7sms.send_batch(LONDON_NUMBERS + BERLIN_NUMBERS, "Two waves", quiet_hours=window)
    first, second = opens.astimezone(UTC) - dt.timedelta(hours=1), opens.astimezone(UTC)
    assert sendout.status == SendoutStatus.SCHEDULED and received(sync_sandbox) == []
    schedule = Schedule.objects.filter(name=tasks.schedule_name(sendout.pk))
    assert schedule.get().next_run == first
    assert tasks.fire_task(now=first) == len(BERLIN_NUMBERS)  # fake clock, as above
    assert received(sync_sandbox) == sorted(BERLIN_NUMBERS)
    assert schedule.get().next_run == second
    assert tasks.fire_task(now=second) == len(LONDON_NUMBERS)
    assert len(received(sync_sandbox)) == len(LONDON_NUMBERS + BERLIN_NUMBERS) and not schedule.exists()


@pytest.mark.django_db(transaction=True)
def test_cancelling_a_sendout_cancels_what_waits_for_its_window(sync_sandbox):
    window, opens = closed_in_london_open_in_berlin(timezone.now())
    sendout = d7sms.send_batch(LONDON_NUMBERS + BERLIN_NUMBERS, "Stop", quiet_hours=window)
    assert api.cancel_sendout(sendout) == len(LONDON_NUMBERS)
    assert not Schedule.objects.filter(name=tasks.schedule_name(sendout.pk)).exists()
    tasks.fire_task(now=opens + dt.timedelta(hours=1))  # fake clock
    assert received(sync_sandbox) == sorted(BERLIN_NUMBERS)


@pytest.mark.django_db(transaction=True)
def test_resends_and_retries_wait_for_the_sendouts_window(sync_sandbox):
    no_route = "+447911000007"  # the sandbox refuses numbers ending in 7: the one that fails
    london, berlin = LONDON_NUMBERS[:2], BERLIN_NUMBERS[:2]
    window, opens = closed_in_london_open_in_berlin(timezone.now())
    sendout = d7sms.send_batch([*london, no_route, *berlin], "Sale", quiet_hours=window, mode="single")
    tasks.fire_task(now=opens)  # fake clock: the first release, so London's numbers went once
    assert received(sync_sandbox) == sorted(london + berlin)
    assert sync_sandbox.stats()["send_requests"] == 5
    # Now (the real clock) the window is still closed in London: copies there wait for it.
    copy = api.resend(Message.objects.get(sendout=sendout, to=london[0]))
    assert (copy.status, copy.scheduled_at) == (S.PENDING, opens)
    retried = api.retry_failed(sendout)
    assert retried == 1 and retried.waiting == {opens: 1}
    at_once = api.resend(Message.objects.get(sendout=sendout, to=berlin[0]))  # Berlin's window is open
    assert received(sync_sandbox) == sorted([*london, *berlin, berlin[0]])
    assert Schedule.objects.get(name=tasks.schedule_name(sendout.pk)).next_run == opens
    # Fake clock: a second before the window opens nothing goes; at the opening each copy goes once.
    assert tasks.fire_task(now=opens - dt.timedelta(seconds=1)) == 0
    assert received(sync_sandbox) == sorted([*london, *berlin, berlin[0]])
    assert sync_sandbox.stats()["send_requests"] == 6
    assert tasks.fire_task(now=opens) == 2
    assert received(sync_sandbox) == sorted([*london, *berlin, berlin[0], london[0]])
    assert sync_sandbox.stats()["send_requests"] == 8  # the retried no_route number was tried again
    assert tasks.fire_task(now=opens + dt.timedelta(hours=1)) == 0
    assert sync_sandbox.stats()["send_requests"] == 8 and received(sync_sandbox).count(london[0]) == 2
    assert not Schedule.objects.filter(name=tasks.schedule_name(sendout.pk)).exists()
    assert Message.objects.get(pk=at_once.pk).scheduled_at is None


@pytest.mark.django_db(transaction=True)
def test_the_admin_says_when_a_held_resend_and_retry_go(sync_sandbox, sender_client):
    no_route = "+447911000007"
    window, opens = closed_in_london_open_in_berlin(timezone.now())
    sendout = d7sms.send_batch([LONDON_NUMBERS[0], no_route], "Sale", quiet_hours=window, mode="single")
    tasks.fire_task(now=opens)  # fake clock: the first release went
    original = Message.objects.get(sendout=sendout, to=LONDON_NUMBERS[0])
    when = f"{timezone.localtime(opens):%Y-%m-%d %H:%M:%S} ({timezone.get_current_timezone_name()})"
    asked = unescape(sender_client.get(f"/admin/d7sms/message/{original.pk}/resend/").content.decode())
    assert f"Its sendout sends only {window}, recipient's local time: the new message waits until {when}." in asked
    response = sender_client.post(f"/admin/d7sms/message/{original.pk}/resend/", follow=True)
    copy = Message.objects.get(resend_of=original)
    said = f"new message #{copy.pk}, which waits for its sendout's quiet hours: it goes at {when}"
    assert said in unescape(response.content.decode())
    response = sender_client.post(f"/admin/d7sms/sendout/{sendout.pk}/retry/", follow=True)
    said = f"1 failed messages sent again. 1 waits for the sendout's quiet hours and goes at {when}."
    assert said in unescape(response.content.decode())
    assert sync_sandbox.stats()["send_requests"] == 2  # nothing more before the window opens
    assert tasks.fire_task(now=opens) == 2
    assert sync_sandbox.stats()["send_requests"] == 4


@pytest.mark.django_db(transaction=True)
def test_a_resend_the_window_never_opens_for_is_refused_and_changes_nothing(sync_sandbox):
    number = RU_MOBILE[:-1] + "5"  # one the sandbox takes (it refuses numbers ending in 7)
    sendout = d7sms.send_batch([number], "Hi", quiet_hours=False)
    # A window too narrow for the number's zones, as send_batch would have refused it: set here
    # by hand, the one way such a sendout can exist (its window is not edited otherwise).
    Sendout.objects.filter(pk=sendout.pk).update(send_from=dt.time(9), send_until=dt.time(10))
    original = sendout.messages.get()
    with pytest.raises(ValidationError) as info:
        api.resend(original)
    assert info.value.code == "quiet_hours" and number in info.value.messages[0]
    assert not Message.objects.filter(resend_of=original).exists()
    assert Message.objects.get(pk=original.pk).resend_token is None  # still its recipient's latest attempt
    assert received(sync_sandbox) == [number]


@pytest.mark.django_db(transaction=True)
def test_a_resend_of_a_message_of_no_sendout_goes_at_once(sync_sandbox):
    message = d7sms.send_sms(LONDON_NUMBERS[0], "Code 1234")
    copy = api.resend(message)
    assert copy.status == S.QUEUED and copy.scheduled_at is None
    assert received(sync_sandbox) == [LONDON_NUMBERS[0]] * 2


@pytest.mark.django_db(transaction=True)
def test_the_setting_is_the_default_and_false_sends_at_any_hour(sync_sandbox, settings):
    window, _opens = closed_in_london_open_in_berlin(timezone.now())
    settings.D7SMS = {**settings.D7SMS, "QUIET_HOURS": window.as_setting()}
    held = d7sms.send_batch(LONDON_NUMBERS, "Default window")
    assert (held.send_from, held.send_until) == (window.start, window.end)
    assert held.messages.filter(status=S.PENDING).count() == len(LONDON_NUMBERS)
    anytime = d7sms.send_batch(BERLIN_NUMBERS[:3], "Any hour", quiet_hours=False)
    assert anytime.send_from is None and received(sync_sandbox) == sorted(BERLIN_NUMBERS[:3])


@pytest.mark.django_db(transaction=True)
def test_a_local_schedule_waits_for_the_window_from_its_own_time(sync_sandbox):
    now = timezone.now()
    window, opens = closed_in_london_open_in_berlin(now, minutes=120)
    at_time = now + dt.timedelta(minutes=60)  # still closed in London then
    sendout = d7sms.send_batch(LONDON_NUMBERS + BERLIN_NUMBERS, "Later", schedule_at=at_time, quiet_hours=window)
    times = dict(Message.objects.filter(sendout=sendout).values_list("to", "scheduled_at"))
    assert {times[n] for n in BERLIN_NUMBERS} == {at_time} and {times[n] for n in LONDON_NUMBERS} == {opens}
    assert Schedule.objects.get(name=tasks.schedule_name(sendout.pk)).next_run == at_time
    tasks.fire_task(now=at_time)  # fake clock
    assert received(sync_sandbox) == sorted(BERLIN_NUMBERS)
    tasks.fire_task(now=opens)
    assert len(received(sync_sandbox)) == len(LONDON_NUMBERS + BERLIN_NUMBERS)


@pytest.mark.django_db(transaction=True)
def test_a_window_that_never_opens_for_a_number_is_refused_and_nothing_is_stored(sync_sandbox):
    with pytest.raises(ValidationError) as caught:
        d7sms.send_batch([*LONDON_NUMBERS, RU_MOBILE], "Narrow", quiet_hours=("09:00", "10:00"))
    assert caught.value.code == "quiet_hours" and RU_MOBILE in caught.value.message
    assert caught.value.params["numbers"] == [RU_MOBILE]
    assert not Sendout.objects.exists() and not Message.objects.exists() and received(sync_sandbox) == []


@pytest.mark.django_db(transaction=True)
def test_a_bad_window_is_refused(sync_sandbox):
    with pytest.raises(ValidationError) as caught:
        d7sms.send_batch(LONDON_NUMBERS, "Bad", quiet_hours=("20:00", "20:00"))
    assert caught.value.code == "quiet_hours" and not Sendout.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_remote_schedule_outside_the_window_is_refused(sync_sandbox):
    now = timezone.now()
    window, opens = closed_in_london_open_in_berlin(now, minutes=120)
    at_time = now + dt.timedelta(minutes=60)
    with pytest.raises(ValidationError) as caught:
        d7sms.send_batch(LONDON_NUMBERS, "At D7", schedule_at=at_time, remote_schedule=True, quiet_hours=window)
    assert caught.value.code == "quiet_hours" and "Schedule it at this site" in caught.value.message
    assert not Sendout.objects.exists() and received(sync_sandbox) == []
    # Inside the window for every number it is handed to D7 at once, with D7's schedule_at.
    inside = opens + dt.timedelta(minutes=5)
    sendout = d7sms.send_batch(LONDON_NUMBERS, "At D7", schedule_at=inside, remote_schedule=True, quiet_hours=window)
    assert sendout.remote_schedule
    assert set(sendout.messages.values_list("status", flat=True)) == {S.ACCEPTED}  # D7 took them all
    assert sync_sandbox.stats()["pending"]  # and holds them until their time


# -- a real cluster: nothing arrives before the release, everything after ---------------------------


@pytest.mark.cluster
@pytest.mark.django_db(transaction=True)
def test_cluster_holds_until_the_window_opens(d7_settings, sandbox):
    if os.environ.get("D7SMS_TEST_DATABASE") == "postgres" and not redis_up():
        pytest.skip("Redis is not reachable on 127.0.0.1:6379 (needed as the django-q2 broker).")
    d7_settings.D7SMS = {**d7_settings.D7SMS, "CALLBACK_BASE_URL": ""}
    tasks._broker().purge_queue()  # leftovers of an earlier run on a shared broker
    window, opens = closed_in_london_open_in_berlin(timezone.now(), minutes=0, seconds=25)
    sendout = d7sms.send_batch(LONDON_NUMBERS + BERLIN_NUMBERS, "Wait for it", quiet_hours=window)
    berlin = sendout.messages.filter(to__in=BERLIN_NUMBERS)
    with Cluster(base_url=sandbox.url, settings={"CALLBACK_BASE_URL": ""}):
        wait_for(lambda: not berlin.exclude(status=S.ACCEPTED).exists(), 30, message="the messages inside the window")
        early = received(sandbox)
        assert timezone.now() < opens, "the cluster took too long to start for this test to tell anything"
        assert early == sorted(BERLIN_NUMBERS)
        # django-q2's scheduler looks for due schedules every 30 s.
        wait_for(lambda: not sendout.messages.exclude(status=S.ACCEPTED).exists(), 75, message="the released messages")
    arrived = {m["to"]: m for m in sandbox.accepted()}
    assert sorted(arrived) == sorted(LONDON_NUMBERS + BERLIN_NUMBERS) and len(sandbox.accepted()) == len(arrived)
    assert all(dt.datetime.fromisoformat(arrived[n]["accepted_at"]) >= opens for n in LONDON_NUMBERS)


# -- the compose preview and the sendout page (Django test client) ----------------------------------

COMPOSE = "/admin/d7sms/sendout/compose/"


def compose_form(numbers, window, **overrides):
    data = {
        "name": "Quiet", "sender": "MyShop", "content": "Hello", "recipients": "\n".join(numbers),
        "region": "GB", "dlr_level": "3", "mode": "batch", "when": "now", "where": "local", "coding": "8",
        "send_from": window.start.strftime("%H:%M") if window else "",
        "send_until": window.end.strftime("%H:%M") if window else "",
    }
    data.update(overrides)
    return data


def whole_minute_window(now, minutes=30):
    """As closed_in_london_open_in_berlin, with times the form takes (whole minutes)."""
    window, opens = closed_in_london_open_in_berlin(now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1), minutes)
    return window, opens


@pytest.mark.django_db
def test_the_preview_counts_what_is_released_at_once_and_what_waits_until_when(sender_client, locmem):
    window, opens = whole_minute_window(timezone.now())
    response = sender_client.post(COMPOSE, compose_form(LONDON_NUMBERS + BERLIN_NUMBERS + ["+80012345678"], window))
    quiet = response.context["quiet"]
    assert (quiet.at_once, quiet.releases(), quiet.unknown) == (len(BERLIN_NUMBERS) + 1, [(opens, len(LONDON_NUMBERS))], 1)
    html = response.content.decode()
    assert 'id="d7-quiet-hours"' in html and "1 number has no known time zone" in html
    shown = date_format(timezone.localtime(opens), "DATETIME_FORMAT")
    release_line = re.search(r'class="d7-quiet-release"><strong>(\d+)</strong>\s*wait until ([^<]+)<', html)
    assert release_line[1] == str(len(LONDON_NUMBERS)) and shown in release_line[2]
    # Confirming stores the window and holds the London numbers until it opens.
    confirm = sender_client.post(COMPOSE, {"_action": "confirm", "draft": re.search(r'name="draft" value="([^"]+)"', html)[1]})
    assert confirm.status_code == 302
    sendout = Sendout.objects.get()
    assert (sendout.send_from, sendout.send_until) == (window.start, window.end)
    assert sorted(sendout.messages.filter(status=S.PENDING).values_list("to", flat=True)) == sorted(LONDON_NUMBERS)
    page = sender_client.get(confirm["Location"]).content.decode()
    held = re.search(r'id="d7-quiet-held">(.*?)</p>', page, re.S)[1]
    assert f"{len(LONDON_NUMBERS)} waiting for quiet hours, next release at" in held and shown in held


@pytest.mark.django_db
def test_the_preview_names_numbers_the_window_never_opens_for_and_confirm_refuses(sender_client, locmem):
    narrow = Window(dt.time(9), dt.time(10))
    response = sender_client.post(COMPOSE, compose_form([*LONDON_NUMBERS, RU_MOBILE], narrow))
    html = response.content.decode()
    never = re.search(r'id="d7-quiet-never">(.*?)</p>', html, re.S)[1]
    assert "1 number at once" in never and RU_MOBILE in never
    draft = re.search(r'name="draft" value="([^"]+)"', html)[1]
    refused = sender_client.post(COMPOSE, {"_action": "confirm", "draft": draft}, follow=True)
    assert RU_MOBILE in refused.content.decode() and not Sendout.objects.exists()


@pytest.mark.django_db
def test_the_compose_form_takes_its_window_from_the_setting_and_wants_both_times(sender_client, settings):
    settings.D7SMS = {**settings.D7SMS, "QUIET_HOURS": ("09:00", "20:00")}
    page = sender_client.get(COMPOSE)
    assert page.context["form"]["send_from"].value() == dt.time(9) and page.context["form"]["send_until"].value() == dt.time(20)
    response = sender_client.post(COMPOSE, compose_form(LONDON_NUMBERS, None, send_from="09:00"))
    assert response.context["form"].errors["send_until"] == ["Give both times, or neither to send at any hour."]
    same = sender_client.post(COMPOSE, compose_form(LONDON_NUMBERS, None, send_from="09:00", send_until="09:00"))
    assert "empty" in same.context["form"].errors["send_until"][0]
    anytime = sender_client.post(COMPOSE, compose_form(LONDON_NUMBERS, None))
    assert anytime.context["quiet"] is None and 'id="d7-quiet-hours"' not in anytime.content.decode()
