"""The compose, preview and confirm steps of a new sendout.

One URL takes three kinds of POST: the compose form (answered with a preview), "back"
(the compose form again, as typed) and "confirm" (the sendout is created). Nothing is
stored before confirm: the preview carries the draft as a signed token (see drafts.py).
Each preview carries a one-time key that the sendout is stored under (unique), so a preview
is confirmed once: another tab, the back button, a repeated or concurrent POST of the same
preview lands on the sendout already made.

An uploaded list (CSV or .xlsx) is read once and kept server-side (uploads.py); a fourth POST,
"columns", reads it and shows the compose form again with its columns as merge fields. A
sendout to an uploaded list is personalised: each row's fields fill the message's
placeholders, and are stored with its message (personalised.py).
"""

import uuid

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from d7sms import conf, encoding, quiet_hours, suppression
from d7sms.admin import drafts, money, personalised, profiles, send_to_me, uploads
from d7sms.admin.balance import balance_reading
from d7sms.admin.compose_forms import WHEN_LATER, WHERE_D7, ComposeForm
from d7sms.admin.recipient_input import ListError, read_pasted
from d7sms.models import ComposeUpload, MessageTemplate

SHOWN_NUMBERS = 10


def compose_view(model_admin, request):
    """Show the compose form, a preview of it, or create the sendout on confirm.

    Schedules are typed and shown in the staff member's zone (:func:`profiles.zone_for`); the
    page is rendered here, inside it.
    """
    if not model_admin.has_send_permission(request):
        raise PermissionDenied
    request.d7sms_zone = profiles.zone_for(request)
    with timezone.override(request.d7sms_zone[0]):
        response = _compose_view(model_admin, request)
        if hasattr(response, "render"):
            response.render()
    return response


def _compose_view(model_admin, request):
    if request.method != "POST":
        return _render_compose(model_admin, request, ComposeForm())
    action = request.POST.get("_action", "preview")
    if action in ("back", "confirm", "test"):
        try:
            fields, numbers, summary = drafts.unpack(request.user, request.POST.get("draft", ""))
        except drafts.DraftError as exc:
            messages.error(request, str(exc))
            return _render_compose(model_admin, request, ComposeForm())
        if action == "back":
            return _render_compose(
                model_admin, request, _refilled(fields), kept=_upload_of(request, summary), draft=request.POST["draft"]
            )
        if action == "test":
            return _test(model_admin, request, fields, numbers, summary)
        return _confirm(model_admin, request, fields, numbers, summary)
    if action == "columns":
        return _read_columns(model_admin, request)
    return _preview(model_admin, request)


def _kept_upload(request):
    """The upload the compose page names (``upload_ref``), or None."""
    token = request.POST.get("upload_ref")
    if not token:
        return None
    try:
        return uploads.find(request.user, token)
    except drafts.DraftError as exc:
        messages.error(request, str(exc))
        return None


def _store_upload(request, form, region):
    """Read the file just uploaded; return the ComposeUpload, or None after adding the error."""
    try:
        return uploads.store(request.user, form.cleaned_data["upload"], region)
    except ListError as exc:
        form.add_error("upload", str(exc))
        return None


def _read_columns(model_admin, request):
    """Read an uploaded list and show the form again with its columns as merge fields."""
    form = ComposeForm(request.POST, request.FILES)
    kept = _kept_upload(request)
    upload = request.FILES.get("upload")
    if upload is None and kept is None:
        return _render_compose(model_admin, request, _unbound(request.POST), upload_error=_("Choose a file to upload."))
    if upload is not None:
        form.is_valid()  # only the upload field and the region matter here
        if "upload" in form.errors or "region" in form.errors:
            return _render_compose(model_admin, request, form, kept=kept)
        kept = _store_upload(request, form, form.cleaned_data.get("region") or None)
        if kept is None:
            return _render_compose(model_admin, request, form)
    return _render_compose(model_admin, request, _unbound(request.POST), kept=kept)


