"""The message admin: find a message, see its reports and why it failed, resend or cancel it;
the log of messages, searched by any run of a number's digits and exported as filtered."""

import re

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.utils import unquote
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404, HttpResponseBadRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from d7sms import creation, quiet_hours, status
from d7sms.admin import archive, attention, display, export, money, unknown
from d7sms.admin.message_filters import (
    AttemptFilter, ReasonFilter, ResentFilter, SendoutFilter, StatusFilter,
)
from d7sms.admin.message_inlines import BatchCallbackInline, DeliveryReportInline
from d7sms.admin.sendouts import SendPermissionMixin
from d7sms.admin.paging import NO_FACETS, CappedPaginator
from d7sms.admin.reasons import UNKNOWN_RESOLVED, explain
from d7sms.admin.recipient_fields import fields_table
from d7sms.models import FAILURES, Message, MessageStatus
from d7sms.recipients import InvalidNumber, normalise

CANCELLABLE = (MessageStatus.PENDING, MessageStatus.QUEUED)
TEXT_SHOWN = 40
# A D7 message id (a UUID), matched exactly rather than as digits of a number.
_D7_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F-]+")
# What staff type for (part of) a number: digits, maybe a + and spaces, dots, dashes or brackets.
_NUMBER_LIKE = re.compile(r"\+?[0-9 ().-]+")


