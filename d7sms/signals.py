"""Signals for host projects.

All are sent after the change is committed, so a receiver sees the database as it is.
"""

from django.dispatch import Signal

#: A message's status changed. kwargs: ``message_id``, ``old``, ``new`` (status strings).
message_status_changed = Signal()

#: Every message of a sendout went as far as it can (a final status, or as far as the reports it
#: asked for go). Sent once per sendout: not again when a retry re-opens it. kwargs: ``sendout``.
sendout_completed = Signal()

#: A DLR was stored. kwargs: ``report`` (DeliveryReport), ``message`` (Message or None for an orphan).
delivery_report_received = Signal()

#: Sending stopped because D7 rejected the credentials or ran out of credit. kwargs: ``reason``.
sending_paused = Signal()

#: Sending resumed after a successful balance check.
sending_resumed = Signal()

#: A number was put on the suppression list. kwargs: ``number`` (E.164), ``reason``, ``source``.
number_suppressed = Signal()

#: A number was taken off the suppression list. kwargs: ``number`` (E.164).
number_unsuppressed = Signal()
