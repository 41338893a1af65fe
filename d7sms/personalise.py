"""Personalised sendouts: one message per recipient, each with its own text, coding and parts.

:func:`prepare` turns recipients given as mappings (or :class:`~d7sms.merge.Recipient`) into the
rows of their messages, or raises one ``ValidationError`` listing every problem by row (1-based)
and field, so that nothing is stored unless every recipient can be sent to.

In a mapping, ``to`` (a number, or a list of numbers that share the row), ``content`` (the
row's own template) and ``sender`` have their meaning; every other key is a field, stored on
the row's messages. A template's placeholders may name any key of the mapping.
"""

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

from d7sms import merge, recipients, validation
from d7sms.recipients import InvalidNumber, normalise

#: Keys of a recipient mapping that are not fields.
SPECIAL = frozenset({"to", "content", "sender"})
#: Problems listed in one ValidationError at most; the rest are counted.
SHOWN_PROBLEMS = 100
#: The order of the values in each row of :attr:`Prepared.rows`.
ROW_FIELDS = ("to", "sender", "content", "hex_content", "coding", "parts", "fields")


def is_row(item):
    """True when ``item`` is a personalised recipient rather than a plain number."""
    return isinstance(item, (Mapping, merge.Recipient))


@dataclass
class Prepared:
    """What the rows of a personalised sendout came to: counts, the fields seen, and (after
    :func:`prepare`) the ``rows`` themselves, as in ROW_FIELDS."""

    rows: list = field(default_factory=list)
    columns: list = field(default_factory=list)
    count: int = 0
    duplicates: int = 0
    max_parts: int = 0
    total_parts: int = 0
    problems: list = field(default_factory=list)
    more: int = 0

    def check(self):
        """Raise one ``ValidationError`` listing the problems found, if any."""
        problems = list(self.problems)
        if self.more:
            problems.append(ValidationError(f"…and {self.more} more problems.", code="more", params={"count": self.more}))
        if problems:
            raise ValidationError(problems)


def template_or_error(text, where="content"):
    """The compiled template of ``text``, or ``ValidationError`` (code ``template``)."""
    try:
        return merge.compile_template(text)
    except merge.MergeError as exc:
        raise ValidationError(f"{where}: {exc}", code="template", params={"field": exc.field}) from None


def prepare(items, *, template, shared_content, sender, footer=""):
    """Validate and render ``items`` (mappings or Recipients, read once); return :class:`Prepared`
    with every row, or raise ``ValidationError`` listing the problems (see :func:`each_row`)."""
    out = Prepared()
    out.rows = list(
        each_row(items, template=template, shared_content=shared_content, sender=sender, out=out, footer=footer)
    )
    out.check()
    return out


def each_row(items, *, template, shared_content, sender, out, footer=""):
    """Yield the row of each message of ``items`` that can be sent, as in ROW_FIELDS, and count
    into ``out`` (a :class:`Prepared`) what they come to and every problem (see ``out.check()``).

    ``template`` is the compiled sendout template (or None), ``shared_content`` the
    ``(content, hex_content, coding, parts)`` every message without a text of its own gets
    (binary content, or None), ``sender`` the validated sendout sender, ``footer`` the opt-out
    footer put on its own line after each rendered text (counted in its parts). Repeated numbers are
    sent once (the first row wins) and counted. Rows are yielded as they are read, so that a
    caller can store them in slices and roll back if ``out.check()`` then fails.
    """
    seen, senders_ok, own_templates = set(), {sender}, {}
    columns = {}
    last_keys = None

    def problem(row, text, code, field_name=""):
        if len(out.problems) < SHOWN_PROBLEMS:
            params = {"row": row, "field": field_name}
            label = f"Row {row}{', ' + field_name if field_name else ''}"
            out.problems.append(ValidationError(f"{label}: {text}", code=code, params=params))
        else:
            out.more += 1

    for row, item in enumerate(items, start=1):
        if isinstance(item, merge.Recipient):
            to, own, row_sender, values = item.to, item.content, item.sender, item.fields
            special = ()
        elif isinstance(item, Mapping):
            to, own, row_sender, values = item.get("to"), item.get("content"), item.get("sender"), item
            special = SPECIAL
        else:
            problem(row, f"{item!r} is a plain number among recipients given as mappings; give each as a mapping", "mixed")
            continue
        numbers = _numbers(to, row, problem)
        if numbers is None:
            continue
        # The row's text.
        if own not in (None, ""):
            tpl = own_templates.get(own)
            if tpl is None:
                try:
                    tpl = own_templates[own] = merge.compile_template(own)
                except merge.MergeError as exc:
                    problem(row, str(exc), "template", "content")
                    continue
        else:
            tpl = template
        if tpl is None and shared_content is None:
            problem(row, "no content: give content to send_batch() or a 'content' in the row", "content", "content")
            continue
        if tpl is not None:
            try:
                text = tpl.render(values)
            except merge.MergeError as exc:
                problem(row, str(exc), "missing_field", exc.field)
                continue
            text = validation.with_footer(text, footer)
            try:
                content = validation.content(text, None, None)
            except ValidationError as exc:
                problem(row, exc.messages[0], "content", "content")
                continue
        else:
            content = shared_content
        # The row's sender.
        if row_sender in (None, ""):
            row_sender = sender
        elif row_sender not in senders_ok:
            if not recipients.is_valid_sender(row_sender):
                problem(row, f"invalid sender {row_sender!r}: {recipients.SENDER_RULE}", "sender", "sender")
                continue
            senders_ok.add(row_sender)
        # Built once per row, in one pass: 100,000 of them are held until they are stored.
        stored = {k: v if type(v) is str else _jsonable(v) for k, v in values.items() if k not in special}
        keys = stored.keys()
        if keys != last_keys:
            for key in keys:
                columns.setdefault(key, None)
            last_keys = keys
        text, hex_text, coding, parts = content
        for number in numbers:
            if number in seen:
                out.duplicates += 1
                continue
            seen.add(number)
            out.count += 1
            out.total_parts += parts
            if parts > out.max_parts:
                out.max_parts = parts
            yield number, row_sender, text, hex_text, coding, parts, stored
    out.columns = list(columns)


def _numbers(to, row, problem):
    """The E.164 numbers of one row's ``to`` (one, or a list), or None after reporting a problem."""
    values = list(to) if isinstance(to, (list, tuple)) else [to]
    if not values or any(merge.is_missing(v) for v in values):
        problem(row, "no number ('to')", "invalid_number", "to")
        return None
    numbers = []
    for value in values:
        try:
            numbers.append(normalise(value))
        except InvalidNumber as exc:
            problem(row, f"invalid number {str(value)!r}: {exc}", "invalid_number", "to")
            return None
    return numbers


def _jsonable(value):
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)
