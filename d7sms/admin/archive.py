"""Sendouts and messages kept as the record of what was sent: archiving sendouts, and deleting
only what never left.

A sendout that handed anything to D7 is never deleted from the admin (its messages, reports and
costs are the audit trail); it is archived instead, which hides it from the default list. A
sendout that never reached D7 (scheduled, or cancelled before its time) may be deleted.

A message is deleted from the admin only when it never left for D7 and was not sent again:

=====================================  ===========================================================
the message                            deleting it
=====================================  ===========================================================
handed to D7 (or maybe: ``sending``,   refused: it is the record of what was sent
``unknown``)
sent again (it has a copy)             refused: a recipient's attempts stay together; its copy,
                                       if that never left, can be deleted first
a copy that never left                 deleted; the message it sent again becomes the recipient's
                                       latest attempt again (as if never sent again)
waiting or cancelled                   deleted (a waiting one is cancelled first, so no worker
                                       takes it); its sendout's schedule moves on
=====================================  ===========================================================
"""

from django.contrib import admin
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from d7sms import progress, scheduling, status, tasks
from d7sms.models import Message, Sendout, db_alias


class Kept(Exception):
    """The sendout or message is kept (it reached D7, perhaps while it was being deleted)."""


def delete_unsent(sendout):
    """Delete ``sendout`` if none of its messages left for D7; raise :class:`Kept` otherwise.

    The waiting messages are cancelled first, in the same transaction: the conditional update
    takes them from any worker about to claim them, so what is found handed afterwards is all
    there is. If anything was, the transaction rolls back and nothing changes.
    """
    with transaction.atomic(using=db_alias()):
        status.cancel_waiting(sendout)
        fresh = Sendout.objects.filter(pk=sendout.pk).first()
        if fresh is None:
            return
        if fresh.handed_to_d7():
            raise Kept(sendout)
        tasks.drop_schedule(sendout_id=sendout.pk)
        fresh.delete()


def message_kept_reason(message):
    """Why the admin keeps ``message`` (a sentence to show), or "" when it may be deleted."""
    values = {"id": message.pk, "to": message.to}
    if message.handed_to_d7():
        return _(
            "Message #%(id)s to %(to)s was not deleted: it was handed to D7 and is kept as the record of what was sent."
        ) % values
    if message.resend_token is not None:
        values["copy"] = Message.objects.filter(resend_of=message).values_list("pk", flat=True).first()
        return _(
            "Message #%(id)s to %(to)s was not deleted: it was sent again as message #%(copy)s, and a recipient's "
            "attempts are kept together. Delete #%(copy)s first if it never left."
        ) % values
    return ""


def delete_unsent_message(message):
    """Delete ``message`` if it never left for D7 and was not sent again; raise :class:`Kept`
    (saying why) otherwise, and nothing changes. See the table above."""
    with transaction.atomic(using=db_alias()):
        if not status.take_for_deletion(message):
            fresh = Message.objects.filter(pk=message.pk).first()
            if fresh is None:
                return
            raise Kept(message_kept_reason(fresh))
        if message.resend_of_id is not None:
            status.forget_resend(message.resend_of_id)
        # It has no copy (it was not sent again), so deleting it nulls no resend_of.
        Message.objects.filter(pk=message.pk).delete()
        if message.sendout_id is None:
            tasks.drop_schedule(message_id=message.pk)
            return
        later = scheduling.next_release(message.sendout_id)
        if later is None:
            tasks.drop_schedule(sendout_id=message.sendout_id)
        else:
            tasks.hold(when=later, sendout_id=message.sendout_id)
        progress.refresh_after_commit([message.sendout_id])


def deletable(messages):
    """Split ``messages`` into those the admin may delete together and ``{message: reason}`` for
    the rest: a message sent again is deletable only with its copy (deleted first)."""
    copies = dict(
        Message.objects.filter(resend_of__in=[m.pk for m in messages]).values_list("resend_of_id", "pk")
    )
    chosen, kept = set(), {}
    for message in sorted(messages, key=lambda m: -m.pk):  # a copy always comes after what it resent
        resent_with_it = message.resend_token is not None and copies.get(message.pk) in chosen
        reason = "" if resent_with_it and not message.handed_to_d7() else message_kept_reason(message)
        if reason:
            kept[message] = reason
        else:
            chosen.add(message.pk)
    return chosen, kept


def archive(queryset):
    """Archive the sendouts of ``queryset`` not archived yet; return how many."""
    return queryset.filter(archived_at__isnull=True).update(archived_at=timezone.now())


def unarchive(queryset):
    """Bring archived sendouts of ``queryset`` back to the default list; return how many."""
    return queryset.filter(archived_at__isnull=False).update(archived_at=None)


def kept_message(sendout):
    return _(
        "“%(sendout)s” was not deleted: it handed messages to D7 and is kept as their record. "
        "Archive it instead to hide it from the list."
    ) % {"sendout": sendout}


class ArchivedFilter(admin.SimpleListFilter):
    """Archived sendouts are hidden unless asked for."""

    title = gettext_lazy("archived")
    parameter_name = "archived"

    def lookups(self, request, model_admin):
        return (("", _("Not archived")), ("all", _("All")), ("yes", _("Archived only")))

    def choices(self, changelist):
        # The default ("Not archived") is the empty value, not Django's "All".
        for value, label in self.lookup_choices:
            yield {
                "selected": (self.value() or "") == value,
                "query_string": changelist.get_query_string({self.parameter_name: value} if value else {},
                                                            [] if value else [self.parameter_name]),
                "display": label,
            }

    def queryset(self, request, queryset):
        value = self.value()
        if value == "all":
            return queryset
        if value == "yes":
            return queryset.filter(archived_at__isnull=False)
        return queryset.filter(archived_at__isnull=True)