class MessageAdmin(SendPermissionMixin, admin.ModelAdmin):
    # Facet counts would run one COUNT per filter choice over the whole table.
    show_facets = NO_FACETS
    list_display = ("to", "status_badge", "text", "sender", "parts", "cost", "attempt", "sendout_or_test", "final")
    list_display_links = ("to",)
    list_filter = (StatusFilter, SendoutFilter, ReasonFilter, AttemptFilter, ResentFilter, "created_at")
    list_select_related = ("sendout",)
    search_fields = ("=to", "=d7_message_id")
    search_help_text = gettext_lazy("Any digits of a phone number (“123459” finds +441234598765), a number in any format, or a D7 message id.")
    list_per_page = 100
    change_list_template = "admin/d7sms/message/change_list.html"
    show_full_result_count = False
    paginator = CappedPaginator
    actions = ("resend_selected", "cancel_selected", "mark_failed")
    inlines = (DeliveryReportInline, BatchCallbackInline)
    fieldsets = (
        (None, {"fields": ("to", "status_badge", "why", "sendout_or_test", "attempt_chain")}),
        (
            gettext_lazy("Content"),
            {"fields": ("sender", "content", "hex_content", "coding", "parts", "dlr_level", "recipient_fields")},
        ),
        (gettext_lazy("D7"), {"fields": ("d7_message_id", "d7_batch_id", "attempts", "error_code", "last_error")}),
        (
            gettext_lazy("Times"),
            {"fields": ("created_at", "scheduled_at", "submitted_at", "accepted_at", "final_at", "updated_at")},
        ),
    )

    @property
    def media(self):
        return super().media + display.MEDIA

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f for fieldset in self.fieldsets for f in fieldset[1]["fields"]]

    # -- deleting: only what never left for D7 (see archive.py) -----------------------------

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or not archive.message_kept_reason(obj))

    def delete_view(self, request, object_id, extra_context=None):
        message = self.get_object(request, unquote(object_id))
        if message is None or not super().has_delete_permission(request, message):
            return super().delete_view(request, object_id, extra_context)
        reason = archive.message_kept_reason(message)
        if not reason:
            try:
                return super().delete_view(request, object_id, extra_context)
            except archive.Kept as kept:  # it left for D7 (or was sent again) meanwhile: nothing changed
                reason = str(kept)
        self.message_user(request, reason, messages.ERROR)
        return HttpResponseRedirect(reverse(f"{self.admin_site.name}:d7sms_message_change", args=[message.pk]))

    def get_deleted_objects(self, objs, request):
        found = super().get_deleted_objects(objs, request)
        if super().has_delete_permission(request):
            # Those chosen passed archive.deletable, and each is checked again as it is deleted;
            # one sent again only looks kept here, until its copy, chosen with it, goes first.
            found[2].discard(Message._meta.verbose_name)
        return found

    def delete_model(self, request, obj):
        archive.delete_unsent_message(obj)

    def delete_queryset(self, request, queryset):
        for message in queryset.order_by("-pk"):  # copies before the messages they sent again
            try:
                archive.delete_unsent_message(message)
            except archive.Kept as kept:
                self.message_user(request, str(kept), messages.ERROR)

    def get_actions(self, request):
        found = super().get_actions(request)
        if "delete_selected" in found:
            found["delete_selected"] = (
                MessageAdmin.delete_unsent_selected, "delete_selected", gettext_lazy("Delete selected unsent messages")
            )
        return found

    def delete_unsent_selected(self, request, queryset):
        """Django's delete action, for the selected messages that never left for D7 only."""
        chosen, kept = archive.deletable(list(queryset))
        for reason in kept.values():
            self.message_user(request, reason, messages.ERROR)
        if not chosen:
            return None
        return django_delete_selected(self, request, queryset.filter(pk__in=chosen))

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        if _D7_ID.fullmatch(term):
            return queryset.filter(d7_message_id=term), False
        found = Q(d7_message_id=term)
        try:
            found |= Q(to=normalise(term))  # a national number: "07911 123456"
        except InvalidNumber:
            pass
        digits = re.sub(r"[^0-9]", "", term)
        if digits and _NUMBER_LIKE.fullmatch(term):
            # Any run of digits: staff remember a part of a number ("123459"). A scan of the
            # column, but only of the rows the other filters leave, read a page at a time.
            found |= Q(to__contains=digits)
        return queryset.filter(found), False

    # -- columns ----------------------------------------------------------------------------

    @admin.display(description=gettext_lazy("recipient fields"))
    def recipient_fields(self, message):
        return fields_table(message.fields)

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_badge(self, message):
        if message.status not in _EXPLAINED:
            return display.badge(message.status)
        text = explain(message.status, message.error_code, message.last_error)
        return format_html(
            '{}<br><span class="d7-muted" title="{}">{}</span>', display.badge(message.status), text,
            Truncator(text).chars(48),
        )

    @admin.display(description=gettext_lazy("text"))
    def text(self, message):
        if message.content:
            return format_html('<span title="{}">{}</span>', message.content, Truncator(message.content).chars(TEXT_SHOWN))
        return _("(binary, coding %(coding)s)") % {"coding": message.coding} if message.hex_content else "–"

    @admin.display(description=gettext_lazy("cost"))
    def cost(self, message):
        if not money.is_charged(message.submitted_at, message.error_code):
            return "–"
        return money.text(money.cost(message.parts)) or "–"

    @admin.display(description=gettext_lazy("attempt"))
    def attempt(self, message):
        if message.resend_of_id is None:
            return _("first")
        url = reverse(f"{self.admin_site.name}:d7sms_message_change", args=[message.resend_of_id])
        return format_html('{} <a href="{}">#{}</a>', _("resend of"), url, message.resend_of_id)

    # Not named "sendout": the model field of that name would be shown instead.
    @admin.display(description=gettext_lazy("sendout"), ordering="sendout")
    def sendout_or_test(self, message):
        if message.is_test:
            return format_html(
                '<span class="d7-badge d7-off" data-test title="{}">{}</span>',
                _("Sent with “Send a test to me” from a compose preview; it belongs to no sendout."), _("test"),
            )
        if message.sendout is None:
            return "–"
        url = reverse(f"{self.admin_site.name}:d7sms_sendout_change", args=[message.sendout_id])
        return format_html('<a href="{}">{}</a>', url, message.sendout)

    @admin.display(description=gettext_lazy("accepted"), ordering="accepted_at")
    def accepted(self, message):
        return display.short_time(message.accepted_at)

    @admin.display(description=gettext_lazy("final"), ordering="final_at")
    def final(self, message):
        return display.short_time(message.final_at)

    @admin.display(description=gettext_lazy("why"))
    def why(self, message):
        if message.status not in _EXPLAINED:
            return _("Delivered to the phone.") if message.status == MessageStatus.DELIVERED else _("Not final yet.")
        text = explain(message.status, message.error_code, message.last_error)
        return format_html('<span class="d7-why-bad">{}</span>', text) if message.status in FAILURES else text

    @admin.display(description=gettext_lazy("attempts"))
    def attempt_chain(self, message):
        attempts = creation.attempts(message)
        if len(attempts) < 2:
            return "–"
        site = self.admin_site.name
        return format_html_join(
            " → ",
            '<a href="{}">#{}</a> {}',
            ((reverse(f"{site}:d7sms_message_change", args=[m.pk]), m.pk, display.badge(m.status)) for m in attempts),
        )

    # -- URLs and buttons ---------------------------------------------------------------------

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("attention/", wrap(self.attention_view), name="d7sms_message_attention"),
            path("unknown/", wrap(self.unknown_view), name="d7sms_message_unknown"),
            path("export.csv", wrap(self.export_view), name="d7sms_message_export"),
            path("<int:object_id>/resend/", wrap(self.resend_view), name="d7sms_message_resend"),
            path("<int:object_id>/cancel/", wrap(self.cancel_view), name="d7sms_message_cancel"),
            *super().get_urls(),
        ]

    def attention_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        return attention.attention_view(self, request)

    def unknown_view(self, request):
        return unknown.unknown_view(self, request)

    def export_view(self, request):
        """The message list as CSV, with the filters and search of the list it was asked from."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest(_("These filters cannot be read; open the list again and export from there."))
        return export.messages_csv(changelist.queryset, "messages.csv")

    def _acting_on(self, request, object_id):
        # Through get_object (the admin's queryset) and the per-object view permission, as
        # Django's own change page: the send permission alone must not reach any message by id.
        message = self.get_object(request, unquote(str(object_id)))
        if message is None:
            raise Http404
        if not (self.has_view_permission(request, message) and self.has_send_permission(request)):
            raise PermissionDenied
        return message

    def _act(self, request, object_id, work):
        message = self._acting_on(request, object_id)
        target = work(request, message) or message
        return HttpResponseRedirect(reverse(f"{self.admin_site.name}:d7sms_message_change", args=[target.pk]))

    def resend_view(self, request, object_id):
        """GET: what was already sent to this recipient, and the question. POST: send again."""
        if request.method == "POST":
            return self._act(request, object_id, self._resend)
        message = self._acting_on(request, object_id)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Send again?"),
            "original": message,
            "attempts": [(m, display.badge(m.status)) for m in creation.attempts(message)],
            "resent_as": Message.objects.filter(resend_of=message).first(),
            **_quiet_hours_context(message),
        }
        return TemplateResponse(request, "admin/d7sms/message/resend.html", context)

    def cancel_view(self, request, object_id):
        return require_POST(self._act)(request, object_id, self._cancel)

    def _resend(self, request, message):
        from d7sms import api

        try:
            new = api.resend(message, user=request.user)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.WARNING)
            # A second click lands on the copy the first one made.
            return Message.objects.filter(pk=exc.params["copy"]).first() if exc.code == "already_resent" else None
        self.log_addition(request, new, _("Resend of message #%(id)s.") % {"id": message.pk})
        if new.status == MessageStatus.PENDING:
            self.message_user(request, _(
                "Sent again to %(to)s as a new message #%(id)s, which waits for its sendout's quiet hours: it goes "
                "at %(when)s (%(zone)s), when the window opens for this number."
            ) % {"to": message.to, "id": new.pk, "when": display.exact_time(new.scheduled_at),
                 "zone": timezone.get_current_timezone_name()})
        else:
            self.message_user(request, _("Sent again to %(to)s as a new message #%(id)s.") % {"to": message.to, "id": new.pk})
        return new

    def _cancel(self, request, message):
        from d7sms import api

        if message.status in CANCELLABLE and api.cancel_message(message):
            self.log_change(request, message, _("Cancelled."))
            self.message_user(request, _("Message to %(to)s cancelled.") % {"to": message.to})
        else:
            self.message_user(
                request, _("Message to %(to)s was not cancelled: it is %(status)s.") % {
                    "to": message.to, "status": display.status_label(message.status)
                }, messages.WARNING,
            )
        return message

    def _visible(self, request, queryset):
        """The selected messages this user may see; a project may narrow that per object."""
        allowed = [m for m in queryset if self.has_view_permission(request, m)]
        hidden = len(queryset) - len(allowed)
        if hidden:
            self.message_user(
                request, _("%(n)d selected messages were left alone: you may not view them.") % {"n": hidden},
                messages.WARNING,
            )
        return allowed

    @admin.action(description=gettext_lazy("Resend selected messages (as new messages)"), permissions=["send"])
    def resend_selected(self, request, queryset):
        for message in self._visible(request, queryset):
            self._resend(request, message)

    @admin.action(description=gettext_lazy("Cancel selected messages (if not yet handed to D7)"), permissions=["send"])
    def cancel_selected(self, request, queryset):
        for message in self._visible(request, queryset):
            self._cancel(request, message)

    @admin.action(
        description=gettext_lazy("Mark selected unknown messages as failed (checked: they did not arrive)"),
        permissions=["send"],
    )
    def mark_failed(self, request, queryset):
        done = 0
        for message in self._visible(request, queryset.filter(status=MessageStatus.UNKNOWN)):
            note = _("Outcome unknown; marked failed by %(user)s.") % {"user": request.user.get_username()}
            if status.change(message, MessageStatus.FAILED, error_code=UNKNOWN_RESOLVED, last_error=note):
                self.log_change(request, message, note)
                done += 1
        self.message_user(request, _("%(n)d messages marked failed.") % {"n": done}, messages.SUCCESS if done else messages.WARNING)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        message = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if message is not None and self.has_send_permission(request):
            site = self.admin_site.name
            extra.update(
                d7_can_resend=message.status not in (MessageStatus.PENDING, MessageStatus.QUEUED, MessageStatus.SENDING),
                d7_can_cancel=message.status in CANCELLABLE,
                d7_resend_url=reverse(f"{site}:d7sms_message_resend", args=[message.pk]),
                d7_cancel_url=reverse(f"{site}:d7sms_message_cancel", args=[message.pk]),
            )
        return super().change_view(request, object_id, form_url, extra)


def _quiet_hours_context(message):
    """The window of ``message``'s sendout, and when a copy made now would go if it waits for it."""
    sendout = message.sendout
    if sendout is None or sendout.send_from is None:
        return {}
    window = quiet_hours.Window(sendout.send_from, sendout.send_until)
    now = timezone.now()
    when = quiet_hours.Plan(window, now).release(message.to)
    return {
        "d7_quiet_window": window, "d7_quiet_release": when if when is not None and when > now else None,
        "d7_zone": timezone.get_current_timezone_name(),
    }


_EXPLAINED = FAILURES | {MessageStatus.CANCELLED, MessageStatus.UNKNOWN}
