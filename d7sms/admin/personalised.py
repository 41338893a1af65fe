"""The preview of a sendout to an uploaded list: every row checked and its message rendered.

:func:`check` walks the rows once and keeps only what the preview shows: counts, the parts
distribution, a few rendered messages (the first ones, the longest, the first UCS-2 one) and
the first rows left out with their line and why. :func:`recipients` walks them again on
confirm and yields exactly the rows the preview counted, as :class:`~d7sms.merge.Recipient`
(the upload cannot change in between, and the rendering is the same).
"""

from collections import Counter
from dataclasses import dataclass, field

from d7sms import encoding, merge, suppression
from d7sms.admin import uploads
from d7sms.admin.recipient_input import ListError
from d7sms.recipients import SENDER_RULE, InvalidNumber, is_valid_sender, normalise

SHOWN_PROBLEMS = 100
FIRST_SAMPLES = 3


@dataclass
class Checked:
    """What the preview of an uploaded list shows."""

    valid: int = 0
    suppressed: int = 0
    invalid: int = 0
    duplicates: int = 0
    problems: list = field(default_factory=list)  # (line, value, reason)
    parts: Counter = field(default_factory=Counter)  # parts -> recipients
    ucs2: int = 0
    samples: list = field(default_factory=list)
    first_numbers: list = field(default_factory=list)

    @property
    def total_parts(self):
        return sum(parts * n for parts, n in self.parts.items())

    def summary(self):
        """The JSON-able figures the draft carries."""
        return {
            "valid": self.valid,
            "suppressed": self.suppressed,
            "invalid": self.invalid,
            "duplicates": self.duplicates,
            "problems": self.problems,
            "distribution": sorted(self.parts.items()),
            "total_parts": self.total_parts,
            "ucs2": self.ucs2,
        }


@dataclass
class Plan:
    """How rows become messages: the template (None for binary content), the phone and sender
    columns (indexes; sender may be None) and the region of national numbers."""

    columns: list
    template: merge.Template | None
    phone: int
    sender: int | None
    region: str | None
    binary_parts: int = 0
    footer: str = ""


def plan_for(kept, fields):
    """The :class:`Plan` for sending ``kept`` as the compose ``fields`` say, or ``ListError``
    (its ``field`` attribute names the form field at fault)."""
    names = [c["name"] for c in kept.columns]
    phone = column_index(names, fields.get("column", ""), "column") if fields.get("column") else names.index(uploads.phone_column(kept))
    sender = column_index(names, fields["sender_column"], "sender_column") if fields.get("sender_column") else None
    if sender == phone:
        raise _error("The sender column cannot be the phone column.", "sender_column")
    template, binary_parts = None, 0
    if fields.get("binary"):
        binary_parts = encoding.binary_parts(bytes.fromhex(fields["hex_content"]), fields["coding"])
    else:
        try:
            template = merge.compile_template(fields["content"])
        except merge.MergeError as exc:
            raise _error(str(exc), "content") from None
        unknown = [f for f in template.fields if f not in names]
        if unknown:
            raise _error(
                f"The file has no column {unknown[0]!r} for {{{unknown[0]}}}; its columns are: {', '.join(names)}.",
                "content",
            )
    footer = "" if fields.get("binary") else fields.get("opt_out_footer", "")
    return Plan(names, template, phone, sender, fields.get("region") or None, binary_parts, footer)


def column_index(names, column, form_field):
    """The index of ``column`` (a 1-based number or a name, any case) among ``names``."""
    column = str(column).strip()
    if column.isdigit():
        index = int(column) - 1
        if not 0 <= index < len(names):
            raise _error(f"There is no column {column}: the file has {len(names)}.", form_field)
        return index
    folded = [n.casefold() for n in names]
    if column.casefold() in folded:
        return folded.index(column.casefold())
    raise _error(f"The file has no column named {column!r}; its columns are: {', '.join(names)}.", form_field)


def _error(text, form_field):
    error = ListError(text)
    error.field = form_field
    return error


def _walk(kept, plan):
    """Yield ``(line, number, sender, text, info, cells, problem)`` for every non-empty row;
    ``problem`` is None for a row that will be sent, else ``(value, reason)``."""
    names = plan.columns
    seen = set()
    senders_ok = set()
    for line, cells in uploads.rows(kept):
        if not any(cells):
            continue
        phone = cells[plan.phone]
        if not phone:
            yield line, None, None, None, None, cells, (_row_text(cells), "no phone number")
            continue
        try:
            number = normalise(phone, plan.region)
        except InvalidNumber as exc:
            yield line, None, None, None, None, cells, (phone, str(exc))
            continue
        if number in seen:
            yield line, number, None, None, None, cells, "duplicate"
            continue
        sender = cells[plan.sender] if plan.sender is not None else ""
        if sender and sender not in senders_ok:
            if not is_valid_sender(sender):
                yield line, None, None, None, None, cells, (sender, f"invalid sender: {SENDER_RULE}")
                continue
            senders_ok.add(sender)
        text = info = None
        if plan.template is not None:
            try:
                text = suppression.with_footer(plan.template.render(dict(zip(names, cells))), plan.footer)
            except merge.MergeError as exc:
                yield line, None, None, None, None, cells, (_row_text(cells), f"no value for {{{exc.field}}}")
                continue
            info = encoding.analyse(text)
        # Only a row that is sent takes its number: a later row may then still be sent to it.
        seen.add(number)
        yield line, number, sender, text, info, cells, None


