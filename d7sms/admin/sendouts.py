"""The sendout (Sendout) admin: the list with progress, the sendout page and its actions."""

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from d7sms import progress, quiet_hours, scheduling
from d7sms.admin import archive, balance, compose, display, duplicate, export, figures, progress_views, recipient_fields
from d7sms.admin.paging import NO_FACETS, CappedPaginator
from d7sms.models import Message, MessageStatus, Sendout


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
    list_filter = ("status", "remote_schedule", "created_at", archive.ArchivedFilter)
    list_select_related = ("created_by",)
    search_fields = ("name",)
    list_per_page = 50
    show_full_result_count = False
    paginator = CappedPaginator
    actions = ("cancel_selected", "retry_failed_selected", "archive_selected", "unarchive_selected")
    fieldsets = (
        (
            gettext_lazy("Message"),
            {"fields": ("name", "sender", "personalised", "template_name", "content", "opt_out_footer", "hex_content", "coding",
                        "parts")},
        ),
        (
            gettext_lazy("Sending"),
            {"fields": ("schedule_at", "remote_schedule", "send_from", "send_until", "mode", "recipient_count",
                        "duplicate_count", "suppressed_count")},
        ),
        (
            gettext_lazy("History"),
            {"fields": ("created_by", "created_at", "submitted_at", "completed_at", "archived_at")},
        ),
        (
            gettext_lazy("Technical details"),
            {"fields": ("dlr_level", "d7_batch_ids"), "classes": ("collapse",)},
        ),
    )
    # Shown only when they hold something: most sendouts are text, never archived, not from a template.
    OPTIONAL_FIELDS = ("hex_content", "coding", "template_name", "archived_at", "duplicate_count", "d7_batch_ids")

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

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return self.fieldsets
        empty = {f for f in self.OPTIONAL_FIELDS if getattr(obj, f) in (None, "", 0, [])}
        if obj.hex_content:
            empty.discard("coding")
        else:
            empty.add("coding")  # a text's coding is per message, chosen from its characters
        shown = []
        for title, options in self.fieldsets:
            fields = tuple(f for f in options["fields"] if f not in empty)
            if fields:
                shown.append((title, {**options, "fields": fields}))
        return shown

    def has_delete_permission(self, request, obj=None):
        # A sendout that reached D7 is the record of what was sent; see archive.py.
        return super().has_delete_permission(request, obj) and (obj is None or not obj.handed_to_d7())

    def get_deleted_objects(self, objs, request):
        found = super().get_deleted_objects(objs, request)
        if not any(sendout.handed_to_d7() for sendout in objs):
            # An unsent sendout's messages never left: they go with it (they cannot be deleted alone).
            found[2].discard(Message._meta.verbose_name)
        return found

    def get_actions(self, request):
        found = super().get_actions(request)
        if "delete_selected" in found:
            found["delete_selected"] = (
                SendoutAdmin.delete_unsent_selected, "delete_selected", gettext_lazy("Delete selected unsent sendouts")
            )
        return found

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
            path("<int:object_id>/archive/", wrap(self.archive_view), name="d7sms_sendout_archive"),
            path("<int:object_id>/duplicate/", wrap(self.duplicate_view), name="d7sms_sendout_duplicate"),
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

    def archive_view(self, request, object_id):
        return require_POST(self._act)(request, object_id, self._archive)

    def duplicate_view(self, request, object_id):
        sendout = self._viewable(request, object_id)
        if not self.has_send_permission(request):
            raise PermissionDenied
        return duplicate.compose_copy(self, request, sendout)

    def delete_view(self, request, object_id, extra_context=None):
        sendout = self.get_object(request, unquote(object_id))
        if sendout is not None and sendout.handed_to_d7() and super().has_delete_permission(request, sendout):
            self.message_user(request, archive.kept_message(sendout), messages.ERROR)
            return HttpResponseRedirect(reverse(f"{self.admin_site.name}:d7sms_sendout_change", args=[sendout.pk]))
        return super().delete_view(request, object_id, extra_context)

    def delete_model(self, request, obj):
        archive.delete_unsent(obj)  # raises Kept if it reached D7 meanwhile; nothing is deleted then

    def delete_queryset(self, request, queryset):
        for sendout in queryset:
            try:
                archive.delete_unsent(sendout)
            except archive.Kept:
                self.message_user(request, archive.kept_message(sendout), messages.ERROR)

    def _archive(self, request, sendout):
        unarchiving = bool(sendout.archived_at)
        chosen = Sendout.objects.filter(pk=sendout.pk)
        if unarchiving:
            archive.unarchive(chosen)
            self.message_user(request, _("“%(sendout)s” is back in the sendout list.") % {"sendout": sendout})
        else:
            archive.archive(chosen)
            self.message_user(request, _("“%(sendout)s” is archived: hidden from the sendout list unless you "
                                         "filter for archived sendouts.") % {"sendout": sendout})
        self.log_change(request, sendout, _("Unarchived.") if unarchiving else _("Archived."))

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

        try:
            n = api.retry_failed(sendout)
        except ValidationError as exc:  # quiet hours that never open for a number: nothing was sent
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return
        if n.suppressed:
            self.message_user(request, _(
                "“%(sendout)s”: %(n)d failed messages not sent again: their numbers opted out."
            ) % {"sendout": sendout, "n": n.suppressed}, messages.WARNING)
        if n:
            held = display.held_for_quiet_hours(n.waiting)
            self.message_user(request, " ".join(filter(None, (
                _("“%(sendout)s”: %(n)d failed messages sent again.") % {"sendout": sendout, "n": n}, held,
            ))))
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

    @admin.action(description=gettext_lazy("Archive selected sendouts (hide them from this list)"), permissions=["send"])
    def archive_selected(self, request, queryset):
        n = archive.archive(queryset)
        self.message_user(request, _("%(n)d sendouts archived.") % {"n": n})

    @admin.action(description=gettext_lazy("Bring selected archived sendouts back"), permissions=["send"])
    def unarchive_selected(self, request, queryset):
        n = archive.unarchive(queryset)
        self.message_user(request, _("%(n)d sendouts are back in the list.") % {"n": n})

    def delete_unsent_selected(self, request, queryset):
        """Django's delete action, for the selected sendouts that never reached D7 only."""
        kept = [s for s in queryset if s.handed_to_d7()]
        for sendout in kept:
            self.message_user(request, archive.kept_message(sendout), messages.ERROR)
        unsent = queryset.exclude(pk__in=[s.pk for s in kept])
        if not unsent.exists():
            return None
        return django_delete_selected(self, request, unsent)

    # -- the sendout page -------------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        sendout = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if sendout is not None:
            extra.update(self._follow_context(request, sendout))
        return super().change_view(request, object_id, form_url, extra)

    def _follow_context(self, request, sendout):
        counts = progress.counts([sendout.pk])[sendout.pk]
        site = self.admin_site.name
        messages_url = reverse(f"{site}:d7sms_message_changelist")
        numbers = figures.context(sendout, messages_url)
        failed_total = numbers["d7_failed_total"]
        waiting_to_send = counts.get(MessageStatus.PENDING, 0) + counts.get(MessageStatus.QUEUED, 0)
        can_send = self.has_send_permission(request)
        summary = display.progress(counts)
        points, grain = progress_views.delivery_series(sendout)
        return {
            "d7_groups": [(key, label, summary["groups"][key]) for key, label, _s in display.GROUPS],
            "d7_live": progress_views.live_text(progress.is_done(sendout, counts), summary),
            "d7_chart_svg": mark_safe(progress_views.render_chart(points, grain, summary["total"])),  # every value escaped as built
            **numbers,
            "d7_counts": [(display.badge(s), counts.get(s, 0), s) for s in MessageStatus.values],
            "d7_status": display.badge(progress.derive_status(sendout, counts)),
            "d7_progress": display.progress_bar(counts, sendout_id=sendout.pk),
            "d7_total": sum(counts.values()),
            "d7_can_cancel": can_send and waiting_to_send > 0 and not (sendout.remote_schedule and sendout.submitted_at),
            "d7_can_retry": can_send and failed_total > 0,
            "d7_messages_url": f"{messages_url}?sendout={sendout.pk}",
            "d7_progress_url": reverse(f"{site}:d7sms_sendout_progress", args=[sendout.pk]),
            "d7_chart_url": reverse(f"{site}:d7sms_sendout_chart", args=[sendout.pk]),
            "d7_export_url": reverse(f"{site}:d7sms_sendout_export", args=[sendout.pk]),
            "d7_cancel_url": reverse(f"{site}:d7sms_sendout_cancel", args=[sendout.pk]),
            "d7_retry_url": reverse(f"{site}:d7sms_sendout_retry", args=[sendout.pk]),
            "d7_archive_url": reverse(f"{site}:d7sms_sendout_archive", args=[sendout.pk]) if can_send else "",
            "d7_duplicate_url": reverse(f"{site}:d7sms_sendout_duplicate", args=[sendout.pk]) if can_send else "",
            "d7_done": progress.is_done(sendout, counts),
            **_quiet_hours_context(sendout),
            **recipient_fields.sendout_context(sendout),
        }


def _quiet_hours_context(sendout):
    """The sendout's window, and how many of its messages wait for it until when."""
    if sendout.send_from is None:
        return {}
    held, next_release = scheduling.held_for_quiet_hours(sendout)
    window = quiet_hours.Window(sendout.send_from, sendout.send_until)
    return {"d7_quiet_window": window, "d7_quiet_held": held, "d7_quiet_next": next_release}
