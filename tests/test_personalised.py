"""Personalised sendouts through the API: templates, per-message texts, codings and senders,
saved templates, and what arrives at the sandbox (the provider's Examples 1 and 2)."""

import json
import time

import pytest
import requests
from django.core.exceptions import ValidationError

import d7sms
from d7sms import api, merge, sending, webhook_urls
from d7sms.backends import base
from d7sms.backends.d7 import D7Backend
from d7sms.client import D7Client
from d7sms.models import Message, MessageTemplate, Sendout

pytestmark = pytest.mark.django_db

A, B, C, D = "+447911123450", "+447911123451", "+447911123452", "+447911123453"


@pytest.fixture
def outbox(settings):
    from d7sms.backends import locmem

    settings.D7SMS = {**settings.D7SMS, "BACKEND": "locmem"}
    locmem.reset()
    yield locmem.outbox()
    locmem.reset()


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def stored(sendout):
    return {m.to: m for m in Message.objects.filter(sendout=sendout)}


# -- the template language ------------------------------------------------------------------


def test_a_template_fills_bare_names_and_keeps_doubled_braces():
    tpl = merge.compile_template("Hi {name}, {{code}} in { city }}}")
    assert tpl.fields == ("name", "city")
    assert tpl.render({"name": "Zoë", "city": "Köln"}) == "Hi Zoë, {code} in Köln}"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Hi {user.name}", "attribute access"),
        ("Hi {names[0]}", "index access"),
        ("Hi {name!r}", "conversion"),
        ("Hi {name:>30}", "format spec"),
        ("{% if x %}yes{% endif %}", "template tag"),
        ("Hi {name", "not closed"),
        ("Hi name}", "closes nothing"),
        ("Hi {}", "empty"),
        ("Hi {a{b}}", "not closed"),
    ],
)
def test_anything_but_a_bare_name_is_refused(text, words):
    with pytest.raises(merge.MergeError) as info:
        merge.compile_template(text)
    assert words in str(info.value)


def test_a_field_is_never_evaluated():
    class Sneaky:
        def __format__(self, spec):  # pragma: no cover - must never run
            raise AssertionError("format called")

        def __str__(self):
            return "plain"

    assert merge.compile_template("x{v}").render({"v": Sneaky()}) == "xplain"


# -- send_batch with mappings ---------------------------------------------------------------


def test_each_recipient_gets_its_own_text_coding_and_parts(commit, outbox):
    rows = [
        {"to": "07911 123450", "name": "Ada", "city": "Leeds"},
        {"to": B, "name": "Zoë", "city": "Köln"},
        {"to": C, "name": "Bob", "city": "Paris " * 30},
    ]
    with commit():
        sendout = d7sms.send_batch(rows, "Hi {name}, your order in {city} is ready", name="orders")
    assert sendout.personalised and sendout.content == "Hi {name}, your order in {city} is ready"
    assert sendout.columns == ["name", "city"]
    msgs = stored(sendout)
    ada, zoe, bob = msgs[A], msgs[B], msgs[C]
    assert ada.content == "Hi Ada, your order in Leeds is ready" and ada.coding is None and ada.parts == 1
    # One "Zoë" makes only Zoë's message UCS-2.
    assert zoe.coding == 8 and bytes.fromhex(zoe.hex_content).decode("utf-16-be") == "Hi Zoë, your order in Köln is ready"
    assert bob.coding is None and bob.parts == 2
    assert sendout.parts == 2
    assert ada.fields == {"name": "Ada", "city": "Leeds"}
    sent = {m.to: m for m in outbox}
    assert sent[A].content == "Hi Ada, your order in Leeds is ready"
    assert sent[B].hex_content == zoe.hex_content and sent[B].params["coding"] == 8 and sent[B].content is None
    assert sent[C].content.startswith("Hi Bob, your order in Paris Paris")


def test_plain_numbers_get_the_text_as_written_braces_included(commit, outbox):
    with commit():
        sendout = d7sms.send_batch([A, B], "Hi {name} {{x}}")
    assert not sendout.personalised
    assert {m.content for m in outbox} == {"Hi {name} {{x}}"}
    assert Message.objects.filter(fields__isnull=True).count() == 2


