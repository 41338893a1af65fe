"""The message list's filters: status (and its groups), sendout, reason, attempt, resent."""

from django.contrib import admin
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from d7sms.admin.figures import NO_CODE
from d7sms.admin.reasons import KNOWN_CODES, short
from d7sms.models import FAILURES, LATEST, NOT_FINAL, MessageStatus, Sendout

RECENT_SENDOUTS = 20


class StatusFilter(admin.SimpleListFilter):
    title = gettext_lazy("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("failures", _("All failures")), ("waiting", _("Not final yet")), *MessageStatus.choices]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "failures":
            return queryset.filter(status__in=FAILURES)
        if value == "waiting":
            return queryset.filter(status__in=NOT_FINAL)
        if value in MessageStatus.values:
            return queryset.filter(status=value)
        return queryset


#: The sendout filter's choice for the messages sent with "Send a test to me" (no sendout's).
TESTS = "tests"


class SendoutFilter(admin.SimpleListFilter):
    """The most recent sendouts; any other is reached from its own page (``?sendout=<id>``).
    "Tests" are the messages sent with "Send a test to me", which belong to no sendout."""

    title = gettext_lazy("sendout")
    parameter_name = "sendout"

    def lookups(self, request, model_admin):
        rows = list(Sendout.objects.order_by("-created_at", "-id").values_list("pk", "name")[:RECENT_SENDOUTS])
        chosen = self.value()
        if chosen and chosen.isdigit() and all(str(pk) != chosen for pk, _n in rows):
            rows += list(Sendout.objects.filter(pk=chosen).values_list("pk", "name"))
        return [(TESTS, _("Tests (“Send a test to me”)")),
                *((str(pk), name or _("Sendout #%(id)s") % {"id": pk}) for pk, name in rows)]

    def queryset(self, request, queryset):
        value = self.value()
        if value == TESTS:
            return queryset.filter(is_test=True)
        return queryset.filter(sendout_id=value) if value and value.isdigit() else queryset


class ResentFilter(admin.SimpleListFilter):
    """"No": each recipient's latest attempt, as a sendout counts them; "yes": the attempts a
    resend or retry replaced."""

    title = gettext_lazy("resent")
    parameter_name = "resent"

    def lookups(self, request, model_admin):
        return (("yes", _("Yes")), ("no", _("No (latest attempts)")))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(LATEST)
        if self.value() == "no":
            return queryset.filter(LATEST)
        return queryset


class AttemptFilter(admin.SimpleListFilter):
    """A first attempt, or a resend (and "Retry failed") of an earlier one."""

    title = gettext_lazy("attempt")
    parameter_name = "attempt"

    def lookups(self, request, model_admin):
        return (("first", _("First")), ("resend", _("Resend or retry")))

    def queryset(self, request, queryset):
        if self.value() == "first":
            return queryset.filter(resend_of__isnull=True)
        if self.value() == "resend":
            return queryset.filter(resend_of__isnull=False)
        return queryset


class ReasonFilter(admin.SimpleListFilter):
    """Why a message failed, by its error code; the sendout page links each group of failures here."""

    title = gettext_lazy("reason")
    parameter_name = "reason"

    def lookups(self, request, model_admin):
        # Known codes without a query (a DISTINCT over every message would be slow); the one
        # chosen is always offered, so a link from a sendout's page shows what it filters by.
        codes = list(KNOWN_CODES)
        chosen = self.value()
        if chosen and chosen not in codes:
            codes.append(chosen)
        return [(code, _("No error code") if code == NO_CODE else short("", code)) for code in codes]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(error_code="" if value == NO_CODE else value)
