"""The reports and callbacks shown under a message, as received: read only."""

from django.contrib import admin
from django.utils.translation import gettext_lazy

from d7sms.admin import display
from d7sms.models import BatchCallback, DeliveryReport


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class DeliveryReportInline(ReadOnlyInline):
    model = DeliveryReport
    fk_name = "message"
    verbose_name_plural = gettext_lazy("delivery reports (DLR history)")
    fields = ("received", "level", "message_status", "err", "done", "applied", "problem", "params")
    readonly_fields = fields
    ordering = ("received_at", "id")

    @admin.display(description=gettext_lazy("received"))
    def received(self, report):
        return display.exact_time(report.received_at)

    @admin.display(description=gettext_lazy("done date"))
    def done(self, report):
        return display.exact_time(report.done_date)

    @admin.display(description=gettext_lazy("applied"))
    def applied(self, report):
        return display.exact_time(report.applied_at)


class BatchCallbackInline(ReadOnlyInline):
    model = BatchCallback
    fk_name = "message"
    verbose_name_plural = gettext_lazy("batch callbacks (callback history)")
    fields = ("received", "kind", "status", "status_text", "d7_message_id", "applied", "problem")
    readonly_fields = fields
    ordering = ("received_at", "id")

    @admin.display(description=gettext_lazy("received"))
    def received(self, callback):
        return display.exact_time(callback.received_at)

    @admin.display(description=gettext_lazy("applied"))
    def applied(self, callback):
        return display.exact_time(callback.applied_at)
