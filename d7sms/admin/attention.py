"""The "needs attention" page: what a person must look at because the system cannot decide."""

from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from d7sms.admin import balance
from d7sms.models import (
    AccountState,
    BatchCallback,
    DeliveryReport,
    Message,
    MessageStatus,
)

SHOWN = 20


def attention_items(site_name):
    """Each kind of problem with its count, first rows and where to see them all."""
    # A resend is the decision about an unknown message; only undecided ones need a person.
    unknown = Message.objects.filter(status=MessageStatus.UNKNOWN, resent_as__isnull=True)
    orphans = DeliveryReport.objects.filter(message__isnull=True)
    callbacks = BatchCallback.objects.filter(applied_at__isnull=True, problem__gt="")
    return [
        {
            "key": "unknown",
            "title": _("Messages whose sending outcome is unknown"),
            "help": _(
                "The call to D7 was interrupted, so these may or may not have been sent. Check with the "
                "recipient or D7, then resend it (which may send a second copy) or mark it failed."
            ),
            "count": unknown.count(),
            "rows": list(unknown.select_related("sendout").order_by("claimed_at", "pk")[:SHOWN]),
            "url": reverse(f"{site_name}:d7sms_message_changelist") + "?status=unknown&resent=no",
        },
        {
            "key": "orphans",
            "title": _("Delivery reports for no known message"),
            "help": _(
                "D7 reported on a message id this site does not know yet. They are applied when the "
                "message's id arrives; ones that stay here belong to deleted or foreign messages."
            ),
            "count": orphans.count(),
            "rows": list(orphans.order_by("-received_at", "-pk")[:SHOWN]),
            "url": reverse(f"{site_name}:d7sms_deliveryreport_changelist") + "?orphan=yes",
        },
        {
            "key": "callbacks",
            "title": _("Sendout callbacks that could not be applied"),
            "help": _("Calls from D7 about a sendout that did not match any message."),
            "count": callbacks.count(),
            "rows": list(callbacks.order_by("-received_at", "-pk")[:SHOWN]),
            "url": reverse(f"{site_name}:d7sms_batchcallback_changelist") + "?problem=yes",
        },
    ]


def attention_view(model_admin, request):
    """Paused sending, unknown outcomes and unmatched reports on one page."""
    site = model_admin.admin_site.name
    items = attention_items(site)
    state = AccountState.get()
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": _("Needs attention"),
        "state": state,
        **balance.pause_context(state),
        "items": items,
        "all_clear": not any(item["count"] for item in items),
    }
    return TemplateResponse(request, "admin/d7sms/attention.html", context)