@pytest.mark.parametrize(
    ("rows", "content", "row", "field", "words"),
    [
        ([{"to": A, "name": "Ada"}, {"to": B}], "Hi {name}", 2, "name", "no field 'name'"),
        ([{"to": A, "name": "Ada"}, {"to": B, "name": "  "}], "Hi {name}", 2, "name", "no value for {name}"),
        ([{"to": A, "name": None}], "Hi {name}", 1, "name", "no value"),
        ([{"to": A, "name": "Ada"}], "Hi {nmae}", 1, "nmae", "no field 'nmae'"),
        ([{"to": A}, {"to": "12345"}], "Hi", 2, "to", "invalid number '12345'"),
        ([{"to": A}, {"name": "x"}], "Hi", 2, "to", "no number"),
        ([{"to": A, "sender": "Not a valid sender!"}], "Hi", 1, "sender", "invalid sender"),
        ([{"to": A}, {"to": B, "content": "Hi {x"}], "Hi", 2, "content", "not closed"),
        ([{"to": A}, B], "Hi", 2, "", "plain number among recipients"),
    ],
)
def test_a_bad_row_names_row_and_field_and_nothing_is_stored(outbox, rows, content, row, field, words):
    with pytest.raises(ValidationError) as info:
        d7sms.send_batch(rows, content)
    [error] = info.value.error_list
    assert error.params["row"] == row and error.params["field"] == field
    assert f"Row {row}" in error.message and words in error.message
    assert not Sendout.objects.exists() and not Message.objects.exists()


def test_a_malformed_template_is_refused_before_any_row(outbox):
    with pytest.raises(ValidationError) as info:
        d7sms.send_batch([{"to": A, "name": "x"}], "Hi {name.upper}")
    assert info.value.code == "template" and "attribute access" in info.value.messages[0]
    assert not Sendout.objects.exists()


def test_every_bad_row_is_listed_up_to_a_limit(outbox):
    from d7sms import personalise

    rows = [{"to": A}] + [{"to": "1"}] * (personalise.SHOWN_PROBLEMS + 5)
    with pytest.raises(ValidationError) as info:
        d7sms.send_batch(rows, "Hi")
    assert len(info.value.error_list) == personalise.SHOWN_PROBLEMS + 1
    assert "5 more" in info.value.messages[-1]


def test_a_row_may_carry_its_own_text_and_sender(commit, outbox):
    rows = [
        {"to": A, "name": "Ada"},
        {"to": B, "name": "Bo", "content": "Dear {name}, {{welcome}}", "sender": "Brand2"},
        {"to": [C, D], "content": "Same for both"},
    ]
    with commit():
        sendout = d7sms.send_batch(rows, "Hi {name}", sender="Brand1")
    msgs = stored(sendout)
    assert (msgs[A].sender, msgs[A].content) == ("Brand1", "Hi Ada")
    assert (msgs[B].sender, msgs[B].content) == ("Brand2", "Dear Bo, {welcome}")
    assert msgs[C].content == msgs[D].content == "Same for both" and msgs[C].fields == {}
    assert {m.to: m.sender for m in outbox} == {A: "Brand1", B: "Brand2", C: "Brand1", D: "Brand1"}


def test_repeated_numbers_are_sent_once_first_row_wins(commit, outbox):
    rows = [{"to": A, "n": "1"}, {"to": "07911 123450", "n": "2"}, {"to": B, "n": "3"}]
    with commit():
        sendout = d7sms.send_batch(rows, "#{n}", duplicates_removed=1)
    assert sendout.recipient_count == 2 and sendout.duplicate_count == 2
    assert stored(sendout)[A].content == "#1"


def test_a_recipient_object_keeps_fields_apart_from_to_content_and_sender(commit, outbox):
    row = merge.Recipient(A, {"to": "07911 123450", "content": "cake", "sender": "Mum"}, sender="Shop")
    with commit():
        sendout = d7sms.send_batch([row], "{sender} sends {content} to {to}")
    message = stored(sendout)[A]
    assert (message.content, message.sender) == ("Mum sends cake to 07911 123450", "Shop")
    assert message.fields == {"to": "07911 123450", "content": "cake", "sender": "Mum"}
    assert sendout.columns == ["to", "content", "sender"]


def test_field_values_are_stored_as_json_and_filled_as_text(commit, outbox):
    import datetime
    from decimal import Decimal

    row = {"to": A, "qty": 3, "price": Decimal("9.90"), "due": datetime.date(2025, 5, 1), "score": 12.0}
    with commit():
        sendout = d7sms.send_batch([row], "{qty} for {price} by {due} ({score})")
    message = stored(sendout)[A]
    assert message.content == "3 for 9.90 by 2025-05-01 (12)"
    assert message.fields == {"qty": 3, "price": "9.90", "due": "2025-05-01", "score": 12.0}


def test_a_resend_keeps_the_fields(commit, outbox):
    with commit():
        sendout = d7sms.send_batch([{"to": A, "name": "Ada"}], "Hi {name}")
    original = stored(sendout)[A]
    Message.objects.filter(pk=original.pk).update(status="failed")
    with commit():
        copy = api.resend(original)
    assert (copy.content, copy.fields) == ("Hi Ada", {"name": "Ada"})