def check(kept, plan, on_number=None):
    """Check every row of ``kept`` (a ComposeUpload) as :func:`recipients` will send them;
    ``on_number`` (if given) is called with the number of each row that will be sent."""
    out = Checked()
    longest = None
    parts_of = {}  # number -> parts, to take out the numbers on the suppression list at the end
    for line, number, sender, text, info, _cells, problem in _walk(kept, plan):
        if problem == "duplicate":
            out.duplicates += 1
            continue
        if problem is not None:
            out.invalid += 1
            if len(out.problems) < SHOWN_PROBLEMS:
                out.problems.append((line, problem[0][:60], problem[1]))
            continue
        out.valid += 1
        if on_number is not None:
            on_number(number)
        if len(out.first_numbers) < 10:
            out.first_numbers.append(number)
        parts = info.parts if info is not None else plan.binary_parts
        out.parts[parts] += 1
        parts_of[number] = parts
        if info is None:
            continue
        sample = {"line": line, "to": number, "sender": sender, "text": text, "parts": info.parts,
                  "ucs2": info.coding == encoding.UCS2, "units": info.units, "notes": []}
        if len(out.samples) < FIRST_SAMPLES:
            out.samples.append(sample)
        if info.coding == encoding.UCS2:
            out.ucs2 += 1
            if out.ucs2 == 1:
                sample["notes"].append("first in UCS-2")
                if sample not in out.samples:
                    out.samples.append(sample)
        if longest is None or (info.parts, info.units) > (longest["parts"], longest["units"]):
            longest = sample
    # send_batch leaves these out when it stores the sendout.
    gone = suppression.among(parts_of)
    for number in gone:
        out.parts[parts_of[number]] -= 1
    out.parts = +out.parts  # drop the counts that fell to nothing
    out.valid -= len(gone)
    out.suppressed = len(gone)
    out.first_numbers = [n for n in out.first_numbers if n not in gone]
    if longest is not None:
        longest["notes"].insert(0, "longest")
        if longest not in out.samples:
            out.samples.append(longest)
    out.samples.sort(key=lambda s: s["line"])
    return out


def recipients(kept, plan):
    """Yield a :class:`~d7sms.merge.Recipient` for each row :func:`check` counted as valid:
    its number, every column as a field, and its sender when the sender column has one."""
    names = plan.columns
    for _line, number, sender, _text, _info, cells, problem in _walk(kept, plan):
        if problem is None:
            yield merge.Recipient(number, dict(zip(names, cells)), sender=sender or None)


def preview_context(checked, plan, fields, *, cost_of):
    """What the preview of an uploaded list adds: samples, the parts distribution, warnings."""
    distribution = [
        {"parts": parts, "recipients": n, "cost": cost_of(parts * n)} for parts, n in sorted(checked.parts.items())
    ]
    widest = max((row["recipients"] for row in distribution), default=0)
    for row in distribution:
        row["percent"] = round(100 * row["recipients"] / widest) if widest else 0
    names = merge.literal_lookalikes(plan.template, plan.columns) if plan.template else []
    lookalikes = [{"literal": "{{" + n + "}}", "shown": "{" + n + "}"} for n in names]
    return {
        "personalised": True,
        "samples": checked.samples,
        "distribution": distribution,
        "ucs2_count": checked.ucs2,
        "lookalikes": lookalikes,
        "merge_fields": plan.template.fields if plan.template else (),
    }


def compose_context(request, form, kept):
    """The kept upload on the compose page: its columns as merge fields, phone and sender columns."""
    value = form["column"].value() if form.is_bound else form.initial.get("column")
    phone = value or uploads.phone_column(kept)
    sender = (form["sender_column"].value() if form.is_bound else form.initial.get("sender_column")) or ""
    columns = [{**c, "referable": merge.referable(c["name"])} for c in kept.columns]
    return {
        "kept_upload": kept,
        "upload_ref": uploads.reference(request.user, kept),
        "upload_columns": columns,
        "phone_column": phone,
        "sender_column": sender,
        "counter_rows": {"columns": [c["name"] for c in columns], "rows": kept.samples},
    }


def placeholders_in(text):
    """The ``{field}`` placeholders in ``text`` (none when it is not a valid template): pasted
    numbers have no fields, so such a text would go out with its braces."""
    try:
        return ["{" + name + "}" for name in merge.compile_template(text).fields]
    except merge.MergeError:
        return []


def _row_text(cells):
    return ", ".join(c for c in cells if c)