def _unbound(data):
    """An unbound form showing what was posted, without error messages."""
    initial = {k: data.get(k) for k in data if k not in ("csrfmiddlewaretoken", "_action", "upload_ref", "draft")}
    initial["binary"] = bool(data.get("binary"))
    return ComposeForm(initial=initial)


def _preview(model_admin, request):
    form = ComposeForm(request.POST, request.FILES)
    kept_upload = _kept_upload(request)
    if not form.is_valid():
        return _render_compose(model_admin, request, form, kept=kept_upload)
    data = form.cleaned_data
    region = data["region"] or None
    if data["upload"]:
        kept_upload = _store_upload(request, form, region)
        if kept_upload is None:
            return _render_compose(model_admin, request, form)
        return _preview_upload(model_admin, request, form, kept_upload)
    try:
        if data["recipients"].strip():
            collected = read_pasted(data["recipients"], region)
        elif kept_upload is not None:
            # A new preview of the list kept from before: a new draft, confirmed on its own.
            return _preview_upload(model_admin, request, form, kept_upload)
        else:
            form.add_error("recipients", _("Paste the numbers or upload a file."))
            return _render_compose(model_admin, request, form)
    except ListError as exc:
        form.add_error(exc.field, str(exc))
        return _render_compose(model_admin, request, form)
    opted_out = len(suppression.among(collected.numbers))
    summary = {
        "key": uuid.uuid4().hex,
        "source": "",
        # Numbers on the suppression list are counted apart: send_batch leaves them out.
        "valid": len(collected.numbers) - opted_out,
        "suppressed": opted_out,
        "invalid": collected.invalid,
        "duplicates": collected.duplicates,
        "problems": collected.problems,
        "header": collected.header,
        "column": "",
    }
    return _show_preview(model_admin, request, form.draft_fields(), collected.numbers, summary)


def _preview_upload(model_admin, request, form, kept):
    """Check every row of an uploaded list and show the personalised preview."""
    fields = form.draft_fields()
    try:
        plan = personalised.plan_for(kept, fields)
    except ListError as exc:
        form.add_error(exc.field, str(exc))
        return _render_compose(model_admin, request, form, kept=kept)
    quiet = quiet_plan(fields)
    checked = personalised.check(kept, plan, on_number=quiet.release if quiet else None)
    summary = {
        "key": uuid.uuid4().hex,
        "source": kept.name,
        "upload": kept.pk,
        "header": kept.header,
        "column": plan.columns[plan.phone],
        "sender_column": plan.columns[plan.sender] if plan.sender is not None else "",
        "personalised": True,
        **checked.summary(),
    }
    return _show_preview(model_admin, request, fields, [], summary, checked=checked, plan=plan, quiet=quiet)


def _upload_of(request, summary):
    """The upload a draft's summary names (the draft is signed for this user), or None."""
    if not summary.get("upload"):
        return None
    return ComposeUpload.objects.filter(pk=summary["upload"], created_by=request.user).first()