def test_an_idempotency_key_guards_a_personalised_sendout(commit, outbox):
    import uuid

    key = uuid.uuid4()
    with commit():
        first = d7sms.send_batch([{"to": A, "name": "Ada"}], "Hi {name}", idempotency_key=key)
        again = d7sms.send_batch([{"to": A, "name": "Ada"}], "Hi {name}", idempotency_key=key)
    assert again.pk == first.pk and again.repeated and Message.objects.count() == 1 and len(outbox) == 1


# -- saved templates ------------------------------------------------------------------------


def test_a_saved_template_is_copied_and_later_edits_change_nothing(commit, outbox):
    saved = MessageTemplate.objects.create(name="ready", text="Hi {name}, ready in {city}", sender="Shop")
    with commit():
        by_object = d7sms.send_batch([{"to": A, "name": "Ada", "city": "Leeds"}], saved)
        by_name = d7sms.send_batch([{"to": B, "name": "Bo", "city": "York"}], template="ready", sender="Other")
    saved.text = "Changed {name}"
    saved.save()
    assert (by_object.content, by_object.template_name, by_object.sender) == ("Hi {name}, ready in {city}", "ready", "Shop")
    assert stored(by_object)[A].content == "Hi Ada, ready in Leeds"
    assert (stored(by_name)[B].content, stored(by_name)[B].sender) == ("Hi Bo, ready in York", "Other")
    assert [m.content for m in outbox] == ["Hi Ada, ready in Leeds", "Hi Bo, ready in York"]


def test_a_saved_template_for_plain_numbers(commit, outbox):
    MessageTemplate.objects.create(name="plain", text="Code {{A1}}")
    MessageTemplate.objects.create(name="fields", text="Hi {name}")
    with commit():
        d7sms.send_batch([A], template="plain")
    assert outbox[0].content == "Code {A1}"
    with pytest.raises(ValidationError, match="uses {name}"):
        d7sms.send_batch([A], template="fields")
    with pytest.raises(ValidationError, match="no message template named 'nope'"):
        d7sms.send_batch([A], template="nope")


def test_a_saved_template_is_validated():
    bad = MessageTemplate(name="bad", text="Hi {name:>9}", sender="Way too long sender")
    with pytest.raises(ValidationError) as info:
        bad.full_clean()
    assert "format spec" in info.value.message_dict["text"][0] and "sender" in info.value.message_dict


# -- the sendbatch payload ------------------------------------------------------------------


class Recorder(requests.Session):
    """A real HTTP session that also keeps the JSON body of every sendbatch call."""

    bodies = []

    def request(self, method, url, data=None, **kwargs):
        if url.endswith("/secure/sendbatch"):
            Recorder.bodies.append(json.loads(data))
        return super().request(method, url, data=data, **kwargs)


class RecordingBackend(D7Backend):
    def __init__(self):
        from d7sms import conf

        super().__init__(D7Client(conf.get("BASE_URL"), conf.get("USERNAME"), conf.get("PASSWORD"), session=Recorder()))


@pytest.fixture
def wire(d7_settings):
    d7_settings.D7SMS = {
        **d7_settings.D7SMS,
        "BACKEND": "tests.test_personalised.RecordingBackend",
        "SYNC": False,
        "CALLBACK_BASE_URL": "https://127.0.0.1:9",
    }
    Recorder.bodies = []
    return Recorder.bodies


def run_batch(sendout):
    ids = list(sendout.messages.order_by("pk").values_list("pk", flat=True))
    assert sending.send_batch_chunks(sendout.pk, ids, deadline=time.monotonic() + 30) == []


def arrived(sandbox):
    return sorted((m["to"], m["from"], m["content"]) for m in sandbox.accepted())


# The provider's destinations, as valid numbers (the sandbox delivers numbers ending in 1-5).
N1 = ["+447911123411", "+447911123412", "+447911123413"]
N2 = ["+447911123421", "+447911123422", "+447911123423"]
N3 = "+447911123431"


def test_provider_example_1_different_texts_and_senders_in_one_call(wire, sandbox):
    sendout = d7sms.send_batch([
        {"sender": "Brand1", "to": N1, "content": "Message 1 goes to 3 numbers"},
        {"sender": "Brand2", "to": N2, "content": "Message 2 goes to 3 numbers"},
        {"sender": "Brand2", "to": N3, "content": "Message 3 goes to 1 number"},
    ])
    run_batch(sendout)
    assert sandbox.wait_idle(10)
    assert arrived(sandbox) == sorted(
        [(n, "Brand1", "Message 1 goes to 3 numbers") for n in N1]
        + [(n, "Brand2", "Message 2 goes to 3 numbers") for n in N2]
        + [(N3, "Brand2", "Message 3 goes to 1 number")]
    )
    [body] = wire
    assert len(body["messages"]) == 7 and sandbox.stats()["batches"] == 1


