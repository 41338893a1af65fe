"""The review of messages whose sending outcome is unknown, once D7 has had time to report.

A message becomes ``unknown`` when the call that carried it had no usable answer. D7's later
reports and batch callbacks move it on by themselves; after UNKNOWN_QUIET_PERIOD the ones D7
still never mentioned (no D7 id, no report, no callback: "no sign of life") most likely never
left, and staff may send those again in one audited action that is safe to repeat (each message
is sent again at most once, whoever else presses the button).
"""

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from d7sms import conf
from d7sms.models import BatchCallback, DeliveryReport, Message, MessageStatus

SHOWN = 50
#: error_code of a message whose call had no usable answer (kept when D7 reports on it later).
OUTCOME_UNKNOWN = "outcome_unknown"


def _heard_of():
    """Messages D7 has shown a sign of life for: a D7 id, a report or a callback."""
    return (
        Q(d7_message_id__isnull=False)
        | Q(Exists(DeliveryReport.objects.filter(message=OuterRef("pk"))))
        | Q(Exists(BatchCallback.objects.filter(message=OuterRef("pk"))))
    )


def groups(now=None, queryset=None):
    """``(silent, waiting, reported)`` querysets of the messages in ``queryset`` (default: all):
    unknown with no sign of life after the quiet period; unknown still within it; and messages
    D7 reported on after their outcome was unknown."""
    now = now or timezone.now()
    queryset = Message.objects.all() if queryset is None else queryset
    quiet_from = now - timedelta(seconds=conf.get("UNKNOWN_QUIET_PERIOD"))
    unknown = queryset.filter(status=MessageStatus.UNKNOWN, resend_token__isnull=True)
    silent = unknown.filter(claimed_at__lt=quiet_from).exclude(_heard_of())
    waiting = unknown.filter(Q(claimed_at__gte=quiet_from) | Q(claimed_at__isnull=True)).exclude(_heard_of())
    reported = queryset.filter(error_code=OUTCOME_UNKNOWN).filter(
        ~Q(status=MessageStatus.UNKNOWN) | _heard_of()
    )
    return silent, waiting, reported


def unknown_view(model_admin, request):
    """GET: the three groups. POST: send again every message with no sign of life."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    # The messages this user sees in the message list: a project may narrow them.
    silent, waiting, reported = groups(queryset=model_admin.get_queryset(request))
    here = reverse(f"{model_admin.admin_site.name}:d7sms_message_unknown")
    if request.method == "POST":
        if not model_admin.has_send_permission(request):
            raise PermissionDenied
        if request.POST.get("confirm") != "1":
            messages.error(request, _("Tick the box to confirm, then press the button again."))
            return HttpResponseRedirect(here)
        # A project may also narrow per message (has_view_permission with an object).
        ids = [m.pk for m in silent.order_by("pk") if model_admin.has_view_permission(request, m)]
        return _resend_silent(model_admin, request, ids, here)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": _("Unknown outcomes"),
        "quiet_minutes": round(conf.get("UNKNOWN_QUIET_PERIOD") / 60),
        "silent": {"count": silent.count(), "rows": list(silent.select_related("sendout").order_by("claimed_at", "pk")[:SHOWN])},
        "waiting": {"count": waiting.count(), "rows": list(waiting.select_related("sendout").order_by("claimed_at", "pk")[:SHOWN])},
        "reported": {"count": reported.count(), "rows": list(reported.select_related("sendout").order_by("-updated_at", "-pk")[:SHOWN])},
        "can_send": model_admin.has_send_permission(request),
    }
    return TemplateResponse(request, "admin/d7sms/message/unknown.html", context)


def _resend_silent(model_admin, request, ids, here):
    from d7sms import api

    copies = api.resend_many(ids, user=request.user)
    minutes = round(conf.get("UNKNOWN_QUIET_PERIOD") / 60)
    for copy in copies:
        note = _("Sent again as message #%(copy)s: no sign of life at D7 %(minutes)s minutes after the call.") % {
            "copy": copy.pk, "minutes": minutes,
        }
        model_admin.log_change(request, copy.resend_of, note)
        model_admin.log_addition(request, copy, _("Resend of message #%(id)s.") % {"id": copy.resend_of_id})
    if copies.suppressed:
        messages.warning(request, ngettext(
            "%(n)d message was not sent again: its number opted out.",
            "%(n)d messages were not sent again: their numbers opted out.", copies.suppressed) % {"n": copies.suppressed})
    if copies:
        messages.success(request, ngettext(
            "%(n)d message with no sign of life at D7 was sent again.",
            "%(n)d messages with no sign of life at D7 were sent again.", len(copies)) % {"n": len(copies)})
    else:
        messages.warning(request, _("Nothing was sent: no message is waiting to be sent again (another person may have just done it)."))
    return HttpResponseRedirect(here)