def _show_preview(model_admin, request, fields, numbers, summary, *, checked=None, plan=None, quiet=None):
    """Render the preview; ``numbers`` is any iterable of the valid E.164 numbers (empty for an
    uploaded list, whose rows ``checked`` describes, and ``quiet`` their quiet hours plan)."""
    token = drafts.pack(request.user, fields, numbers, summary)
    if checked is None:
        quiet = quiet_plan(fields, numbers)
    if summary.get("personalised"):
        first = checked.first_numbers
        parts = max(checked.parts, default=0)
        total_parts = summary["total_parts"]
    else:
        candidates = []
        for number in numbers:
            if len(candidates) == SHOWN_NUMBERS + min(summary.get("suppressed", 0), 100):
                break
            candidates.append(number)
        gone = suppression.among(candidates)
        first = [n for n in candidates if n not in gone][:SHOWN_NUMBERS]
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
        "text_info": None if fields["binary"] or checked else encoding.analyse(_sent_text(fields)),
        "schedule_at": parse_datetime(fields["schedule_at"]) if fields["when"] == WHEN_LATER else None,
        "remote": fields["where"] == WHERE_D7,
        "region_label": dict(ComposeForm().fields["region"].choices).get(fields["region"], ""),
        "balance": reading,
        "balance_error": error,
        "cost": format(cost.normalize(), "f") if cost is not None else None,
        "currency": money.currency(),
        "sufficient": sufficient,
        "draft": token,
        "compose_url": reverse(f"{model_admin.admin_site.name}:d7sms_sendout_compose"),
        **profiles.compose_context(request, model_admin.admin_site.name),
        "quiet": quiet,
        "quiet_tz": timezone.get_current_timezone_name(),
    }
    if checked is None and not fields["binary"]:
        context["literal_placeholders"] = personalised.placeholders_in(fields["content"])
    if checked is not None:
        context.update(personalised.preview_context(checked, plan, fields, cost_of=lambda n: estimate(None, n)[0]))
    return TemplateResponse(request, "admin/d7sms/sendout/preview.html", context)


def _confirm(model_admin, request, fields, numbers, summary):
    form = ComposeForm(data=fields)
    draft = request.POST["draft"]
    kept = _upload_of(request, summary)
    if not form.is_valid():
        # Typically a schedule time that passed while the preview was open.
        return _render_compose(model_admin, request, form, kept=kept, draft=draft)
    if summary.get("personalised"):
        if kept is None:
            messages.error(request, _("The uploaded list has expired; upload the file again."))
            return _render_compose(model_admin, request, form)
        total_parts = summary["total_parts"]
    else:
        total_parts = message_parts(fields) * summary["valid"]
    if not summary["valid"]:
        messages.error(request, _("There is no valid number to send to."))
        return _render_compose(model_admin, request, form, kept=kept, draft=draft)
    reading, _error = balance_reading()
    if estimate(reading, total_parts)[1] is False and not request.POST.get("accept_balance"):
        messages.error(request, _("The balance does not cover this sendout; tick the box to send anyway."))
        if kept is not None:
            plan = personalised.plan_for(kept, fields)
            quiet = quiet_plan(fields)
            checked = personalised.check(kept, plan, on_number=quiet.release if quiet else None)
            return _show_preview(model_admin, request, fields, [], summary, checked=checked, plan=plan, quiet=quiet)
        return _show_preview(model_admin, request, fields, numbers, summary)
    from d7sms import api

    data = form.cleaned_data
    if data["binary"]:
        content = {"hex_content": data["hex_content"], "coding": data["coding"]}
    else:
        content = {"content": data["content"], "opt_out_footer": data["opt_out_footer"].strip()}
        saved = data.get("template")
        if saved is not None and saved.text == data["content"]:
            content = {"template": saved, "opt_out_footer": content["opt_out_footer"]}
    recipients = numbers
    if kept is not None and summary.get("personalised"):
        recipients = personalised.recipients(kept, personalised.plan_for(kept, fields))
    try:
        sendout = api.send_batch(
            recipients,
            **content,
            sender=data["sender"],
            name=data["name"],
            schedule_at=data["schedule_at"] if data["when"] == WHEN_LATER else None,
            remote_schedule=data["when"] == WHEN_LATER and data["where"] == WHERE_D7,
            quiet_hours=data["quiet_hours"] or False,
            mode=data["mode"],
            dlr_level=data["dlr_level"],
            user=request.user,
            duplicates_removed=summary["duplicates"],
            idempotency_key=summary.get("key"),
        )
    except ValidationError as exc:
        for error in exc.messages[:20]:
            messages.error(request, error)
        return _render_compose(model_admin, request, form, kept=kept, draft=draft)
    change_url = reverse(f"{model_admin.admin_site.name}:d7sms_sendout_change", args=[sendout.pk])
    if sendout.repeated:
        messages.warning(
            request,
            _("This preview was already confirmed (in another tab, or by an earlier click): “%(sendout)s” "
              "is that sendout, and nothing was sent again.") % {"sendout": sendout},
        )
        return HttpResponseRedirect(change_url)
    model_admin.log_addition(request, sendout, [{"added": {}}])
    n = sendout.recipient_count
    if sendout.schedule_at:
        messages.success(request, _("“%(sendout)s” is scheduled: %(n)d messages.") % {"sendout": sendout, "n": n})
    else:
        messages.success(request, _("“%(sendout)s” is being sent: %(n)d messages.") % {"sendout": sendout, "n": n})
    return HttpResponseRedirect(change_url)


