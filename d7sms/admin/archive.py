"""Sendouts kept as the record of what was sent: archiving them, and deleting only unsent ones.

A sendout that handed anything to D7 is never deleted from the admin (its messages, reports and
costs are the audit trail); it is archived instead, which hides it from the default list. A
sendout that never reached D7 (scheduled, or cancelled before its time) may be deleted.
"""

from django.contrib import admin
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from d7sms import status, tasks
from d7sms.models import Sendout, db_alias


class Kept(Exception):
    """The sendout handed messages to D7 (perhaps while it was being deleted): it stays."""


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
