"""Saved message templates: texts with merge fields that staff pick when composing."""

from django import forms
from django.contrib import admin
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy

from d7sms import encoding, merge
from d7sms.admin import display


class MessageTemplateForm(forms.ModelForm):
    class Meta:
        widgets = {"text": forms.Textarea(attrs={"rows": 5})}


class MessageTemplateAdmin(admin.ModelAdmin):
    """Edit saved templates; the model's ``clean`` refuses a malformed text or sender."""

    form = MessageTemplateForm
    list_display = ("name", "sender", "short_text", "merge_fields", "updated_at")
    search_fields = ("name", "text")
    readonly_fields = ("merge_fields", "length")
    fields = ("name", "text", "sender", "merge_fields", "length")

    @property
    def media(self):
        return super().media + display.MEDIA

    @admin.display(description=gettext_lazy("text"))
    def short_text(self, obj):
        return obj.text if len(obj.text) <= 80 else obj.text[:79] + "…"

    @admin.display(description=gettext_lazy("merge fields"))
    def merge_fields(self, obj):
        try:
            fields = merge.compile_template(obj.text or "").fields
        except merge.MergeError as exc:
            return str(exc)
        return format_html_join(" ", "<code>{{{}}}</code>", ((f,) for f in fields)) or "–"

    @admin.display(description=gettext_lazy("length without its fields"))
    def length(self, obj):
        try:
            fixed = "".join(merge.compile_template(obj.text or "").pieces[0::2])
        except merge.MergeError as exc:
            return str(exc)
        info = encoding.analyse(fixed)
        coding = "GSM-7" if info.coding == encoding.GSM7 else "UCS-2"
        return f"{info.units} units, {coding}, {info.parts} part(s); each field's value adds to it"