def test_provider_example_2_shared_sender_in_globals_each_item_its_own_dlr_url(wire, sandbox):
    sendout = d7sms.send_batch(
        [
            {"sender": "Brand1", "to": N1, "content": "Message 1 goes to 3 numbers"},
            {"to": N2, "content": "Message 2 goes to 3 numbers"},
            {"to": N3, "content": "Message 3 goes to 1 number"},
        ],
        sender="Brand2",
        dlr_level=3,
    )
    run_batch(sendout)
    assert sandbox.wait_idle(10)
    assert arrived(sandbox) == sorted(
        [(n, "Brand1", "Message 1 goes to 3 numbers") for n in N1]
        + [(n, "Brand2", "Message 2 goes to 3 numbers") for n in N2]
        + [(N3, "Brand2", "Message 3 goes to 1 number")]
    )
    [body] = wire
    shared = body["globals"]
    assert shared.pop("content") == "Message 1 goes to 3 numbers"  # the first of the most common texts
    assert shared == {"from": "Brand2", "dlr": "yes", "dlr-level": 3, "dlr-method": "POST"}
    ids = dict(Message.objects.filter(sendout=sendout).values_list("to", "pk"))
    for item in body["messages"]:
        assert item["dlr-url"] == webhook_urls.dlr_url(ids[item["to"]])
        # Only what differs from the globals is in an item, as in the provider's Example 2.
        assert item.get("from") == ("Brand1" if item["to"] in N1 else None)
        assert "content" not in item if item["to"] in N1 else item["content"].startswith("Message")


def test_a_chunk_mixing_gsm_and_ucs2_texts_arrives_as_each_was_written(wire, sandbox):
    sendout = d7sms.send_batch(
        [{"to": A, "name": "Ada"}, {"to": B, "name": "Zoë"}, {"to": C, "name": "Ada"}], "Hi {name}!"
    )
    run_batch(sendout)
    assert sandbox.wait_idle(10)
    got = {m["to"]: m for m in sandbox.accepted()}
    assert got[A]["content"] == got[C]["content"] == "Hi Ada!" and got[A]["coding"] in (None, 0, "0")
    assert got[B]["content"] is None and str(got[B]["coding"]) == "8"
    assert bytes.fromhex(got[B]["hex_content"]).decode("utf-16-be") == "Hi Zoë!"
    [body] = wire
    # Text that not every item has stays in the items: a global "content" would reach the UCS-2
    # item too, which D7 refuses ("content and hex-content cannot be used both").
    assert "content" not in body["globals"] and "coding" not in body["globals"]
    zoe = next(item for item in body["messages"] if item["to"] == B)
    assert set(zoe) >= {"hex_content", "coding"} and "content" not in zoe
    assert [item.get("content") for item in body["messages"] if item["to"] != B] == ["Hi Ada!", "Hi Ada!"]


def test_a_plain_sendout_still_shares_everything_but_number_and_dlr_url(wire, sandbox):
    sendout = d7sms.send_batch([A, B], "Same text", sender="Shop")
    run_batch(sendout)
    [body] = wire
    assert body["globals"]["content"] == "Same text" and body["globals"]["from"] == "Shop"
    assert all(set(item) == {"to", "dlr-url"} for item in body["messages"])


def test_share_keeps_optional_keys_in_their_items():
    items = [{"to": "1", "content": "a", "from": "X"}, {"to": "2", "hex_content": "00e9", "coding": 8, "from": "X"}]
    assert base.share(items) == {"from": "X"}
    assert items == [{"to": "1", "content": "a"}, {"to": "2", "hex_content": "00e9", "coding": 8}]


def test_a_bad_row_after_rows_already_written_leaves_nothing_stored(outbox):
    from d7sms import sql
    from tests.cluster import numbers

    # Rows are written in slices as they are read: the first slice is in the table before the
    # bad row at the end is found, and must be rolled back with the sendout.
    rows = [{"to": n, "name": "x"} for n in numbers(sql._INSERT_SLICE + 1)] + [{"to": A}]
    with pytest.raises(ValidationError) as info:
        d7sms.send_batch(rows, "Hi {name}")
    assert info.value.error_list[0].params == {"row": sql._INSERT_SLICE + 2, "field": "name"}
    assert not Sendout.objects.exists() and not Message.objects.exists()
