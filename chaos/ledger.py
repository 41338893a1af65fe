"""What a scenario did, counted where D7 would count it: at the sandbox, not in the app's tables.

A scenario says what it meant to happen as ``intended``: for each destination and text (a
*slot*), how many times the sandbox should have received it in all (1 for a number of a
sendout; 2 for a number that failed and was then resent on purpose: the original and exactly
one resend, however many callers raced to resend it). :func:`tally` compares that with what the
sandbox received and what the app says of its messages:

- **sent once**: the slot was received exactly as often as intended;
- **sent twice or more**: it was received more often (the same SMS went out again);
- **lost**: it was received less often than intended, and the app does not account for the
  missing sends with a message it left ``unknown`` or that certainly did not go out
  (``failed``, ``cancelled``): the app believes it sent (or will send) something D7 never got;
- **unknown**: the app's messages of the scenario left ``unknown``.
"""

from collections import Counter
from dataclasses import asdict, dataclass, field

HEADER = ("scenario", "messages", "sent once", "sent twice or more", "lost", "unknown")


@dataclass
class Row:
    """One line of the table."""

    scenario: str
    messages: int
    once: int
    twice_or_more: int
    lost: int
    unknown: int
    #: ``(messages made unknown, of which the sandbox received)`` for each kill, in order.
    unknown_per_kill: list = field(default_factory=list)
    #: What else the scenario saw, one sentence each.
    notes: list = field(default_factory=list)

    @property
    def ok(self):
        """True when nothing went out twice and nothing was lost."""
        return not self.twice_or_more and not self.lost

    def cells(self):
        return (self.scenario, self.messages, self.once, self.twice_or_more, self.lost, self.unknown)

    as_dict = asdict


def received(messages):
    """Times each ``(to, text)`` was received, from the sandbox's ``/_sandbox/messages`` list."""
    return Counter((m["to"], m["content"] if m["content"] is not None else m["hex_content"]) for m in messages)


def app_statuses(texts):
    """``{(to, text): [status, ...]}`` of the app's messages carrying one of ``texts``; a
    ``failed`` message that D7 had accepted first (a report said so) shows as ``failed late``."""
    from d7sms.models import Message

    out = {}
    rows = Message.objects.filter(content__in=list(texts)).values_list("to", "content", "status", "accepted_at")
    for to, text, status, accepted_at in rows.iterator(chunk_size=5000):
        out.setdefault((to, text), []).append("failed late" if status == "failed" and accepted_at else status)
    return out


def tally(scenario, intended, got, statuses):
    """The :class:`Row` for ``scenario``: ``intended`` and ``got`` map ``(to, text)`` to counts,
    ``statuses`` maps it to the app's message statuses (see :func:`app_statuses`)."""
    from d7sms.models import MessageStatus

    excused = {MessageStatus.UNKNOWN, MessageStatus.FAILED, MessageStatus.CANCELLED}
    once = twice = lost = 0
    for slot, wanted in intended.items():
        n = got.get(slot, 0)
        if n == wanted:
            once += 1
        elif n > wanted:
            twice += 1
        elif wanted - n > sum(1 for s in statuses.get(slot, ()) if s in excused):
            lost += 1
    # A receipt of the scenario's text at a number nobody meant to reach went out once too many.
    texts = {text for _to, text in intended}
    twice += sum(1 for slot in got if slot not in intended and slot[1] in texts)
    unknown = sum(s.count(MessageStatus.UNKNOWN) for s in statuses.values())
    row = Row(scenario, len(intended), once, twice, lost, unknown)
    if twice:
        most = max(n for slot, n in got.items() if slot[1] in texts)
        row.notes.append(f"one number received it {most} times")
    return row


def render(rows):
    """The table as text, one line a row."""
    cells = [HEADER] + [tuple(str(c) for c in row.cells()) for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADER))]

    def line(values):
        padded = [v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths))]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *(line(c) for c in cells[1:])])
