"""Template tags for the d7sms admin pages.

``{% d7sms_balance_panel %}`` shows the D7 balance, when it was read and a refresh button.
A project that wants it on its admin index can add it to its own ``admin/index.html``.
"""

from django import template
from django.urls import reverse

register = template.Library()


@register.inclusion_tag("admin/d7sms/includes/balance.html", takes_context=True)
def d7sms_balance_panel(context):
    from d7sms.admin.balance import can_view, panel_context

    request = context["request"]
    if not can_view(request.user):
        return {"hidden": True}
    refresh_url = reverse("admin:d7sms_sendout_balance", current_app=getattr(request, "current_app", None))
    return {**panel_context(request), "refresh_url": refresh_url, "csrf_token": context.get("csrf_token")}
