"""The sendout (Sendout) admin: the list with progress, the sendout page and its actions."""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from d7sms import progress
from d7sms.admin import balance, compose, display, export, progress_views, recipient_fields
from d7sms.admin.paging import NO_FACETS, CappedPaginator
from d7sms.admin.reasons import explain
from d7sms.models import FAILURES, Message, MessageStatus, Sendout

SHOWN_FAILURES = 50


class SendoutChangeList(ChangeList):
    """Attaches each row's message counts, read for the whole page in one query."""

    def get_results(self, request):
        super().get_results(request)
        rows = list(self.result_list)
        counts = progress.counts([b.pk for b in rows])
        for sendout in rows:
            sendout.d7_counts = counts[sendout.pk]
        self.result_list = rows


class SendPermissionMixin:
    def has_send_permission(self, request):
        """May this user compose, send, resend, cancel or retry?"""
        return request.user.has_perm("d7sms.send_sms")


class SendoutAdmin(SendPermissionMixin, admin.ModelAdmin):
    # Facet counts would run one COUNT per filter choice over the whole table.
    show_facets = NO_FACETS
    list_display = ("title", "status_badge", "scheduled", "recipient_count", "progress_bar", "created_by")
    list_filter = ("status", "remote_schedule", "created_at")
    list_select_related = ("created_by",)
    search_fields = ("name",)
    list_per_page = 50
    show_full_result_count = False
    paginator = CappedPaginator
    actions = ("cancel_selected", "retry_failed_selected")
    fieldsets = (
        (
            gettext_lazy("Message"),
            {"fields": ("name", "sender", "personalised", "template_name", "content", "opt_out_footer", "hex_content", "coding",
                        "parts")},
        ),
        (
            gettext_lazy("Sending"),
            {"fields": ("schedule_at", "remote_schedule", "mode", "dlr_level", "recipient_count", "duplicate_count",
                        "suppressed_count")},
        ),
        (
            gettext_lazy("History"),
            {"fields": ("created_by", "created_at", "submitted_at", "completed_at", "d7_batch_ids")},
        ),
    )

    @property
    def media(self):
        return super().media + display.MEDIA

    # -- permissions: a sendout is never edited by hand; it is composed, then followed ------

    def has_add_permission(self, request):
        return self.has_send_permission(request)

    def has_change_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f for fieldset in self.fieldsets for f in fieldset[1]["fields"]]

    def get_changelist(self, request, **kwargs):
        return SendoutChangeList

    # -- list columns ---------------------------------------------------------------------

    @admin.display(description=gettext_lazy("name"), ordering="name")
    def title(self, sendout):
        return str(sendout)

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_badge(self, sendout):
        counts = getattr(sendout, "d7_counts", None)
        return display.badge(progress.derive_status(sendout, counts) if counts else sendout.status)

    @admin.display(description=gettext_lazy("scheduled for"), ordering="schedule_at")
    def scheduled(self, sendout):
        if not sendout.schedule_at:
            return _("at once")
        when = display.short_time(sendout.schedule_at)
        return format_html('{} <span class="d7-muted">({})</span>', when, _("at D7")) if sendout.remote_schedule else when

    @admin.display(description=gettext_lazy("progress"))
    def progress_bar(self, sendout):
        return display.progress_bar(getattr(sendout, "d7_counts", {}))

    # -- URLs -------------------------------------------------------------------------------

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("compose/", wrap(self.compose_view), name="d7sms_sendout_compose"),
            path("balance/refresh/", wrap(self.balance_refresh_view), name="d7sms_sendout_balance"),
            path("<int:object_id>/progress/", wrap(self.progress_view), name="d7sms_sendout_progress"),
            path("<int:object_id>/chart.svg", wrap(self.chart_view), name="d7sms_sendout_chart"),
            path("<int:object_id>/export.csv", wrap(self.export_view), name="d7sms_sendout_export"),
            path("<int:object_id>/cancel/", wrap(self.cancel_view), name="d7sms_sendout_cancel"),
            path("<int:object_id>/retry/", wrap(self.retry_view), name="d7sms_sendout_retry"),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        return HttpResponseRedirect(reverse(f"{self.admin_site.name}:d7sms_sendout_compose"))

    def compose_view(self, request):
        return compose.compose_view(self, request)

    def balance_refresh_view(self, request):
        return balance.refresh_view(request, reverse(f"{self.admin_site.name}:d7sms_sendout_changelist"))

    def _viewable(self, request, object_id):
        # Through the admin's queryset and the per-object permission, as Django's change page.
        sendout = self.get_object(request, unquote(str(object_id)))
        if sendout is None:
            raise Http404
        if not self.has_view_permission(request, sendout):
            raise PermissionDenied
        return sendout

    def progress_view(self, request, object_id):
        return progress_views.progress_json(self._viewable(request, object_id))

    def chart_view(self, request, object_id):
        return progress_views.chart_svg(self._viewable(request, object_id))

    def export_view(self, request, object_id):
        return export.results_csv(self._viewable(request, object_id))

    def _act(self, request, object_id, work):
        sendout = self._viewable(request, object_id)
        if not self.has_send_permission(request):
            raise PermissionDenied
        work(request, sendout)
        return HttpResponseRedirect(reverse(f"{self.admin_site.name}:d7sms_sendout_change", args=[sendout.pk]))

    def cancel_view(self, request, object_id):
        return require_POST(self._act)(request, object_id, self._cancel)

    def retry_view(self, request, object_id):
        return require_POST(self._act)(request, object_id, self._retry)

    def _cancel(self, request, sendout):
        from d7sms import api

        n = api.cancel_sendout(sendout)
        if n:
            self.message_user(request, _("“%(sendout)s”: %(n)d messages cancelled.") % {"sendout": sendout, "n": n})
            self.log_change(request, sendout, _("Cancelled %(n)d messages.") % {"n": n})
        else:
            self.message_user(request, _("“%(sendout)s”: nothing left to cancel; it was already handed to D7.") % {"sendout": sendout}, messages.WARNING)

    def _retry(self, request, sendout):
        from d7sms import api

        n = api.retry_failed(sendout)
        if n.suppressed:
            self.message_user(request, _(
                "“%(sendout)s”: %(n)d failed messages not sent again: their numbers opted out."
            ) % {"sendout": sendout, "n": n.suppressed}, messages.WARNING)
        if n:
            self.message_user(request, _("“%(sendout)s”: %(n)d failed messages sent again.") % {"sendout": sendout, "n": n})
            self.log_change(request, sendout, _("Retried %(n)d failed messages.") % {"n": n})
        else:
            self.message_user(request, _("“%(sendout)s”: no failed message to retry.") % {"sendout": sendout}, messages.WARNING)

    # -- list actions -------------------------------------------------------------------------

    @admin.action(description=gettext_lazy("Cancel selected sendouts (messages not yet handed to D7)"), permissions=["send"])
    def cancel_selected(self, request, queryset):
        for sendout in queryset:
            if self.has_view_permission(request, sendout):
                self._cancel(request, sendout)

    @admin.action(description=gettext_lazy("Retry the failed messages of selected sendouts"), permissions=["send"])
    def retry_failed_selected(self, request, queryset):
        for sendout in queryset:
            if self.has_view_permission(request, sendout):
                self._retry(request, sendout)

    # -- the sendout page -------------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        sendout = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if sendout is not None:
            extra.update(self._follow_context(request, sendout))
        return super().change_view(request, object_id, form_url, extra)

    def _follow_context(self, request, sendout):
        counts = progress.counts([sendout.pk])[sendout.pk]
        failures = list(
            Message.objects.filter(sendout=sendout, status__in=FAILURES)
            .order_by("final_at", "pk")
            .values("pk", "to", "status", "error_code", "last_error", "final_at")[:SHOWN_FAILURES]
        )
        for row in failures:
            row["badge"] = display.badge(row["status"])
            row["reason"] = explain(row["status"], row["error_code"], row["last_error"])
        failed_total = sum(counts.get(s, 0) for s in FAILURES)
        waiting_to_send = counts.get(MessageStatus.PENDING, 0) + counts.get(MessageStatus.QUEUED, 0)
        can_send = self.has_send_permission(request)
        site = self.admin_site.name
        return {
            "d7_counts": [(display.badge(s), counts.get(s, 0), s) for s in MessageStatus.values],
            "d7_status": display.badge(progress.derive_status(sendout, counts)),
            "d7_progress": display.progress_bar(counts, sendout_id=sendout.pk),
            "d7_total": sum(counts.values()),
            "d7_failures": failures,
            "d7_failed_total": failed_total,
            "d7_can_cancel": can_send and waiting_to_send > 0 and not (sendout.remote_schedule and sendout.submitted_at),
            "d7_can_retry": can_send and failed_total > 0,
            "d7_messages_url": reverse(f"{site}:d7sms_message_changelist") + f"?sendout={sendout.pk}",
            "d7_progress_url": reverse(f"{site}:d7sms_sendout_progress", args=[sendout.pk]),
            "d7_chart_url": reverse(f"{site}:d7sms_sendout_chart", args=[sendout.pk]),
            "d7_export_url": reverse(f"{site}:d7sms_sendout_export", args=[sendout.pk]),
            "d7_cancel_url": reverse(f"{site}:d7sms_sendout_cancel", args=[sendout.pk]),
            "d7_retry_url": reverse(f"{site}:d7sms_sendout_retry", args=[sendout.pk]),
            "d7_done": progress.is_done(sendout, counts),
            **recipient_fields.sendout_context(sendout),
        }
