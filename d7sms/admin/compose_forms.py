"""The compose form: what staff type to create a sendout, and its validation."""

import functools
import re

import phonenumbers
from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from d7sms import conf, encoding, quiet_hours, recipients
from d7sms.models import MessageTemplate, SendMode

DLR_LEVELS = (
    (3, _("Operator and handset (recommended)")),
    (2, _("Handset only")),
    (1, _("Operator (SMSC) only")),
    (0, _("No delivery reports")),
)
CODINGS = (
    (8, _("8: UCS-2 (UTF-16BE text)")),
    (4, _("4: 8-bit binary")),
    (2, _("2: 8-bit binary (unspecified)")),
    (3, _("3: Latin-1")),
    (0, _("0: SMSC default (GSM-7)")),
)
WHEN_NOW, WHEN_LATER = "now", "later"
WHERE_LOCAL, WHERE_D7 = "local", "d7"
_DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


@functools.lru_cache(maxsize=1)
def region_choices():
    """Every region phonenumbers knows, as ``(code, "Name (+44, GB)")``, sorted by name."""
    # Imported here: the geocoder's data is large, and every process importing the admin
    # (cluster workers included) would otherwise carry it.
    from phonenumbers import geocoder

    rows = []
    for region in phonenumbers.SUPPORTED_REGIONS:
        example = phonenumbers.example_number(region)
        name = geocoder.country_name_for_number(example, "en") if example else ""
        code = phonenumbers.country_code_for_region(region)
        rows.append((region, f"{name or region} (+{code}, {region})"))
    rows.sort(key=lambda row: row[1])
    return [("", _("None: every number starts with +country code"))] + rows


