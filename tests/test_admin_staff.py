"""Staff conveniences: send a test, duplicate, archive instead of delete, one's own time zone, and
the sendout page's polish (theme-aware chart, readable progress colours, no transport jargon)."""

import datetime
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from d7sms.models import Message, Sendout, SendoutStatus, StaffProfile
from tests.admin_data import S, make_sendout

pytest_plugins = ["tests.admin_support"]
pytestmark = pytest.mark.django_db

COMPOSE = "/admin/d7sms/sendout/compose/"
LIST = "/admin/d7sms/sendout/"
CSS = Path(__file__).resolve().parent.parent / "d7sms" / "static" / "d7sms" / "admin.css"


def page(sendout, suffix="change/"):
    return f"/admin/d7sms/sendout/{sendout.pk}/{suffix}"


def form(**overrides):
    data = {
        "name": "Spring sale", "sender": "MyShop", "content": "Hello", "recipients": "+447911123450\n+447911123460",
        "region": "", "dlr_level": "3", "mode": "batch", "when": "now", "where": "local", "coding": "8",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def draft_of(response):
    return re.search(r'name="draft" value="([^"]+)"', response.content.decode()).group(1)


def notices(response):
    return [str(m) for m in response.context["messages"]] if response.context else []


def with_delete_permission(user):
    user.user_permissions.add(Permission.objects.get(codename="delete_sendout"))


# -- deleting is refused once anything reached D7; archive instead -------------------------------


def test_a_sent_sendout_cannot_be_deleted_from_its_page(sender_client, sender_user):
    with_delete_permission(sender_user)
    sendout = make_sendout([S.DELIVERED, S.QUEUED])
    html = sender_client.get(page(sendout)).content.decode()
    assert "deletelink" not in html and 'id="d7-archive"' in html
    for method in (sender_client.get, sender_client.post):
        response = method(page(sendout, "delete/"), {"post": "yes"}, follow=True)
        assert "was not deleted: it handed messages to D7" in " ".join(notices(response))
    assert Sendout.objects.filter(pk=sendout.pk).exists() and sendout.messages.count() == 2


def test_an_unsent_sendout_can_be_deleted(sender_client, sender_user):
    with_delete_permission(sender_user)
    later = timezone.now() + datetime.timedelta(days=1)
    sendout = make_sendout([S.PENDING, S.PENDING], schedule_at=later)
    assert "deletelink" in sender_client.get(page(sendout)).content.decode()
    response = sender_client.post(page(sendout, "delete/"), {"post": "yes"})
    assert response.status_code == 302
    assert not Sendout.objects.filter(pk=sendout.pk).exists() and not Message.objects.exists()


def test_bulk_delete_removes_only_unsent_sendouts(sender_client, sender_user):
    with_delete_permission(sender_user)
    sent = make_sendout([S.DELIVERED], name="Sent")
    failed_only = make_sendout([S.FAILED], name="Failed at D7")
    unsent = make_sendout([S.QUEUED], name="Unsent")
    chosen = {"action": "delete_selected", "_selected_action": [sent.pk, failed_only.pk, unsent.pk]}
    confirm = sender_client.post(LIST, chosen)
    html = confirm.content.decode()
    assert "Unsent" in html and "Are you sure" in html
    assert "“Sent” was not deleted" in " ".join(notices(confirm))
    done = sender_client.post(LIST, {**chosen, "post": "yes"}, follow=True)
    assert set(Sendout.objects.values_list("name", flat=True)) == {"Sent", "Failed at D7"}
    assert "Successfully deleted 1 sendout" in " ".join(notices(done))


def test_bulk_delete_of_sent_sendouts_only_explains(sender_client, sender_user):
    with_delete_permission(sender_user)
    sent = make_sendout([S.ACCEPTED], name="Sent")
    response = sender_client.post(LIST, {"action": "delete_selected", "_selected_action": [sent.pk], "post": "yes"},
                                  follow=True)
    assert "“Sent” was not deleted" in " ".join(notices(response))
    assert Sendout.objects.filter(pk=sent.pk).exists()


def test_a_sendout_handed_to_d7_while_being_deleted_is_kept(sender_user, rf):
    """The check runs after the waiting messages are cancelled, in one transaction: a message a
    worker took meanwhile (here: made ``sending`` just before) keeps the sendout, and the
    cancellations roll back."""
    from d7sms.admin.archive import Kept, delete_unsent

    sendout = make_sendout([S.QUEUED, S.QUEUED])
    first = sendout.messages.order_by("pk").first()
    Message.objects.filter(pk=first.pk).update(status=S.SENDING)
    with pytest.raises(Kept):
        delete_unsent(sendout)
    assert sorted(sendout.messages.values_list("status", flat=True)) == [S.QUEUED, S.SENDING]


def test_archived_sendouts_leave_the_default_list(sender_client):
    old = make_sendout([S.DELIVERED], name="Old campaign")
    make_sendout([S.DELIVERED], name="Current campaign")
    response = sender_client.post(page(old, "archive/"), follow=True)
    assert "is archived" in " ".join(notices(response))
    old.refresh_from_db()
    assert old.archived_at is not None
    listed = sender_client.get(LIST).content.decode()
    assert "Current campaign" in listed and "Old campaign" not in listed
    assert "Old campaign" in sender_client.get(LIST + "?archived=yes").content.decode()
    everything = sender_client.get(LIST + "?archived=all").content.decode()
    assert "Old campaign" in everything and "Current campaign" in everything
    # The page of an archived sendout still opens, and offers to bring it back.
    assert "Unarchive" in sender_client.get(page(old)).content.decode()
    sender_client.post(page(old, "archive/"))
    old.refresh_from_db()
    assert old.archived_at is None


def test_archive_list_actions(sender_client, viewer_client):
    a, b = make_sendout([S.DELIVERED], name="A"), make_sendout([S.DELIVERED], name="B")
    viewer_client.post(LIST, {"action": "archive_selected", "_selected_action": [a.pk]})
    assert not Sendout.objects.filter(archived_at__isnull=False).exists()  # viewers may not
    sender_client.post(LIST, {"action": "archive_selected", "_selected_action": [a.pk, b.pk]})
    assert Sendout.objects.filter(archived_at__isnull=False).count() == 2
    sender_client.post(LIST + "?archived=yes", {"action": "unarchive_selected", "_selected_action": [a.pk]})
    assert list(Sendout.objects.filter(archived_at__isnull=True).values_list("name", flat=True)) == ["A"]


def test_archive_needs_post_and_the_send_permission(sender_client, viewer_client):
    sendout = make_sendout([S.DELIVERED])
    assert sender_client.get(page(sendout, "archive/")).status_code == 405
    assert viewer_client.post(page(sendout, "archive/")).status_code == 403
    assert 'id="d7-archive"' not in viewer_client.get(page(sendout)).content.decode()


# -- duplicate -----------------------------------------------------------------------------------


def test_duplicate_prefills_compose_with_text_options_and_recipients(sender_client, locmem):
    sendout = make_sendout([S.DELIVERED, S.UNDELIVERED], name="Spring", content="Sale {today}",
                           mode="single", dlr_level=1)
    original = list(sendout.messages.order_by("pk").values_list("to", flat=True))
    # A resend is not a new recipient: the copy lists each number once.
    first = sendout.messages.order_by("pk").first()
    Message.objects.create(sendout=sendout, to=first.to, content="Sale {today}", resend_of=first, status=S.QUEUED)
    assert 'id="d7-duplicate"' in sender_client.get(page(sendout)).content.decode()
    response = sender_client.get(page(sendout, "duplicate/"))
    assert response.status_code == 200
    bound = response.context["form"]
    assert bound.initial["name"] == "Copy of Spring" and bound.initial["content"] == "Sale {today}"
    assert bound.initial["sender"] == "D7sms" and bound.initial["mode"] == "single" and bound.initial["dlr_level"] == 1
    assert bound.initial["recipients"].split("\n") == original
    html = response.content.decode()
    assert f'action="{COMPOSE}"' in html and "Nothing is sent until you confirm" in html
    assert Sendout.objects.count() == 1 and Message.objects.count() == 3 and locmem.outbox() == []


def test_duplicate_of_a_personalised_sendout_keeps_each_recipients_fields(sender_client, locmem):
    data = "phone,name\n+447911123450,Ann\n+447911123460,Bob\n".encode()
    preview = sender_client.post(COMPOSE, form(recipients="", content="Hi {name}", upload=SimpleUploadedFile("l.csv", data)))
    sender_client.post(COMPOSE, {"_action": "confirm", "draft": draft_of(preview)})
    sendout = Sendout.objects.get()
    locmem.reset()
    # Its recipients are listed once, below the progress (not inside the links above it).
    assert sender_client.get(page(sendout)).content.decode().count('id="d7-recipients"') == 1
    response = sender_client.get(page(sendout, "duplicate/"))
    kept = response.context["kept_upload"]
    assert [c["name"] for c in kept.columns] == ["phone", "name"] and kept.row_count == 2
    assert response.context["form"].initial["column"] == "phone"
    again = sender_client.post(COMPOSE, form(recipients="", content="Hi {name}", column="phone",
                                             upload_ref=response.context["upload_ref"]))
    assert [s["text"] for s in again.context["samples"]] == ["Hi Ann", "Hi Bob"]
    assert Sendout.objects.count() == 1 and locmem.outbox() == []


def test_duplicate_needs_the_send_permission(viewer_client):
    sendout = make_sendout([S.DELIVERED])
    assert viewer_client.get(page(sendout, "duplicate/")).status_code == 403
    assert 'id="d7-duplicate"' not in viewer_client.get(page(sendout)).content.decode()


# -- send a test to me ---------------------------------------------------------------------------


@pytest.fixture
def sandbox_sync(d7_settings):
    """Send to the sandbox in the request itself."""
    d7_settings.D7SMS = {**d7_settings.D7SMS, "SYNC": True, "CALLBACK_BASE_URL": "https://127.0.0.1:9"}
    return d7_settings


@pytest.mark.django_db(transaction=True)
def test_send_a_test_reaches_the_sandbox_once_and_belongs_to_no_sendout(sender_client, sandbox, sandbox_sync):
    preview = sender_client.post(COMPOSE, form(content="Hello from the shop"))
    response = sender_client.post(COMPOSE, {"_action": "test", "draft": draft_of(preview), "test_to": "+447911123470"})
    assert response.status_code == 200 and 'id="d7sms-preview"' in response.content.decode()
    assert "A test message is on its way to +447911123470" in " ".join(notices(response))
    arrived = [(m["to"], m["content"]) for m in sandbox.accepted()]
    assert arrived == [("+447911123470", "Hello from the shop")]
    test = Message.objects.get()
    assert test.is_test and test.sendout_id is None
    assert not Sendout.objects.exists()
    # The sendout itself can still be confirmed once, to its own recipients only.
    sender_client.post(COMPOSE, {"_action": "confirm", "draft": draft_of(response)})
    assert Sendout.objects.get().recipient_count == 2
    assert len(sandbox.accepted()) == 3


@pytest.mark.django_db(transaction=True)
def test_send_a_test_of_a_personalised_sendout_uses_the_first_recipients_fields(
    sender_client, sender_user, sandbox, sandbox_sync
):
    StaffProfile.objects.create(user=sender_user, phone="+447911123480")
    data = "phone,name\n12345,Nobody\n+447911123450,Ann\n+447911123460,Bob\n".encode()
    preview = sender_client.post(COMPOSE, form(recipients="", content="Hi {name}", upload=SimpleUploadedFile("l.csv", data)))
    assert 'value="+447911123480"' in preview.content.decode()  # the number kept in the profile
    sender_client.post(COMPOSE, {"_action": "test", "draft": draft_of(preview), "test_to": "+447911123480"})
    assert [(m["to"], m["content"]) for m in sandbox.accepted()] == [("+447911123480", "Hi Ann")]
    assert not Sendout.objects.exists()


def test_send_a_test_without_a_number_or_with_a_bad_one_sends_nothing(sender_client, locmem):
    draft = draft_of(sender_client.post(COMPOSE, form()))
    empty = sender_client.post(COMPOSE, {"_action": "test", "draft": draft, "test_to": ""})
    assert "Type the number to send the test to" in " ".join(notices(empty))
    bad = sender_client.post(COMPOSE, {"_action": "test", "draft": draft, "test_to": "12"})
    assert "The test was not sent: Invalid number '12'" in " ".join(notices(bad))
    assert locmem.outbox() == [] and not Message.objects.exists()


# -- the staff member's own time zone ------------------------------------------------------------

LATER = (timezone.now() + datetime.timedelta(days=30)).strftime("%Y-%m-%d") + "T09:00"


def _scheduled(client, **extra):
    preview = client.post(COMPOSE, form(when="later", schedule_at=LATER, **extra))
    client.post(COMPOSE, {"_action": "confirm", "draft": draft_of(preview)})
    return preview, Sendout.objects.order_by("-pk").first()


def _utc(zone):
    import zoneinfo

    naive = datetime.datetime.strptime(LATER, "%Y-%m-%dT%H:%M")
    return naive.replace(tzinfo=zoneinfo.ZoneInfo(zone)).astimezone(datetime.timezone.utc)


def test_the_schedule_is_read_in_the_profiles_time_zone(sender_client, sender_user, locmem):
    StaffProfile.objects.create(user=sender_user, time_zone="America/New_York")
    html = sender_client.get(COMPOSE).content.decode()
    assert "In your time zone, America/New_York (from your SMS settings)." in html
    preview, sendout = _scheduled(sender_client, time_zone="Asia/Tokyo")  # the profile wins
    assert sendout.schedule_at == _utc("America/New_York")
    assert "9 a.m. America/New_York" in preview.content.decode()


def test_without_a_profile_zone_the_browsers_is_used_and_named(sender_client, locmem):
    html = sender_client.get(COMPOSE).content.decode()
    # Until the browser tells its zone, the site's is used, and said to be the site's.
    assert "In your time zone, Europe/Berlin (this site&#x27;s; set yours in your SMS settings)." in html
    assert 'data-source="site"' in html
    preview, sendout = _scheduled(sender_client, time_zone="America/New_York")
    assert sendout.schedule_at == _utc("America/New_York")
    back = sender_client.post(COMPOSE, {"_action": "back", "draft": draft_of(preview), "time_zone": "America/New_York"})
    assert "America/New_York (your browser&#x27;s)" in back.content.decode()
    assert 'value="' + LATER + '"' in back.content.decode()  # shown again as typed


def test_an_unknown_posted_zone_falls_back_to_the_sites(sender_client, locmem):
    _preview, sendout = _scheduled(sender_client, time_zone="Mars/Olympus")
    assert sendout.schedule_at == _utc("Europe/Berlin")


def test_staff_edit_only_their_own_sms_settings(sender_client, sender_user, viewer_user):
    theirs = StaffProfile.objects.create(user=viewer_user, phone="+447911123499")
    mine_url = sender_client.get("/admin/d7sms/staffprofile/mine/")["Location"]
    mine = StaffProfile.objects.get(user=sender_user)
    assert mine_url == f"/admin/d7sms/staffprofile/{mine.pk}/change/"
    saved = sender_client.post(mine_url, {"phone": "07911 123456", "time_zone": "America/New_York"})
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    mine.refresh_from_db()
    assert (mine.phone, mine.time_zone) == ("+447911123456", "America/New_York")
    bad = sender_client.post(mine_url, {"phone": "12", "time_zone": "Mars/Olympus"})
    assert set(bad.context["adminform"].form.errors) == {"phone", "time_zone"}
    assert sender_client.get(f"/admin/d7sms/staffprofile/{theirs.pk}/change/").status_code == 302  # not found: home
    assert sender_client.post(f"/admin/d7sms/staffprofile/{theirs.pk}/change/", {"phone": ""}).status_code == 302
    theirs.refresh_from_db()
    assert theirs.phone == "+447911123499"


# -- the sendout page: chart, colours, live progress, no jargon ----------------------------------


def test_chart_takes_its_colours_from_the_theme():
    from d7sms.admin.progress_views import render_chart

    now = timezone.now()
    svg = render_chart([(now, 0, 0), (now + datetime.timedelta(minutes=5), 3, 1)], (datetime.timedelta(minutes=1), ""), 4)
    assert "#fff\"" not in svg and 'fill="#' not in svg  # no fixed colour: classes only
    assert 'class="d7c-bg"' in svg and "var(--d7-chart-bg,#fff)" in svg
    assert "prefers-color-scheme: dark" in svg  # the chart opened on its own follows the system


@pytest.mark.parametrize("span", [
    datetime.timedelta(seconds=20), datetime.timedelta(seconds=90), datetime.timedelta(minutes=2),
    datetime.timedelta(minutes=50), datetime.timedelta(hours=2, minutes=59), datetime.timedelta(hours=30),
    datetime.timedelta(days=6), datetime.timedelta(days=40), datetime.timedelta(days=400),
])
def test_x_axis_labels_never_repeat(span):
    from d7sms.admin.progress_views import _GRAINS, x_ticks

    t0 = timezone.now().replace(microsecond=0)
    grain = next(step for longest, _kind, step, _fmt in _GRAINS if longest is None or span <= longest)
    ticks = x_ticks(t0, t0 + span, grain)
    labels = [label for _t, label in ticks]
    assert len(labels) == len(set(labels)), labels
    assert 2 <= len(ticks) <= 7, labels
    assert all(t0 <= t <= t0 + span for t, _label in ticks)


def test_the_old_repeated_label_case_has_distinct_labels():
    """A sendout over one minute at minute grain printed "10:01" twice; now each label is new."""
    from d7sms.admin.progress_views import render_chart

    t0 = timezone.now().replace(second=0, microsecond=0)
    svg = render_chart([(t0, 0, 0), (t0 + datetime.timedelta(minutes=1), 1, 0)], (datetime.timedelta(minutes=1), ""), 1)
    labels = re.findall(r'y="230" text-anchor="\w+">([^<]+)<', svg)
    assert labels and len(labels) == len(set(labels)), labels


def _palette(block_start):
    text = CSS.read_text()
    block = text[text.index(block_start):]
    block = block[: block.index("}")]
    return dict(re.findall(r"--d7-(\w+): (#[0-9a-f]{6});", block))


def _luminance(hex_colour):
    def channel(c):
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a, b):
    """The WCAG 2 contrast ratio of two colours."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


# The admin's own backgrounds (django/contrib/admin/static/admin/css/base.css and dark_mode.css):
# the page (--body-bg) and the bar's track (--darkened-bg).
THEMES = {":root {\n    --d7-delivered": ("#ffffff", "#f8f8f8"), 'html[data-theme="dark"] {': ("#121212", "#212121")}
ORDER = ("delivered", "failed", "accepted", "waiting", "cancelled")


@pytest.mark.parametrize("block, backgrounds", THEMES.items(), ids=["light", "dark"])
def test_progress_colours_have_3_to_1_contrast_with_neighbours_and_background(block, backgrounds):
    palette = _palette(block)
    assert set(palette) == set(ORDER)
    for name in ORDER:
        for background in backgrounds:
            assert contrast(palette[name], background) >= 3, (name, background)
    for left, right in zip(ORDER, ORDER[1:]):
        assert contrast(palette[left], palette[right]) >= 3, (left, right)


def test_the_system_dark_mode_uses_the_dark_palette():
    text = CSS.read_text()
    media = text[text.index('@media (prefers-color-scheme: dark) {\n    html:not([data-theme="light"]) {'):]
    assert dict(re.findall(r"--d7-(\w+): (#[0-9a-f]{6});", media[: media.index("}")])) == _palette('html[data-theme="dark"] {')
    # The separators and patterns: touching segments never rely on colour alone.
    assert "box-shadow: inset 2px 0 0 var(--d7-track)" in text
    assert "repeating-linear-gradient" in text.split(".d7-seg-accepted")[1].split("}")[0]


def test_progress_json_carries_the_sentence_the_live_region_reads(viewer_client):
    running = make_sendout([S.DELIVERED, S.ACCEPTED, S.QUEUED, S.QUEUED])
    assert viewer_client.get(page(running, "progress/")).json()["live"] == "1 of 4 messages final (25 %)."
    done = make_sendout([S.DELIVERED, S.UNDELIVERED])
    Sendout.objects.filter(pk=done.pk).update(status=SendoutStatus.COMPLETED_WITH_FAILURES)
    assert viewer_client.get(page(done, "progress/")).json()["live"] == "Sendout finished: 1 delivered, 1 failed."
    html = viewer_client.get(page(done)).content.decode()
    assert 'aria-live="polite"' in html and "Sendout finished: 1 delivered, 1 failed." in html
    assert "window.location.reload" not in (CSS.parent / "progress.js").read_text()


def test_the_sendout_page_speaks_plainly(viewer_client):
    sendout = make_sendout([S.DELIVERED])
    html = viewer_client.get(page(sendout)).content.decode()
    assert "/secure/" not in html and "its schedule_at" not in html and "In batches" in html
    assert "Hex content" not in html and "Coding" not in html  # empty for a text sendout
    assert "Technical details" in html and "D7 batch ids" not in html  # none recorded
    binary = make_sendout([S.DELIVERED], content="")
    Sendout.objects.filter(pk=binary.pk).update(hex_content="0041", coding=8, d7_batch_ids=["b-1"])
    html = viewer_client.get(page(binary)).content.decode()
    assert "Hex content" in html and "0041" in html and "b-1" in html


def test_the_failed_recipients_table_scrolls_within_its_box(viewer_client):
    sendout = make_sendout([S.UNDELIVERED])
    html = viewer_client.get(page(sendout)).content.decode()
    assert re.search(r'<div class="d7-scroll"[^>]*>\s*<table', html.split('id="d7-failures"')[1])
    assert ".d7-scroll { overflow-x: auto" in CSS.read_text()
