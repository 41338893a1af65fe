""""Duplicate this sendout": the compose form filled in from an earlier sendout; nothing is sent.

The text, sender and options are copied as they were stored. The recipients are the sendout's
own (its first attempts, not resends): pasted numbers for a plain sendout; for a personalised
one, a list rebuilt from each message's stored fields, kept as an upload like a file of them.
"""

import csv
import io

from django.contrib import messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.translation import gettext as _

from d7sms.admin import compose, uploads
from d7sms.admin.compose_forms import WHEN_NOW, WHERE_LOCAL, ComposeForm
from d7sms.admin.recipient_input import ListError
from d7sms.models import Message
from d7sms.recipients import InvalidNumber, normalise

PHONE = "phone"


def compose_copy(model_admin, request, sendout):
    """The compose page prefilled from ``sendout``."""
    initial = {
        "name": (_("Copy of %(name)s") % {"name": sendout})[:200],
        "sender": sendout.sender,
        "binary": bool(sendout.hex_content),
        "content": sendout.content,
        "hex_content": sendout.hex_content,
        "coding": sendout.coding if sendout.hex_content else 8,
        "dlr_level": sendout.dlr_level,
        "mode": sendout.mode,
        "when": WHEN_NOW,
        "where": WHERE_LOCAL,
        "region": "",  # the numbers are stored in E.164
    }
    firsts = Message.objects.filter(sendout=sendout, resend_of__isnull=True).order_by("pk")
    kept = None
    if sendout.personalised:
        try:
            kept, initial["column"] = _rebuilt_list(request.user, sendout, firsts)
        except ListError as exc:
            messages.error(request, _("The recipients could not be copied: %(why)s") % {"why": exc})
    else:
        initial["recipients"] = "\n".join(firsts.values_list("to", flat=True).iterator())
    messages.info(
        request,
        _("A copy of “%(sendout)s”: change what you need, then check and preview. Nothing is sent "
          "until you confirm.") % {"sendout": sendout},
    )
    return compose.render_compose_page(model_admin, request, ComposeForm(initial=initial), kept=kept)


def _rebuilt_list(user, sendout, firsts):
    """A ComposeUpload holding the recipients' stored fields, and the name of its phone column."""
    columns = list(sendout.columns)
    rows = firsts.values_list("to", "fields")
    first = next(iter(rows[:1]), None)
    # The phone column is the one whose value is the number sent to; an API caller's fields may
    # not hold it, and then a column of the numbers is added.
    phone = next((c for c in columns if first and _same_number((first[1] or {}).get(c), first[0])), None)
    header = columns if phone else [PHONE, *columns]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for to, fields in rows.iterator():
        fields = fields or {}
        writer.writerow(([] if phone else [to]) + [fields.get(c, "") for c in columns])
    name = f"{sendout}.csv".replace("/", "-")[:200]
    upload = SimpleUploadedFile(name, out.getvalue().encode("utf-8"), content_type="text/csv")
    return uploads.store(user, upload, None), phone or PHONE


def _same_number(value, number):
    try:
        return bool(value) and normalise(value) == number
    except InvalidNumber:
        return False
