"""Read-only lists of every call D7 made back: delivery reports and batch callbacks."""

from django.contrib import admin
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from d7sms.admin.paging import NO_FACETS, CappedPaginator


class _YesNoFilter(admin.SimpleListFilter):
    """A yes/no filter; subclasses say what "yes" selects as a ``Q``."""

    yes = Q()

    def lookups(self, request, model_admin):
        return (("yes", _("Yes")), ("no", _("No")))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(self.yes)
        if self.value() == "no":
            return queryset.exclude(self.yes)
        return queryset


class OrphanFilter(_YesNoFilter):
    title = _("orphan (no message)")
    parameter_name = "orphan"
    yes = Q(message__isnull=True)


class ProblemFilter(_YesNoFilter):
    title = _("not applied, with a problem")
    parameter_name = "problem"
    yes = Q(applied_at__isnull=True, problem__gt="")


class LevelFilter(admin.SimpleListFilter):
    """Fixed choices: a field filter would read the distinct values of the whole table."""

    title = _("level")
    parameter_name = "level"

    def lookups(self, request, model_admin):
        return (("1", _("1: operator (SMSC)")), ("2", _("2: handset")))

    def queryset(self, request, queryset):
        return queryset.filter(level=int(self.value())) if self.value() in ("1", "2") else queryset


class ReportStatusFilter(admin.SimpleListFilter):
    title = _("message status")
    parameter_name = "message_status"
    STATES = ("ESME_ROK", "DELIVRD", "UNDELIV", "EXPIRED", "REJECTD", "DELETED", "UNKNOWN", "ACCEPTD", "ENROUTE")

    def lookups(self, request, model_admin):
        return [(state, state) for state in self.STATES] + [("other", _("other ESME_* codes"))]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "other":
            return queryset.exclude(message_status__in=self.STATES)
        return queryset.filter(message_status=value) if value else queryset


class ReadOnlyAdmin(admin.ModelAdmin):
    # Facet counts would run one COUNT per filter choice over the whole table.
    show_facets = NO_FACETS
    show_full_result_count = False
    paginator = CappedPaginator
    list_per_page = 100

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


class DeliveryReportAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "d7_message_id", "message", "level", "message_status", "err", "applied_at", "problem")
    list_filter = (OrphanFilter, LevelFilter, ReportStatusFilter, "received_at")
    list_select_related = ("message",)
    search_fields = ("=d7_message_id",)
    search_help_text = _("A D7 message id.")


class BatchCallbackAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "kind", "to", "status", "status_text", "sendout", "message", "applied_at", "problem")
    list_filter = (ProblemFilter, "kind", "received_at")
    list_select_related = ("sendout", "message")
    search_fields = ("=d7_message_id", "=d7_batch_id", "=to")
    search_help_text = _("A D7 message or sendout id, or a number as D7 wrote it.")
