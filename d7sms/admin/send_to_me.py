""""Send a test to me" from a compose preview: one message of the draft, to the staff member.

It goes through the public ``send_sms`` like any message (so every rule of that door holds),
is marked ``is_test`` in the same transaction, before anything is enqueued, and belongs to no
sendout: no sendout's figures count it.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from d7sms.admin import personalised
from d7sms.models import Message, db_alias


def send(request, fields, kept=None, plan=None):
    """Send the draft ``fields`` (for an uploaded list ``kept``, as its first recipient gets it)
    to the number typed in ``test_to``; tell the user what happened. Return the Message or None."""
    from d7sms import api

    if fields["binary"]:
        content = {"hex_content": fields["hex_content"], "coding": int(fields["coding"])}
    else:
        content = {"content": fields["content"]}
    sender = fields["sender"]
    if kept is not None:
        first = next(personalised.recipients(kept, plan), None)
        if first is not None:
            sender = first.sender or sender
            if plan.template is not None:
                content = {"content": plan.template.render(first.fields)}
    to = request.POST.get("test_to", "").strip()
    if not to:
        messages.error(request, _("Type the number to send the test to (or keep yours in your SMS settings)."))
        return None
    try:
        with transaction.atomic(using=db_alias()):
            test = api.send_sms(to, **content, sender=sender, dlr_level=fields["dlr_level"], user=request.user)
            Message.objects.filter(pk=test.pk).update(is_test=True)
    except ValidationError as exc:
        messages.error(request, _("The test was not sent: %(why)s") % {"why": " ".join(exc.messages)})
        return None
    messages.success(
        request,
        _("A test message is on its way to %(to)s. It is not part of the sendout and is not counted "
          "in it; nothing else was sent.") % {"to": test.to},
    )
    return test
