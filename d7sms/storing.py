"""Storing a sendout: its messages in one transaction, then enqueued once that commits; and the
copies a resend or retry makes, held for their sendout's quiet hours as its messages were.

:func:`d7sms.api.send_batch` checks its arguments and calls these; everything a sendout's rows
are decided by (suppression list, quiet hours, the confirm key's constraint) happens inside
:func:`store`'s transaction, so a refusal stores nothing.
"""

from collections import Counter

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from d7sms import creation, personalise, progress, quiet_hours, scheduling, suppression, tasks, validation
from d7sms.models import Message, MessageStatus, MessageTemplate, SendMode, Sendout, Suppression, db_alias
from d7sms.recipients import clean_list


def saved_template(content, template):
    """The MessageTemplate given as ``content`` or (by instance or name) as ``template``."""
    if template is not None and content is not None:
        raise ValidationError("Give content or a template, not both.", code="content")
    found = content if isinstance(content, MessageTemplate) else template
    if found is None or isinstance(found, MessageTemplate):
        return found
    try:
        return MessageTemplate.objects.get(name=found)
    except MessageTemplate.DoesNotExist:
        raise ValidationError(f"There is no message template named {found!r}.", code="template") from None


def plain(items, content, hex_content, coding, footer):
    """One text to every number: return the message inserter and the sendout's fields."""
    # The text's own problems are named as such, before the footer is added.
    written = validation.content(content, hex_content, coding)
    text, hex_text, coding, parts = (
        validation.content(suppression.with_footer(content, footer), hex_content, coding) if footer else written
    )
    numbers, problems, duplicates = clean_list(items)
    if problems:
        raise ValidationError(
            [ValidationError(str(p), code="invalid_number", params={"position": p.position}) for p in problems]
        )
    shared = {"content": text, "hex_content": hex_text, "coding": coding, "parts": parts}

    def insert(**common):
        creation.insert_messages(numbers, **common, **shared)

    # The sendout keeps the text as written (its footer apart); its messages carry both, and
    # its parts and coding are theirs.
    return insert, {
        **shared, "content": written[0], "hex_content": written[1], "recipient_count": len(numbers),
        "duplicate_count": duplicates,
    }


def personalised(items, content, hex_content, coding, sender, footer):
    """A text per recipient: return the message inserter and the sendout's fields."""
    template = shared = None
    if hex_content not in (None, ""):
        shared = validation.content(content, hex_content, coding)
    elif content not in (None, ""):
        if not isinstance(content, str):
            raise ValidationError("content must be text.", code="content")
        template = personalise.template_or_error(content)
    elif coding is not None:
        raise ValidationError("coding goes with hex_content; text chooses its own coding.", code="coding")

    def insert(**common):
        common.pop("sender")  # each row carries its own
        # Rows are stored as they are read, so memory stays flat however many there are; a
        # problem found on the way raises here, inside the transaction, and nothing is stored.
        out = personalise.Prepared()
        rows = personalise.each_row(
            items, template=template, shared_content=shared, sender=sender, out=out, footer=footer
        )
        creation.insert_personalised(rows, **common)
        out.check()
        if not out.count:
            raise ValidationError("No recipients.", code="no_recipients")
        return {
            "parts": out.max_parts, "columns": out.columns, "recipient_count": out.count,
            "duplicate_count": F("duplicate_count") + out.duplicates,
        }

    fields = {
        "content": content if template is not None else "",
        "hex_content": shared[1] if shared else "",
        "coding": shared[2] if shared else None,
        "personalised": True,
        "duplicate_count": 0,
    }
    return insert, fields


def store(insert, key, held, user, window, **fields):
    """Store the sendout and its messages in one transaction; enqueue them once it commits."""
    alias = db_alias()
    when, mode = fields["schedule_at"], fields["mode"]
    release = quiet_hours.Plan(window, when or timezone.now()) if window else None
    with transaction.atomic(using=alias):
        sendout = Sendout.objects.create(confirm_key=key, created_by=user, **fields)
        learned = insert(
            scheduled=held, sendout=sendout, scheduled_at=when if held else None,
            enqueued_at=None if held else timezone.now(), created_by=user, sender=fields["sender"],
            dlr_level=fields["dlr_level"], release=release,
        )
        first = when if held else None
        if release is not None:
            _refuse_outside(release, fields["remote_schedule"])  # raising here stores nothing
            first = release.now if held and release.at_once else min(release.waiting, default=None)
        if learned:
            # What only storing the rows could tell (a personalised sendout's counts).
            Sendout.objects.filter(pk=sendout.pk).update(**learned)
            sendout.refresh_from_db(fields=list(learned))
        _leave_out_suppressed(sendout)
        ids = [] if held else list(
            Message.objects.filter(sendout=sendout, status=MessageStatus.QUEUED).order_by("pk").values_list("pk", flat=True)
        )
        progress.refresh(sendout.pk)
        sendout.refresh_from_db(fields=["status"])
        if first is not None:
            # Fires the messages due then; firing moves the schedule on to the next release.
            tasks.hold(when=first, sendout_id=sendout.pk)
        if ids and mode == SendMode.BATCH:
            tasks.after_commit(lambda: tasks.enqueue_batch_chunks(sendout.pk, ids))
        elif ids:
            tasks.after_commit(lambda: tasks.enqueue_single(ids))
    return sendout


