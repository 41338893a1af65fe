"""What d7sms stores: sendouts, their messages, and every call D7 made back to us.

A message's status changes only in :mod:`d7sms.status`, a sendout's only in
:mod:`d7sms.progress`; these classes hold data.
"""

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, router
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from d7sms import merge, recipients


class MessageStatus(models.TextChoices):
    PENDING = "pending", _("Pending")  # stored, waiting for its schedule
    QUEUED = "queued", _("Queued")  # due; a worker will claim it
    SENDING = "sending", _("Sending")  # claimed; the call to D7 is under way
    UNKNOWN = "unknown", _("Unknown")  # the call's outcome is unknown: a person decides
    ACCEPTED = "accepted", _("Accepted")  # D7 took it and gave it an id
    AT_SMSC = "at_smsc", _("At SMSC")  # level-1 DLR: the operator's SMSC took it
    DELIVERED = "delivered", _("Delivered")
    UNDELIVERED = "undelivered", _("Undelivered")
    EXPIRED = "expired", _("Expired")
    REJECTED = "rejected", _("Rejected")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


#: Statuses no later event changes.
FINAL = frozenset(
    {
        MessageStatus.DELIVERED,
        MessageStatus.UNDELIVERED,
        MessageStatus.EXPIRED,
        MessageStatus.REJECTED,
        MessageStatus.FAILED,
        MessageStatus.CANCELLED,
    }
)
#: Final statuses of a message that did not arrive.
FAILURES = frozenset({MessageStatus.UNDELIVERED, MessageStatus.EXPIRED, MessageStatus.REJECTED, MessageStatus.FAILED})
NOT_FINAL = frozenset(set(MessageStatus) - FINAL)
#: A message is its recipient's latest attempt until it is sent again: a resend stamps
#: ``resend_token`` in the transaction that stores the copy (:func:`d7sms.status.take_for_resend`),
#: so this is "has no ``resent_as``" read from the row itself, without a join.
LATEST = Q(resend_token__isnull=True)


class SendoutStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    SUBMITTING = "submitting", _("Submitting")
    IN_PROGRESS = "in_progress", _("In progress")
    COMPLETED = "completed", _("Completed")
    COMPLETED_WITH_FAILURES = "completed_with_failures", _("Completed with failures")
    CANCELLED = "cancelled", _("Cancelled")


class SendMode(models.TextChoices):
    SINGLE = "single", _("One at a time")
    BATCH = "batch", _("In batches")