class ComposeForm(forms.Form):
    """Everything about a sendout except the recipients' contents, which are read separately."""

    name = forms.CharField(label=_("Name"), max_length=200, required=False, help_text=_("For your own reference."))
    sender = forms.CharField(
        label=_("Sender"),
        max_length=16,
        help_text=_("Up to 11 letters and digits, or a phone number."),
    )
    binary = forms.BooleanField(label=_("Binary content (hex)"), required=False)
    content = forms.CharField(label=_("Message"), required=False, strip=False, widget=forms.Textarea(attrs={"rows": 5}))
    hex_content = forms.CharField(
        label=_("Hex content"), required=False, widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"})
    )
    coding = forms.TypedChoiceField(
        label=_("Coding"), choices=CODINGS, coerce=int, initial=8, required=False, empty_value=None
    )
    opt_out_footer = forms.CharField(
        label=_("Opt-out footer"),
        max_length=160,
        required=False,
        help_text=_("Added on its own line after the message (e.g. “Reply STOP to opt out”) and counted in "
                    "its parts. Not added to binary content."),
    )
    recipients = forms.CharField(
        label=_("Paste numbers"),
        required=False,
        strip=False,  # a 100,000-line paste is not copied just to trim it
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        help_text=_("One per line, or separated by commas or semicolons."),
    )
    upload = forms.FileField(
        label=_("…or upload a list"),
        required=False,
        help_text=_("CSV or Excel (.xlsx). Its columns become merge fields such as {name} for the message."),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,.xlsx,text/csv"}),
    )
    column = forms.CharField(
        label=_("Phone column"),
        max_length=100,
        required=False,
        help_text=_("Its number (1 = first) or header name. Empty: the column that holds phone numbers."),
    )
    sender_column = forms.CharField(
        label=_("Sender column"),
        max_length=100,
        required=False,
        help_text=_("Optional: a column whose value is each recipient's sender (empty cells use the sender above)."),
    )
    template = forms.ModelChoiceField(
        label=_("Saved template"),
        queryset=MessageTemplate.objects.all(),
        to_field_name="name",
        required=False,
        empty_label=_("None: write the message below"),
        help_text=_("Fills in the message (and its sender, if it has one); you can still change both."),
    )
    region = forms.ChoiceField(
        label=_("Country for national numbers"),
        required=False,
        help_text=_("Numbers written without +country code are read as numbers of this country."),
    )
    dlr_level = forms.TypedChoiceField(label=_("Delivery reports"), choices=DLR_LEVELS, coerce=int)
    mode = forms.ChoiceField(
        label=_("Hand to D7"),
        choices=(
            (SendMode.BATCH, _("In batches (recommended for many recipients)")),
            (SendMode.SINGLE, _("One call per message")),
        ),
        initial=SendMode.BATCH,
    )
    when = forms.ChoiceField(
        label=_("Send"),
        choices=((WHEN_NOW, _("Now")), (WHEN_LATER, _("At a date and time"))),
        initial=WHEN_NOW,
        widget=forms.RadioSelect(attrs={"class": "radiolist"}),
    )
    schedule_at = forms.DateTimeField(
        label=_("Date and time"),
        required=False,
        input_formats=[_DATETIME_LOCAL, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=_DATETIME_LOCAL),
    )
    where = forms.ChoiceField(
        label=_("Scheduled by"),
        choices=(
            (WHERE_LOCAL, _("This site: messages are handed to D7 when the time comes (can be cancelled until then)")),
            (WHERE_D7, _("D7: handed over now with the time; D7 sends them then")),
        ),
        initial=WHERE_LOCAL,
        widget=forms.RadioSelect(attrs={"class": "radiolist"}),
    )
    send_from = forms.TimeField(
        label=_("Send only from"),
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    send_until = forms.TimeField(
        label=_("…until"),
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text=_(
            "Quiet hours: messages arrive only between these times of day in each recipient's own time zone "
            "(all of them, where a number spans several); the others wait. Leave both empty to send at any hour."
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].choices = region_choices()
        self.fields["region"].initial = conf.get("DEFAULT_REGION") or ""
        self.fields["sender"].initial = conf.get("DEFAULT_SENDER")
        self.fields["dlr_level"].initial = conf.get("DLR_LEVEL")
        window = quiet_hours.default()
        if window is not None:
            self.fields["send_from"].initial, self.fields["send_until"].initial = window.start, window.end
        self.fields["opt_out_footer"].initial = conf.get("OPT_OUT_FOOTER")
        tz = timezone.get_current_timezone_name()
        self.fields["schedule_at"].help_text = _("In your time zone, %(tz)s.") % {"tz": tz}

    def clean_sender(self):
        sender = self.cleaned_data["sender"].strip()
        if not recipients.is_valid_sender(sender):
            raise forms.ValidationError(
                _("Use up to 11 letters, digits or spaces (e.g. “MyShop”), or a number of up to 15 digits.")
            )
        return sender

    def clean_hex_content(self):
        return re.sub(r"\s+", "", self.cleaned_data["hex_content"])

    def clean(self):
        data = super().clean()
        if data.get("binary"):
            coding = data.get("coding")
            if coding is None:
                self.add_error("coding", _("Choose the coding of the hex content."))
            elif "hex_content" in data:
                try:
                    encoding.validate_hex_content(data["hex_content"], coding)
                except ValueError as exc:
                    self.add_error("hex_content", str(exc))
        elif not data.get("content", "").strip():
            saved = data.get("template")
            if saved is not None:
                # Without JavaScript picking a template does not fill the text in.
                data["content"] = saved.text
            else:
                self.add_error("content", _("Write the message."))
        if data.get("when") == WHEN_LATER:
            at = data.get("schedule_at")
            if at is None:
                if "schedule_at" not in self.errors:
                    self.add_error("schedule_at", _("Give the date and time to send at."))
            elif at <= timezone.now():
                self.add_error("schedule_at", _("This time has passed; choose a time in the future."))
            if data.get("where") == WHERE_D7 and data.get("mode") != SendMode.BATCH:
                self.add_error("mode", _("Only sendouts handed to D7 in batches can be scheduled at D7."))
        if "send_from" in data and "send_until" in data:
            self._clean_quiet_hours(data)
        if data.get("recipients", "").strip() and data.get("upload"):
            self.add_error("upload", _("Paste numbers or upload a file, not both."))
        return data

    def _clean_quiet_hours(self, data):
        start, end = data["send_from"], data["send_until"]
        if (start is None) != (end is None):
            self.add_error("send_until" if end is None else "send_from", _("Give both times, or neither to send at any hour."))
        elif start is not None:
            try:
                data["quiet_hours"] = quiet_hours.Window(start.replace(second=0), end.replace(second=0))
            except quiet_hours.WindowError as exc:
                self.add_error("send_until", str(exc))
        else:
            data["quiet_hours"] = None

    def draft_fields(self):
        """The cleaned values as JSON-able strings, for a draft or for re-filling the form."""
        data = self.cleaned_data
        at = data.get("schedule_at")
        return {
            "name": data["name"],
            "sender": data["sender"],
            "binary": bool(data.get("binary")),
            "content": data.get("content", ""),
            "hex_content": data.get("hex_content", ""),
            "opt_out_footer": "" if data.get("binary") else data.get("opt_out_footer", "").strip(),
            "coding": data.get("coding") if data.get("coding") is not None else "",
            "recipients": data.get("recipients", ""),
            "column": data.get("column", ""),
            "sender_column": data.get("sender_column", ""),
            "template": data["template"].name if data.get("template") else "",
            "region": data.get("region", ""),
            "dlr_level": data["dlr_level"],
            "mode": data["mode"],
            "when": data["when"],
            "schedule_at": at.isoformat() if at else "",
            "where": data["where"],
            "send_from": data["send_from"].strftime("%H:%M") if data.get("send_from") else "",
            "send_until": data["send_until"].strftime("%H:%M") if data.get("send_until") else "",
        }
