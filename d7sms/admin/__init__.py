"""The d7sms admin: compose and follow sendouts, inspect messages and D7's reports.

Registered on the default admin site. Custom pages (compose, progress, chart, export,
needs attention, balance refresh) are URLs of the Sendout and Message admins. The D7 balance
shows on the app's own index, the sendout list and the "needs attention" page; a project can
put it on its site index with ``{% load d7sms_admin %}{% d7sms_balance_panel %}`` in its
own ``admin/index.html``.
"""

from django.contrib import admin

from d7sms.admin.account import AccountStateAdmin
from d7sms.admin.sendouts import SendoutAdmin
from d7sms.admin.message_templates import MessageTemplateAdmin
from d7sms.admin.messages import MessageAdmin
from d7sms.admin.profiles import StaffProfileAdmin
from d7sms.admin.reports import BatchCallbackAdmin, DeliveryReportAdmin
from d7sms.admin.suppressions import SuppressionAdmin
from d7sms.models import (
    AccountState, BatchCallback, DeliveryReport, Message, MessageTemplate, Sendout, StaffProfile, Suppression,
)

admin.site.register(Sendout, SendoutAdmin)
admin.site.register(Message, MessageAdmin)
admin.site.register(DeliveryReport, DeliveryReportAdmin)
admin.site.register(BatchCallback, BatchCallbackAdmin)
admin.site.register(AccountState, AccountStateAdmin)
admin.site.register(MessageTemplate, MessageTemplateAdmin)
admin.site.register(StaffProfile, StaffProfileAdmin)
admin.site.register(Suppression, SuppressionAdmin)

__all__ = [
    "AccountStateAdmin", "SendoutAdmin", "BatchCallbackAdmin", "DeliveryReportAdmin", "MessageAdmin",
    "MessageTemplateAdmin", "StaffProfileAdmin", "SuppressionAdmin",
]
