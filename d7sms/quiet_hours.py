"""Quiet hours: the window of local time in which a sendout's messages may arrive, read in
each recipient's own time zones, and the instant each message may be released.

A :class:`Window` is when sending is *allowed*: from ``start`` (included) to ``end``
(excluded), in the recipient's local time. It may cross midnight (``22:00-02:00``); a start
equal to its end is refused, since it could mean all day or never.

A number's time zones are phonenumbers' (:func:`zones_for`). Where a number spans several
zones (a Russian mobile, a US toll-free number), the window must hold in every one of them at
once. What each number gets from :func:`release`:

====================================  ==========================================================
the number's zones                    release
====================================  ==========================================================
the window holds in all of them now   ``now``: sent at once
it holds in all of them later         the first such instant (DST-correct, through zoneinfo)
it never holds in all at once within  ``None``: the number cannot be sent in this window; the
two days (zones too far apart)        preview shows it and ``send_batch`` refuses it
no zone known (phonenumbers has none  ``now``: not held, and counted as of unknown zone, which
for it, or the system lacks it)       the preview shows
====================================  ==========================================================

Where the clock jumps over the window's start (02:30 on a night it jumps from 02:00 to 03:00),
the window opens with the jump. A release is computed once per distinct
set of zones, and a number is parsed for its own zones only when its country's zones do not
all give the same release (:meth:`Plan.release`).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections import Counter
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE
from phonenumbers.timezone import UNKNOWN_TIMEZONE, time_zones_for_number
from phonenumbers.tzdata import TIMEZONE_DATA

from d7sms import conf

#: How far ahead a window is looked for before a number is declared unreachable in it.
HORIZON = dt.timedelta(days=2)
_TIME = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")
FORMAT_HINT = 'Give it as ("09:00", "20:00"): the local times between which sending is allowed.'


class WindowError(ValueError):
    """A window that cannot be read."""


@dataclass(frozen=True)
class Window:
    """Local times between which sending is allowed: ``start`` included, ``end`` excluded."""

    start: dt.time
    end: dt.time

    def __post_init__(self):
        if self.start == self.end:
            raise WindowError(f"A window from {_hhmm(self.start)} to {_hhmm(self.end)} is empty (or all day); {FORMAT_HINT}")

    def __str__(self):
        return f"{_hhmm(self.start)}–{_hhmm(self.end)}"

    def contains(self, local):
        """True when the local time ``local`` (a ``datetime.time``) is inside the window."""
        local = local.replace(tzinfo=None, fold=0)
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # crosses midnight

    def as_setting(self):
        """The window as the QUIET_HOURS setting and ``send_batch`` write it: ``("09:00", "20:00")``."""
        return (_hhmm(self.start), _hhmm(self.end))


def _hhmm(value):
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


def _time(value, what):
    if isinstance(value, dt.time):
        return value.replace(tzinfo=None, microsecond=0)
    match = _TIME.match(value) if isinstance(value, str) else None
    if match:
        hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
        if hour < 24 and minute < 60 and second < 60:
            return dt.time(hour, minute, second)
    raise WindowError(f"The {what} of the quiet hours, {value!r}, is not a time of day such as \"09:00\". {FORMAT_HINT}")


def parse(value):
    """The :class:`Window` ``value`` stands for, or None for no window.

    ``value`` is None (or ``False``, ``""``, ``()``) for none, a Window, a pair of times
    (``"HH:MM"`` strings or ``datetime.time``), or one string ``"09:00-20:00"``. Raises
    :class:`WindowError` naming what is wrong.
    """
    if value is None or value is False or value in ("", (), []):
        return None
    if isinstance(value, Window):
        return value
    if isinstance(value, str):
        pair = re.split(r"\s*[-–]\s*", value.strip())
        if len(pair) != 2:
            raise WindowError(f"Quiet hours {value!r} are not two times. {FORMAT_HINT}")
        value = pair
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise WindowError(f"Quiet hours {value!r} are not a pair of times. {FORMAT_HINT}")
    return Window(_time(value[0], "start"), _time(value[1], "end"))


def default():
    """The window of the QUIET_HOURS setting, or None."""
    return parse(conf.get("QUIET_HOURS"))


# -- time zones of a number ----------------------------------------------------------------------


def _country_code(e164):
    for size in (1, 2, 3):
        code = e164[1 : 1 + size]
        if code.isdigit() and int(code) in COUNTRY_CODE_TO_REGION_CODE:
            return code
    return None


@functools.lru_cache(maxsize=512)
def _known(zones):
    """``zones`` without the unknown zone and those this system's zoneinfo lacks."""
    found = []
    for name in zones:
        if name == UNKNOWN_TIMEZONE:
            continue
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
        found.append(name)
    return tuple(found)


def country_zones(number):
    """Every time zone of the E.164 ``number``'s country calling code (empty: unknown). In
    phonenumbers' data a number's own zones are always some of these."""
    code = _country_code(number)
    return _known(tuple(TIMEZONE_DATA.get(code, ()))) if code else ()