def _test(model_admin, request, fields, numbers, summary):
    """Send one message of the draft to the staff member (send_to_me.py); show the preview again."""
    kept = _upload_of(request, summary)
    plan = checked = None
    if summary.get("personalised"):
        if kept is None:
            messages.error(request, _("The uploaded list has expired; upload the file again."))
            return _render_compose(model_admin, request, _refilled(fields))
        plan = personalised.plan_for(kept, fields)
        checked = personalised.check(kept, plan)
    send_to_me.send(request, fields, kept, plan)
    return _show_preview(model_admin, request, fields, numbers, summary, checked=checked, plan=plan)


def _refilled(fields):
    """An unbound form showing what was typed, without error messages."""
    initial = dict(fields)
    initial["schedule_at"] = parse_datetime(fields["schedule_at"]) if fields["schedule_at"] else None
    return ComposeForm(initial=initial)


def _render_compose(model_admin, request, form, *, kept=None, draft="", upload_error=""):
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": _("New sendout"),
        "form": form,
        "media": model_admin.media + form.media,
        "draft": draft,
        "upload_error": upload_error,
        "gsm7_sizes": conf.get("GSM7_PART_SIZES"),
        "ucs2_sizes": conf.get("UCS2_PART_SIZES"),
        "gsm7_alphabet": gsm7_alphabet(),
        "saved_templates": list(MessageTemplate.objects.order_by("name").values("name", "text", "sender")),
        "compose_url": reverse(f"{model_admin.admin_site.name}:d7sms_sendout_compose"),
        **profiles.compose_context(request, model_admin.admin_site.name),
    }
    zone, source = context["zone"], context["zone_source"]
    form.fields["schedule_at"].help_text = profiles.zone_help(zone, source)
    if kept is not None:
        context.update(personalised.compose_context(request, form, kept))
    return TemplateResponse(request, "admin/d7sms/sendout/compose.html", context)


def render_compose_page(model_admin, request, form, *, kept=None):
    """The compose page showing ``form`` (unbound, prefilled) and the upload ``kept``, if any."""
    request.d7sms_zone = profiles.zone_for(request)
    with timezone.override(request.d7sms_zone[0]):
        return _render_compose(model_admin, request, form, kept=kept).render()


def quiet_plan(fields, numbers=()):
    """The quiet hours plan of a draft with ``numbers`` counted, or None when it has no window."""
    if not fields.get("send_from") or not fields.get("send_until"):
        return None
    window = quiet_hours.parse((fields["send_from"], fields["send_until"]))
    at = parse_datetime(fields["schedule_at"]) if fields["when"] == WHEN_LATER and fields["schedule_at"] else None
    return quiet_hours.plan(numbers, window, at or timezone.now())


def message_parts(fields):
    """Parts each message of the draft takes, counted as d7sms.api counts them when storing."""
    if not fields["binary"]:
        return encoding.analyse(_sent_text(fields)).parts
    return encoding.binary_parts(bytes.fromhex(fields["hex_content"]), fields["coding"])


def _sent_text(fields):
    """The draft's text as each message carries it: with its opt-out footer."""
    return suppression.with_footer(fields["content"], fields.get("opt_out_footer", ""))


def estimate(reading, total_parts):
    """``(cost, sufficient)``: the cost in the balance's unit when the price is known, and
    whether the balance covers it: True, False, or None when it cannot be told."""
    cost = money.cost(total_parts)
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
