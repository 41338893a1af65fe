"""The compose, preview and confirm steps of a new sendout.

One URL takes three kinds of POST: the compose form (answered with a preview), "back"
(the compose form again, as typed) and "confirm" (the sendout is created). Nothing is
stored before confirm: the preview carries the draft as a signed token (see drafts.py).
Each preview carries a one-time key that the sendout is stored under (unique), so a preview
is confirmed once: another tab, the back button, a repeated or concurrent POST of the same
preview lands on the sendout already made.
"""

import uuid
from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from d7sms import conf, encoding
from d7sms.admin import drafts
from d7sms.admin.balance import balance_reading
from d7sms.admin.compose_forms import WHEN_LATER, WHERE_D7, ComposeForm
from d7sms.admin.recipient_input import ListError, read_csv, read_pasted

SHOWN_NUMBERS = 10


def compose_view(model_admin, request):
    """Show the compose form, a preview of it, or create the sendout on confirm."""
    if not model_admin.has_send_permission(request):
        raise PermissionDenied
    if request.method != "POST":
        return _render_compose(model_admin, request, ComposeForm())
    action = request.POST.get("_action", "preview")
    if action in ("back", "confirm"):
        try:
            fields, numbers, summary = drafts.unpack(request.user, request.POST.get("draft", ""))
        except drafts.DraftError as exc:
            messages.error(request, str(exc))
            return _render_compose(model_admin, request, ComposeForm())
        if action == "back":
            return _render_compose(model_admin, request, _refilled(fields), summary=summary, draft=request.POST["draft"])
        return _confirm(model_admin, request, fields, numbers, summary)
    return _preview(model_admin, request)


def _preview(model_admin, request):
    form = ComposeForm(request.POST, request.FILES)
    kept = None
    if request.POST.get("draft"):
        try:
            kept = drafts.unpack(request.user, request.POST["draft"])
        except drafts.DraftError:
            kept = None
    if not form.is_valid():
        return _render_compose(model_admin, request, form, **_kept_context(request, kept))
    data = form.cleaned_data
    region = data["region"] or None
    try:
        if data["upload"]:
            collected = read_csv(data["upload"], data["column"], region)
            source = data["upload"].name
        elif data["recipients"].strip():
            collected = read_pasted(data["recipients"], region)
            source = ""
        elif kept is not None and kept[2].get("source"):
            # A new preview of the same file: a new draft, confirmed on its own.
            return _show_preview(model_admin, request, form.draft_fields(), kept[1], {**kept[2], "key": uuid.uuid4().hex})
        else:
            form.add_error("recipients", _("Paste the numbers or upload a CSV file."))
            return _render_compose(model_admin, request, form)
    except ListError as exc:
        form.add_error(exc.field, str(exc))
        return _render_compose(model_admin, request, form)
    summary = {
        "key": uuid.uuid4().hex,
        "source": source,
        "valid": len(collected.numbers),
        "invalid": collected.invalid,
        "duplicates": collected.duplicates,
        "problems": collected.problems,
        "header": collected.header,
        "column": collected.column if data["upload"] else "",
    }
    return _show_preview(model_admin, request, form.draft_fields(), collected.numbers, summary)


def _show_preview(model_admin, request, fields, numbers, summary):
    """Render the preview; ``numbers`` is any iterable of the valid E.164 numbers."""
    token = drafts.pack(request.user, fields, numbers, summary)
    first = []
    for number in numbers:
        if len(first) == SHOWN_NUMBERS:
            break
        first.append(number)
    parts = message_parts(fields)
    total_parts = parts * summary["valid"]
    reading, error = balance_reading()
    cost, sufficient = estimate(reading, total_parts)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": _("Check the sendout"),
        "fields": fields,
        "summary": summary,
        "first_numbers": first,
        "more_numbers": summary["valid"] - len(first),
        "parts": parts,
        "total_parts": total_parts,
        "text_info": None if fields["binary"] else encoding.analyse(fields["content"]),
        "schedule_at": parse_datetime(fields["schedule_at"]) if fields["when"] == WHEN_LATER else None,
        "remote": fields["where"] == WHERE_D7,
        "region_label": dict(ComposeForm().fields["region"].choices).get(fields["region"], ""),
        "balance": reading,
        "balance_error": error,
        "cost": format(cost.normalize(), "f") if cost is not None else None,
        "sufficient": sufficient,
        "draft": token,
        "compose_url": reverse(f"{model_admin.admin_site.name}:d7sms_sendout_compose"),
    }
    return TemplateResponse(request, "admin/d7sms/sendout/preview.html", context)