class Sendout(models.Model):
    """The same content to many recipients, composed by staff or sent with ``send_batch``."""

    name = models.CharField(_("name"), max_length=200, blank=True)
    sender = models.CharField(_("sender"), max_length=20, blank=True)
    content = models.TextField(_("content"), blank=True)
    hex_content = models.TextField(_("hex content"), blank=True)
    coding = models.PositiveSmallIntegerField(_("coding"), null=True, blank=True)
    parts = models.PositiveSmallIntegerField(_("parts per message"), default=1)
    dlr_level = models.PositiveSmallIntegerField(_("DLR level"), default=3)
    mode = models.CharField(_("sent by"), max_length=10, choices=SendMode.choices, default=SendMode.BATCH)
    schedule_at = models.DateTimeField(_("scheduled for"), null=True, blank=True)
    remote_schedule = models.BooleanField(
        _("scheduled at D7"), default=False, help_text=_("Handed to D7 at once, with the time D7 sends it at.")
    )
    status = models.CharField(_("status"), max_length=24, choices=SendoutStatus.choices, default=SendoutStatus.SCHEDULED)
    d7_batch_ids = models.JSONField(_("D7 batch ids"), default=list, blank=True)
    recipient_count = models.PositiveIntegerField(_("recipients"), default=0)
    duplicate_count = models.PositiveIntegerField(_("duplicates removed"), default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    submitted_at = models.DateTimeField(_("handed to D7"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    # Callback URLs carry this random key, so a token cannot be replayed across databases.
    key = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    # The one-time key of the confirmation that created it (a compose preview's, or an API
    # caller's idempotency key): a second confirmation of the same preview finds this row.
    confirm_key = models.UUIDField(null=True, blank=True, editable=False, unique=True)
    # Personalised: each message has its own text (``content`` is then the template as written,
    # and ``parts`` the most any message takes); ``columns`` names the recipients' own fields
    # (a spreadsheet's columns), in order, as stored on each message.
    personalised = models.BooleanField(_("personalised"), default=False)
    columns = models.JSONField(_("recipient fields"), default=list, blank=True)
    # Quiet hours: the local times (in each recipient's own zones) between which its messages
    # may arrive; both empty: no window. See d7sms.quiet_hours.
    send_from = models.TimeField(_("sending allowed from"), null=True, blank=True)
    send_until = models.TimeField(_("sending allowed until"), null=True, blank=True)
    # A copy of the saved template's name: what was sent is the text above, never a link.
    template_name = models.CharField(_("from template"), max_length=100, blank=True)
    # A sendout that reached D7 is the record of what was sent: the admin archives it (hidden
    # from the default list) and refuses to delete it. Code may still delete (retention is the
    # project's call).
    archived_at = models.DateTimeField(_("archived"), null=True, blank=True)
    # Appended to each message's text (and counted in its parts); ``content`` stays as written.
    opt_out_footer = models.CharField(_("opt-out footer"), max_length=160, blank=True)
    # Recipients left out because their number is on the suppression list when it was stored.
    suppressed_count = models.PositiveIntegerField(_("opted out, left out"), default=0)

    class Meta:
        verbose_name = _("sendout")
        verbose_name_plural = _("sendouts")
        ordering = ["-created_at", "-id"]
        permissions = [("send_sms", "Can send SMS")]
        indexes = [
            models.Index(fields=["status", "schedule_at"], name="d7sms_sendout_due"),
            models.Index(fields=["-created_at"], name="d7sms_sendout_created"),
        ]

    def __str__(self):
        return self.name or f"Sendout #{self.pk}"

    def handed_to_d7(self):
        """Did any message of this sendout leave for D7 (or may it have)? Such a sendout is kept."""
        if self.submitted_at is not None or self.d7_batch_ids:
            return True
        kept_here = (MessageStatus.PENDING, MessageStatus.QUEUED, MessageStatus.CANCELLED)
        return self.messages.exclude(status__in=kept_here).exists()



class Message(models.Model):
    """One SMS to one destination."""

    sendout = models.ForeignKey(Sendout, null=True, blank=True, on_delete=models.CASCADE, related_name="messages")
    to = models.CharField(_("to"), max_length=20, help_text=_("E.164"))
    sender = models.CharField(_("sender"), max_length=20, blank=True)
    content = models.TextField(_("content"), blank=True)
    hex_content = models.TextField(_("hex content"), blank=True)
    coding = models.PositiveSmallIntegerField(_("coding"), null=True, blank=True)
    parts = models.PositiveSmallIntegerField(_("parts"), default=1)
    dlr_level = models.PositiveSmallIntegerField(_("DLR level"), default=3)
    # The recipient's own fields of a personalised sendout (e.g. its spreadsheet row), so that
    # results can be joined back to the list they came from; null for everyone else.
    fields = models.JSONField(_("recipient fields"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=12, choices=MessageStatus.choices, default=MessageStatus.PENDING)
    # Sent even to a number on the suppression list (a transactional message the law allows).
    ignore_suppression = models.BooleanField(_("ignores opt-outs"), default=False)
    d7_message_id = models.CharField(_("D7 message id"), max_length=64, null=True, blank=True, unique=True)
    d7_batch_id = models.CharField(_("D7 batch id"), max_length=64, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    error_code = models.CharField(_("error code"), max_length=40, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    # Each message is sent again at most once: a later attempt resends the copy (a chain).
    # Sent with "Send a test to me" from a compose preview: belongs to no sendout.
    is_test = models.BooleanField(_("test"), default=False)
    resend_of = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="resent_as"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    scheduled_at = models.DateTimeField(_("scheduled for"), null=True, blank=True)
    # When a worker may (re)try it (null: at once); workers claim only messages that are due.
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    # When a task carrying it was last put on the queue (or will retry it). A due message whose
    # task is older than its due time, or long gone, is enqueued again by the sweeper.
    enqueued_at = models.DateTimeField(_("enqueued"), null=True, blank=True)
    claimed_at = models.DateTimeField(_("claimed"), null=True, blank=True)
    # Set by the one claim (or resend) that changed the row: a caller reads back by its own
    # token exactly the rows its conditional UPDATE changed, on every database.
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    resend_token = models.UUIDField(null=True, blank=True, editable=False)
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    accepted_at = models.DateTimeField(_("accepted"), null=True, blank=True)
    final_at = models.DateTimeField(_("final status at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["-created_at", "-id"]
        constraints = [
            # A resend may go to the same number in the same sendout; the original may not repeat.
            # Only while it is the latest attempt: deleting an original that was sent again
            # nulls its copy's resend_of before the original's row goes, and the copy must not
            # collide with it then.
            models.UniqueConstraint(
                fields=["sendout", "to"], condition=Q(resend_of__isnull=True, resend_token__isnull=True),
                name="d7sms_message_sendout_to",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="d7sms_msg_due"),
            # A sendout's figures count its recipients' latest attempts (LATEST).
            models.Index(fields=["sendout", "status"], condition=Q(resend_token__isnull=True), name="d7sms_msg_latest"),
            models.Index(fields=["to"], name="d7sms_msg_to"),
            models.Index(fields=["-created_at"], name="d7sms_msg_created"),
            models.Index(fields=["final_at"], name="d7sms_msg_final"),
        ]

    def __str__(self):
        return f"{self.to} ({self.status})"

    @property
    def is_final(self):
        return self.status in FINAL

    def handed_to_d7(self):
        """Did this message leave for D7 (or may it have)? Such a message is kept."""
        kept_here = (MessageStatus.PENDING, MessageStatus.QUEUED, MessageStatus.CANCELLED)
        return self.status not in kept_here or self.submitted_at is not None or bool(self.d7_message_id)


class DeliveryReport(models.Model):
    """One DLR call as received; applied to its message once the message is known."""

    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="delivery_reports"
    )
    d7_message_id = models.CharField(_("D7 message id"), max_length=64, blank=True, db_index=True)
    level = models.PositiveSmallIntegerField(_("level"), null=True, blank=True)
    message_status = models.CharField(_("message status"), max_length=40, blank=True)
    id_smsc = models.CharField(_("SMSC id"), max_length=64, blank=True)
    err = models.CharField(_("error"), max_length=10, blank=True)
    submitted_date = models.DateTimeField(_("submit date"), null=True, blank=True)
    done_date = models.DateTimeField(_("done date"), null=True, blank=True)
    params = models.JSONField(_("parameters"), default=dict)
    method = models.CharField(max_length=8, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    received_at = models.DateTimeField(_("received"), auto_now_add=True)
    applied_at = models.DateTimeField(_("applied"), null=True, blank=True)
    problem = models.CharField(_("problem"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("delivery report")
        verbose_name_plural = _("delivery reports")
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["message", "received_at"], name="d7sms_dlr_message"),
            models.Index(
                fields=["d7_message_id"], condition=Q(message__isnull=True), name="d7sms_dlr_orphans"
            ),
        ]

    def __str__(self):
        return f"DLR {self.d7_message_id} level {self.level}: {self.message_status}"


class BatchCallback(models.Model):
    """One callback or errback call of a D7 batch (a ``/secure/sendbatch`` call), as received."""

    class Kind(models.TextChoices):
        CALLBACK = "callback", _("callback")
        ERRBACK = "errback", _("errback")

    sendout = models.ForeignKey(Sendout, null=True, blank=True, on_delete=models.SET_NULL, related_name="callbacks")
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="callbacks")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    d7_batch_id = models.CharField(_("D7 batch id"), max_length=64, blank=True)
    to = models.CharField(_("to"), max_length=32, blank=True)
    status = models.SmallIntegerField(null=True, blank=True)
    status_text = models.TextField(_("status text"), blank=True)
    d7_message_id = models.CharField(_("D7 message id"), max_length=64, blank=True, db_index=True)
    params = models.JSONField(_("parameters"), default=dict)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    received_at = models.DateTimeField(_("received"), auto_now_add=True)
    applied_at = models.DateTimeField(_("applied"), null=True, blank=True)
    problem = models.CharField(_("problem"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("batch callback")
        verbose_name_plural = _("batch callbacks")
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["message", "received_at"], name="d7sms_cb_message")]

    def __str__(self):
        return f"{self.kind} {self.to}"


class MessageTemplate(models.Model):
    """A saved message text, with ``{field}`` placeholders, for staff to pick when composing.

    Sending copies the text: editing a template later never changes what was sent.
    """

    name = models.CharField(_("name"), max_length=100, unique=True)
    text = models.TextField(
        _("text"),
        help_text=_("Placeholders such as {name} are filled from each recipient's fields; write {{ and }} for literal braces."),
    )
    sender = models.CharField(
        _("sender"), max_length=20, blank=True, help_text=_("Used when the sendout names no sender of its own.")
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        errors = {}
        try:
            merge.compile_template(self.text)
        except merge.MergeError as exc:
            errors["text"] = str(exc)
        if self.sender and not recipients.is_valid_sender(self.sender):
            errors["sender"] = recipients.SENDER_RULE
        if errors:
            raise ValidationError(errors)


class ComposeUpload(models.Model):
    """A recipient list uploaded while composing, read and kept until the sendout is confirmed.

    Kept here rather than in the page, so that 100,000 rows of fields need not travel back and
    forth; bound to the user who uploaded it and deleted by housekeeping after MAX_AGE.
    """

    MAX_AGE = 24 * 3600

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    name = models.CharField(max_length=255)
    # One {"name", "numbers"} per column, and a few rows for the live counter: see d7sms.admin.uploads.
    columns = models.JSONField(default=list)
    samples = models.JSONField(default=list)
    header = models.CharField(max_length=100, blank=True)
    row_count = models.PositiveIntegerField(default=0)
    # The rows, compressed: see d7sms.admin.uploads.
    data = models.BinaryField()

    class Meta:
        verbose_name = _("compose upload")
        verbose_name_plural = _("compose uploads")

    def __str__(self):
        return self.name


class StaffProfile(models.Model):
    """A staff member's own SMS settings: where "Send a test to me" goes and their time zone."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="d7sms_profile")
    phone = models.CharField(
        _("my phone number"), max_length=20, blank=True,
        help_text=_("Where “Send a test to me” goes; with +country code."),
    )
    time_zone = models.CharField(
        _("my time zone"), max_length=64, blank=True,
        help_text=_("Schedules are typed and shown in it. Empty: your browser's time zone."),
    )

    class Meta:
        verbose_name = _("my SMS settings")
        verbose_name_plural = _("my SMS settings")

    def __str__(self):
        return str(self.user)

    def clean(self):
        import zoneinfo

        if self.phone:
            try:
                self.phone = recipients.normalise(self.phone)
            except recipients.InvalidNumber as exc:
                raise ValidationError({"phone": str(exc)}) from None
        if self.time_zone and self.time_zone not in zoneinfo.available_timezones():
            raise ValidationError({"time_zone": _("Unknown time zone; use a name such as America/New_York.")})


class Suppression(models.Model):
    """A number that asked not to be contacted: nothing but a transactional message goes to it."""

    class Source(models.TextChoices):
        ADMIN = "admin", _("Admin")
        API = "api", _("API")
        IMPORT = "import", _("Import")
        REPLY = "reply", _("Reply")

    number = models.CharField(_("number"), max_length=20, unique=True, help_text=_("E.164"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices, default=Source.ADMIN)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("opted out"), auto_now_add=True)

    class Meta:
        verbose_name = _("opted-out number")
        verbose_name_plural = _("opted-out numbers")
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.number

    def clean(self):
        try:
            self.number = recipients.normalise(self.number)
        except recipients.InvalidNumber as exc:
            raise ValidationError({"number": f"Invalid number {self.number!r}: {exc}"}) from None


class AccountState(models.Model):
    """The one row that says whether sending is paused, and the last balance read."""

    paused = models.BooleanField(default=False)
    pause_reason = models.TextField(blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    # Whose refusal the pause is: a keyed fingerprint of the D7 endpoint and credentials D7
    # refused (never the password, nor anything to guess it from); blank: every account.
    paused_account = models.CharField(max_length=64, blank=True)
    # The account had no credit (rather than its credentials being refused): then only a
    # reading of that same account lifts the pause.
    pause_no_credit = models.BooleanField(default=False)
    balance = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    sms_count = models.BigIntegerField(null=True, blank=True)
    balance_read_at = models.DateTimeField(null=True, blank=True)
    balance_error = models.TextField(blank=True)

    class Meta:
        verbose_name = _("account state")
        verbose_name_plural = _("account state")

    def __str__(self):
        return "paused" if self.paused else "active"

    @classmethod
    def get(cls):
        """Return the single row, creating it on first use."""
        return cls.objects.get_or_create(pk=1)[0]


def db_alias():
    """The database d7sms writes to, as the project's routers decide.

    Every d7sms model lives in one database: transactions and hand-written statements use this.
    """
    return router.db_for_write(Message)
