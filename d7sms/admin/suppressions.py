"""The suppression list in the admin: search by any run of digits, CSV import and export.

An import is all or nothing: if any line holds something that is not a valid number, every
such line is listed with its line number and why, and nothing is stored; a file that is all
valid numbers is added at once (numbers already on the list keep their first entry).
"""

import csv

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from d7sms import conf, suppression
from d7sms.admin.compose_forms import region_choices
from d7sms.admin.export import _Echo, _safe
from d7sms.admin.recipient_input import ListError
from d7sms.admin.spreadsheets import read_table
from d7sms.models import Suppression
from d7sms.recipients import InvalidNumber, normalise

#: The columns of an export, which an import reads back.
COLUMNS = ("number", "reason", "source", "created_at", "created_by")
#: Problems listed on the import page at most; the rest are counted.
SHOWN_PROBLEMS = 100
_NUMBER_HEADERS = ("number", "phone", "mobile", "to", "msisdn")


class ImportForm(forms.Form):
    upload = forms.FileField(
        label=gettext_lazy("CSV or Excel file"),
        help_text=gettext_lazy("One number per line, or the columns of an export (number, reason, ...)."),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,.xlsx,text/csv"}),
    )
    reason = forms.CharField(
        label=gettext_lazy("Reason"), max_length=200, required=False,
        help_text=gettext_lazy("For lines that give none, e.g. “Unsubscribed by email”."),
    )
    region = forms.ChoiceField(label=gettext_lazy("Country for national numbers"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].choices = region_choices()
        self.fields["region"].initial = conf.get("DEFAULT_REGION") or ""


def read_entries(upload, region, default_reason=""):
    """Read an uploaded list; return ``(entries, problems, lines)``: ``{number: reason}`` of
    every valid line, ``[(line, value, why)]`` of the others, and how many lines held something."""
    table = read_table(upload, region)
    names = [n.casefold() for n in table.columns]
    phone = next((names.index(h) for h in _NUMBER_HEADERS if h in names), 0)
    reason = names.index("reason") if "reason" in names else None
    entries, problems, lines = {}, [], 0
    for line, cells in table.rows:
        if not any(cells):
            continue
        lines += 1
        value = cells[phone]
        try:
            number = normalise(value, region)
        except InvalidNumber as exc:
            problems.append((line, value[:60] or ", ".join(c for c in cells if c)[:60], str(exc)))
            continue
        entries[number] = (cells[reason] if reason is not None else "") or default_reason
    return entries, problems, lines


class SuppressionAdmin(admin.ModelAdmin):
    """Numbers that opted out. Staff with the add permission import; anyone who may view exports."""

    list_display = ("number", "reason", "source", "created_by", "created_at")
    list_filter = ("source", "created_at")
    search_fields = ("number", "reason")
    fields = ("number", "reason", "source", "created_by", "created_at")
    readonly_fields = ("created_by", "created_at")
    date_hierarchy = "created_at"
    change_list_template = "admin/d7sms/suppression/change_list.html"

    def get_readonly_fields(self, request, obj=None):
        # An entry's number is what it is; to change it, remove it and add the right one.
        return (*self.readonly_fields, "number") if obj is not None else self.readonly_fields

    def get_search_results(self, request, queryset, search_term):
        """Also find numbers by any run of their digits, written with spaces or dashes."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        digits = "".join(ch for ch in search_term if ch.isdigit())
        if len(digits) >= 3:
            results = results | queryset.filter(number__contains=digits)
        return results, may_have_duplicates

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
            obj.source = obj.source or Suppression.Source.ADMIN
            # Through the API, so that number_suppressed is sent as for every other door.
            saved = suppression.suppress(obj.number, obj.reason, obj.source, user=request.user)
            obj.pk, obj.created_at = saved.pk, saved.created_at
            return
        super().save_model(request, obj, form, change)

    def delete_model(self, request, obj):
        suppression.unsuppress(obj.number)

    def delete_queryset(self, request, queryset):
        for number in queryset.values_list("number", flat=True):
            suppression.unsuppress(number)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("import/", wrap(self.import_view), name="d7sms_suppression_import"),
            path("export/", wrap(self.export_view), name="d7sms_suppression_export"),
            *super().get_urls(),
        ]

    def import_view(self, request):
        """Upload a list; add it all, or list every line that is not a valid number."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ImportForm(request.POST or None, request.FILES or None)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Import opted-out numbers"),
            "form": form,
            "problems": [],
        }
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                entries, problems, lines = read_entries(data["upload"], data["region"] or None, data["reason"])
            except ListError as exc:
                form.add_error("upload", str(exc))
                return TemplateResponse(request, "admin/d7sms/suppression/import.html", context)
            if problems:
                context["problems"] = problems[:SHOWN_PROBLEMS]
                context["problem_count"] = len(problems)
                context["line_count"] = lines
                return TemplateResponse(request, "admin/d7sms/suppression/import.html", context)
            if not entries:
                form.add_error("upload", _("The file holds no numbers."))
                return TemplateResponse(request, "admin/d7sms/suppression/import.html", context)
            added = suppression.suppress_many(entries.items(), Suppression.Source.IMPORT, user=request.user)
            messages.success(request, _(
                "%(added)d numbers added to the suppression list; %(known)d were on it already."
            ) % {"added": added, "known": len(entries) - added})
            return HttpResponseRedirect(reverse(f"{self.admin_site.name}:d7sms_suppression_changelist"))
        return TemplateResponse(request, "admin/d7sms/suppression/import.html", context)

    def export_view(self, request):
        """The list as the change list shows it (search and filters applied), as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        rows = (
            self.get_changelist_instance(request).get_queryset(request)
            .order_by("number").values_list("number", "reason", "source", "created_at", f"created_by__{get_user_model().USERNAME_FIELD}")
            .iterator(chunk_size=2000)
        )
        writer = csv.writer(_Echo())

        def lines():
            yield writer.writerow(COLUMNS)
            for number, *rest in rows:
                yield writer.writerow([number, *(_safe(v) for v in rest)])

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="opted-out-numbers.csv"'
        return response