def _confirm(model_admin, request, fields, numbers, summary):
    form = ComposeForm(data=fields)
    if not form.is_valid():
        # Typically a schedule time that passed while the preview was open.
        return _render_compose(model_admin, request, form, summary=summary, draft=request.POST["draft"])
    if not numbers:
        messages.error(request, _("There is no valid number to send to."))
        return _render_compose(model_admin, request, form, summary=summary, draft=request.POST["draft"])
    reading, _error = balance_reading()
    if estimate(reading, message_parts(fields) * len(numbers))[1] is False and not request.POST.get("accept_balance"):
        messages.error(request, _("The balance does not cover this sendout; tick the box to send anyway."))
        return _show_preview(model_admin, request, fields, numbers, summary)
    from d7sms import api

    data = form.cleaned_data
    content = {"hex_content": data["hex_content"], "coding": data["coding"]} if data["binary"] else {"content": data["content"]}
    try:
        sendout = api.send_batch(
            numbers,
            **content,
            sender=data["sender"],
            name=data["name"],
            schedule_at=data["schedule_at"] if data["when"] == WHEN_LATER else None,
            remote_schedule=data["when"] == WHEN_LATER and data["where"] == WHERE_D7,
            mode=data["mode"],
            dlr_level=data["dlr_level"],
            user=request.user,
            duplicates_removed=summary["duplicates"],
            idempotency_key=summary.get("key"),
        )
    except ValidationError as exc:
        for error in exc.messages:
            messages.error(request, error)
        return _render_compose(model_admin, request, form, summary=summary, draft=request.POST["draft"])
    change_url = reverse(f"{model_admin.admin_site.name}:d7sms_sendout_change", args=[sendout.pk])
    if sendout.repeated:
        messages.warning(
            request,
            _("This preview was already confirmed (in another tab, or by an earlier click): “%(sendout)s” "
              "is that sendout, and nothing was sent again.") % {"sendout": sendout},
        )
        return HttpResponseRedirect(change_url)
    model_admin.log_addition(request, sendout, [{"added": {}}])
    if sendout.schedule_at:
        messages.success(request, _("“%(sendout)s” is scheduled: %(n)d messages.") % {"sendout": sendout, "n": len(numbers)})
    else:
        messages.success(request, _("“%(sendout)s” is being sent: %(n)d messages.") % {"sendout": sendout, "n": len(numbers)})
    return HttpResponseRedirect(change_url)


def _refilled(fields):
    """An unbound form showing what was typed, without error messages."""
    initial = dict(fields)
    initial["schedule_at"] = parse_datetime(fields["schedule_at"]) if fields["schedule_at"] else None
    return ComposeForm(initial=initial)


def _kept_context(request, kept):
    if kept is None or not kept[2].get("source"):
        return {}
    return {"summary": kept[2], "draft": request.POST["draft"]}


def _render_compose(model_admin, request, form, *, summary=None, draft=""):
    kept_file = summary if summary and summary.get("source") else None
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": _("New sendout"),
        "form": form,
        "media": model_admin.media + form.media,
        "kept_file": kept_file,
        "draft": draft if kept_file else "",
        "gsm7_sizes": conf.get("GSM7_PART_SIZES"),
        "ucs2_sizes": conf.get("UCS2_PART_SIZES"),
        "gsm7_alphabet": gsm7_alphabet(),
    }
    return TemplateResponse(request, "admin/d7sms/sendout/compose.html", context)


def message_parts(fields):
    """Parts each message of the draft takes, counted as d7sms.api counts them when storing."""
    if not fields["binary"]:
        return encoding.analyse(fields["content"]).parts
    return encoding.binary_parts(bytes.fromhex(fields["hex_content"]), fields["coding"])


def price_per_part():
    """The configured price of one part (``D7SMS["PRICE_PER_PART"]``), or None when unknown."""
    value = conf.get("PRICE_PER_PART")
    return Decimal(str(value)) if value is not None else None


def estimate(reading, total_parts):
    """``(cost, sufficient)``: the cost in the balance's unit when the price is known, and
    whether the balance covers it: True, False, or None when it cannot be told."""
    price = price_per_part()
    cost = price * total_parts if price is not None else None
    if reading is None:
        return cost, None
    if reading.sms_count is not None:
        return cost, reading.sms_count >= total_parts
    if reading.balance is None:
        return cost, True  # D7 reports no limit
    if cost is not None:
        return cost, reading.balance >= cost
    return cost, False if reading.balance <= 0 else None


_ALPHABET = None


def gsm7_alphabet():
    """``(basic, extension)`` characters of GSM-7, for the live counter in the browser.

    Derived from :mod:`d7sms.encoding` so the counter and the server never disagree.
    """
    global _ALPHABET
    if _ALPHABET is None:
        basic, extension = [], []
        for code in range(0x2100):
            char = chr(code)
            if encoding.is_gsm7(char):
                (extension if encoding.analyse(char, gsm7_sizes=(160, 153)).units == 2 else basic).append(char)
        _ALPHABET = ("".join(basic), "".join(extension))
    return _ALPHABET