def zones_for(number):
    """The time zones of the E.164 ``number``, as phonenumbers gives them (empty: unknown).

    A country with a single zone answers from its country code alone; numbers of countries
    with several zones are parsed, since their zones depend on the kind of number.
    """
    country = country_zones(number)
    if len(country) <= 1:
        return country
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return ()
    return _known(tuple(time_zones_for_number(parsed)))


# -- when a window holds in every zone -----------------------------------------------------------


def release(zones, window, now):
    """The earliest instant at or after the aware ``now`` at which local time is inside
    ``window`` in every one of ``zones``; ``now`` when there are no zones; None when no such
    instant comes within :data:`HORIZON`."""
    tzs = [ZoneInfo(name) for name in zones]
    if all(window.contains(now.astimezone(tz).time()) for tz in tzs):
        return now
    # The earliest instant of an intersection of windows is where one of them opens.
    last = now + HORIZON
    for candidate in sorted(_openings(tzs, window, now)):
        if now < candidate <= last and all(window.contains(candidate.astimezone(tz).time()) for tz in tzs):
            return candidate
    return None


def _openings(tzs, window, now):
    """The instants the window opens in each zone, from the day before ``now`` to past the horizon."""
    days = HORIZON.days + 2
    for tz in tzs:
        today = now.astimezone(tz).date()
        for offset in range(-1, days):
            local = dt.datetime.combine(today + dt.timedelta(days=offset), window.start, tzinfo=tz)
            # Both readings of a local time the clock shows twice; the check above keeps the right one.
            before, after = local.replace(fold=0).astimezone(dt.timezone.utc), local.replace(fold=1).astimezone(dt.timezone.utc)
            yield before
            yield after
            if after < before:  # the clock jumps over the start: the window opens with the jump
                yield _jump(tz, window, after, before)


def _jump(tz, window, low, high):
    """The first second in (``low``, ``high``] at which local time in ``tz`` is inside
    ``window`` (``low`` itself if it is): where the clock jumps over the window's start, the
    instant of the jump."""

    def inside(second):
        return window.contains(dt.datetime.fromtimestamp(second, tz).time())

    low, high = int(low.timestamp()), int(high.timestamp())
    if inside(low):
        return dt.datetime.fromtimestamp(low, dt.timezone.utc)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if inside(middle) else (middle, high)
    return dt.datetime.fromtimestamp(high, dt.timezone.utc)


@dataclass
class Plan:
    """When each number of a sendout may be released, in ``window`` from the aware ``now``
    (the sendout's schedule, or the present); releases are computed once per set of zones."""

    window: Window
    now: dt.datetime
    waiting: Counter = field(default_factory=Counter)  # release instant -> how many numbers wait for it
    at_once: int = 0
    unknown: int = 0  # numbers of no known zone, not held
    never: list = field(default_factory=list)  # numbers the window never holds for
    _by_zones: dict = field(default_factory=dict)
    _decides: dict = field(default_factory=dict)

    def release(self, number):
        """When ``number`` may be released (``now``: at once), or None when never; counted."""
        country = country_zones(number)
        zones = country if self._country_decides(country) else zones_for(number)
        when = self._release(zones)
        if when is None:
            self.never.append(number)
        elif when == self.now:
            self.at_once += 1
            self.unknown += not zones
        else:
            self.waiting[when] += 1
        return when

    def _country_decides(self, country):
        """True when every number of a country with these zones is released at the same
        instant, whichever of them are its own: then no number of it need be parsed.

        A number's zones S are some of the country's C, so release(S) lies between the
        latest release of its single zones and release(C); when the earliest single-zone
        release already equals release(C), every S gets release(C)."""
        if len(country) <= 1:
            return True
        if country not in self._decides:
            whole = self._release(country)
            singles = [self._release((zone,)) for zone in country]
            self._decides[country] = whole is not None and None not in singles and min(singles) == whole
        return self._decides[country]

    def _release(self, zones):
        if zones not in self._by_zones:
            self._by_zones[zones] = release(zones, self.window, self.now)
        return self._by_zones[zones]

    def releases(self):
        """``[(instant, count)]`` of the numbers that wait, earliest first."""
        return sorted(self.waiting.items())

    def error(self, shown=20):
        """The ValidationError message for the numbers the window never holds for, or ''."""
        if not self.never:
            return ""
        named = ", ".join(self.never[:shown]) + (f" and {len(self.never) - shown} more" if len(self.never) > shown else "")
        return (
            f"The quiet hours {self.window} never hold in all the time zones of {len(self.never)} "
            f"number(s) at once: {named}. Widen the window, or leave these numbers out."
        )


def plan(numbers, window, now):
    """A :class:`Plan` with every number of ``numbers`` counted."""
    result = Plan(window, now)
    for number in numbers:
        result.release(number)
    return result