def copies(originals, user):
    """Store a copy of each message of ``originals``, sending it again, and enqueue the copies
    that may go now once the caller's transaction commits; return ``(copies, waiting)``, where
    ``waiting`` counts the copies held for quiet hours by their release instant.

    A copy of a message whose sendout has quiet hours is held (``pending``) until the window
    opens for its number, read from now, as the sendout's own messages were; the sendout's
    schedule moves to its earliest pending release, which fires them. A number the window never
    opens for raises ``ValidationError`` (code ``quiet_hours``) before anything is stored.
    """
    now = timezone.now()
    sendout_ids = {m.sendout_id for m in originals if m.sendout_id}
    plans = {
        pk: quiet_hours.Plan(quiet_hours.Window(start, end), now)
        for pk, start, end in Sendout.objects.filter(pk__in=sendout_ids, send_from__isnull=False)
        .values_list("pk", "send_from", "send_until")
    }
    made, waiting = [], Counter()
    for original in originals:
        plan = plans.get(original.sendout_id)
        when = plan.release(original.to) if plan else None
        held = when is not None and when > now
        waiting[when] += held
        made.append(creation.copy_of(original, user, release=when if held else None))
    for plan in plans.values():
        _refuse_outside(plan, False)
    made = creation.create_copies(made)
    for sendout_id in sendout_ids:
        progress.refresh(sendout_id)
    for sendout_id in {c.sendout_id for c in made if c.status == MessageStatus.PENDING}:
        # Fires this sendout's earliest release, its own messages' or a copy's.
        tasks.hold(when=scheduling.next_release(sendout_id), sendout_id=sendout_id)
    modes = dict(Sendout.objects.filter(pk__in=sendout_ids).values_list("pk", "mode"))
    rows = [(c.pk, c.sendout_id, modes.get(c.sendout_id)) for c in made if c.status == MessageStatus.QUEUED]
    if rows:
        tasks.after_commit(lambda: tasks.enqueue(rows))
    return made, +waiting


def window(value):
    """The quiet hours ``send_batch`` was given: None takes the QUIET_HOURS setting."""
    try:
        return quiet_hours.default() if value is None else quiet_hours.parse(value)
    except quiet_hours.WindowError as exc:
        raise ValidationError(str(exc), code="quiet_hours") from None


def _refuse_outside(release, remote):
    """Raise for numbers the window never opens for, and for a remote schedule outside it."""
    if release.never:
        raise ValidationError(release.error(), code="quiet_hours", params={"numbers": release.never})
    if remote and release.waiting:
        first, count = min(release.waiting), sum(release.waiting.values())
        raise ValidationError(
            f"D7 sends a remote schedule at one time, and at {release.now.isoformat()} the quiet hours "
            f"{release.window} are closed for {count} number(s) (the first opens at {first.isoformat()}). "
            "Schedule it at this site, which holds each message until its window opens, or pick a time "
            "inside the window.",
            code="quiet_hours", params={"count": count},
        )


def _leave_out_suppressed(sendout):
    """Delete the just-stored messages of ``sendout`` to numbers on the suppression list, as
    the database finds them, and count them on the sendout; nothing may be left to send."""
    if not Suppression.objects.exists():
        return  # nobody opted out: no scan of every stored row (the claim checks again anyway)
    left_out = Message.objects.filter(suppression.blocked_q(), sendout=sendout).delete()[1].get(Message._meta.label, 0)
    if not left_out:
        return
    Sendout.objects.filter(pk=sendout.pk).update(
        suppressed_count=left_out, recipient_count=F("recipient_count") - left_out
    )
    sendout.refresh_from_db(fields=["suppressed_count", "recipient_count"])
    if not sendout.recipient_count:
        raise ValidationError(
            f"Every recipient ({left_out}) is on the suppression list (opted out): nothing to send.",
            code="all_suppressed", params={"count": left_out},
        )
