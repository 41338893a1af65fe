"""Merge fields: message templates such as ``"Hi {name}, your order in {city} is ready"``.

A placeholder is a bare field name between braces (spaces around it are ignored). Nothing in a
placeholder is ever evaluated: attribute or index access (``{user.name}``, ``{a[0]}``),
conversions (``{name!r}``), format specs (``{n:>10}``) and template tags (``{% if %}``) are
refused, so a template can only copy text. ``{{`` and ``}}`` are literal braces.

A value is missing when the field is absent, None, or blank text; a missing value is an error
(a message must never go out as "Hi ," or with a placeholder left in it).
"""

from dataclasses import dataclass, field

__all__ = [
    "MergeError", "Recipient", "Template", "compile_template", "is_missing", "literal_lookalikes", "referable",
    "text_value",
]

# Characters that would mean more than a name in Python's format mini-language.
_NOT_IN_NAMES = {
    ".": "attribute access",
    "[": "index access",
    "]": "index access",
    "!": "a conversion",
    ":": "a format spec",
    "%": "a template tag",
    "#": "a template tag",
}


class MergeError(ValueError):
    """A template that cannot be used, or a recipient that cannot fill it.

    ``field`` names the field concerned (or is empty), ``reason`` says what is wrong.
    """

    def __init__(self, reason, field=""):
        super().__init__(reason)
        self.reason = reason
        self.field = field


@dataclass(frozen=True, slots=True)
class Recipient:
    """One recipient of a personalised sendout: its number, its fields, and optionally its own
    ``content`` (a template too) and ``sender``. Fields are kept apart from these, so a field
    may itself be called "to", "content" or "sender" (as a spreadsheet column may)."""

    to: object
    fields: dict = field(default_factory=dict)
    content: str | None = None
    sender: str | None = None


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: ``pieces`` alternate literal text and field names (odd indexes)."""

    source: str
    pieces: tuple

    @property
    def fields(self):
        """The field names the template uses, in order of first use."""
        return tuple(dict.fromkeys(self.pieces[1::2]))

    @property
    def is_plain(self):
        """True when the template uses no field (its text is the same for everyone)."""
        return len(self.pieces) == 1

    def render(self, values):
        """The text for one recipient; ``values`` maps field names to values.

        Raises :class:`MergeError` naming the first field that is missing.
        """
        pieces = self.pieces
        if len(pieces) == 1:
            return pieces[0]
        out = list(pieces)
        for i in range(1, len(pieces), 2):
            name = pieces[i]
            value = values.get(name)
            if is_missing(value):
                raise MergeError(f"no value for {{{name}}}" if name in values else f"no field {name!r}", name)
            out[i] = text_value(value)
        return "".join(out)


def is_missing(value):
    """True for a value that cannot fill a placeholder: None or blank text."""
    return value is None or (isinstance(value, str) and not value.strip())


def text_value(value):
    """A field value as the text that goes into the message (``12.0`` reads ``12``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def compile_template(text):
    """Parse ``text`` into a :class:`Template`, or raise :class:`MergeError` saying where it is wrong."""
    if not isinstance(text, str):
        raise MergeError("the template must be text")
    pieces, literal = [], []
    i, size = 0, len(text)
    while i < size:
        char = text[i]
        if char == "{":
            if text.startswith("{{", i):
                literal.append("{")
                i += 2
                continue
            end = text.find("}", i + 1)
            opened = text.find("{", i + 1)
            if end < 0 or (0 <= opened < end):
                raise MergeError(f"the brace at position {i + 1} is not closed; write {{{{ for a literal brace")
            name = _check_name(text[i + 1 : end], i + 1)
            pieces.append("".join(literal))
            pieces.append(name)
            literal = []
            i = end + 1
        elif char == "}":
            if text.startswith("}}", i):
                literal.append("}")
                i += 2
                continue
            raise MergeError(f"the brace at position {i + 1} closes nothing; write }}}} for a literal brace")
        else:
            # Copy the run of ordinary characters up to the next brace in one step.
            nxt = min((p for p in (text.find("{", i), text.find("}", i)) if p >= 0), default=size)
            literal.append(text[i:nxt])
            i = nxt
    pieces.append("".join(literal))
    return Template(text, tuple(pieces))


def _check_name(raw, position):
    name = raw.strip()
    if not name:
        raise MergeError(f"the placeholder at position {position} is empty; write {{{{}}}} for literal braces")
    for char, what in _NOT_IN_NAMES.items():
        if char in name:
            raise MergeError(
                f"{{{raw}}} at position {position}: placeholders are bare field names ({what} is not supported)",
                name,
            )
    return name


def referable(name):
    """True when a field called ``name`` can be written as a placeholder."""
    return name == name.strip() and bool(name) and not any(c in name for c in (*_NOT_IN_NAMES, "{", "}"))


def literal_lookalikes(template, names):
    """Field names in ``names`` that ``template`` writes as literal ``{{name}}`` text, which
    reaches the phone as "{name}": almost always meant as a placeholder."""
    text = template.source
    return [n for n in names if "{{" + n + "}}" in text or "{{ " + n + " }}" in text]
