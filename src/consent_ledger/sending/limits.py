"""Frequency limits and quiet hours: how often, and when, a policy lets messages go.

A policy may cap the sends to one person (``frequency_limits``: N sends per rolling window,
or per calendar day in the recipient's time zone; over every send, or counted per category
or per template category) and keep hours free of messages in the recipient's local time
(``quiet_hours``). Either may be narrowed to template categories and to where the
recipient is (countries, or number prefixes such as a state's area codes).

Where the recipient is and what time it is there come from the number (``phonenumbers``
time zones). A number that may be in several zones is read the most restrictive way: a
send is in quiet hours if it is in any of them, and a calendar day is counted in the zone
where the most sends fall on the day of the send. A number whose zone cannot be told is
read as being in any zone of its country.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from consent_ledger.exceptions import InvalidInputError
from consent_ledger.model.taxonomy import TemplateCategory

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from consent_ledger.model.identifiers import Identifier
    from consent_ledger.model.sends import SentMessage

Per = Literal["all", "category", "template_category"]
_PERS: tuple[Per, ...] = ("all", "category", "template_category")
_TEMPLATE_CATEGORIES = {t.value: t for t in TemplateCategory}
_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
MAX_WINDOW = timedelta(days=31)
"""The longest window a limit may count over (what a view keeps of a person's sends)."""


@dataclass(frozen=True, slots=True)
class Where:
    """Whom a rule is for: template categories, countries, number prefixes (None: any)."""

    template_categories: frozenset[TemplateCategory] | None = None
    countries: frozenset[str] | None = None
    number_prefixes: tuple[str, ...] | None = None

    def reaches(self, template_category: TemplateCategory, recipient: Identifier) -> bool:
        """Whether the rule applies to a message of ``template_category`` to ``recipient``."""
        if (
            self.template_categories is not None
            and template_category not in self.template_categories
        ):
            return False
        if self.countries is not None and recipient.region not in self.countries:
            return False
        number = _number_of(recipient)
        return self.number_prefixes is None or (
            number is not None and number.startswith(self.number_prefixes)
        )


@dataclass(frozen=True, slots=True)
class FrequencyLimit:
    """At most ``max_sends`` sends per rolling window, or per calendar day (local)."""

    max_sends: int
    within: timedelta | None
    per: Per
    where: Where

    def counts(self, sent: SentMessage, category: str, template: TemplateCategory) -> bool:
        """Whether a past send counts towards this limit for a new send of that kind."""
        if self.where.template_categories is not None and (
            sent.template_category not in self.where.template_categories
        ):
            return False
        if self.per == "category":
            return sent.category == category
        if self.per == "template_category":
            return sent.template_category == template
        return True

    def describe(self, category: str, template: TemplateCategory) -> str:
        """``3 sends of offers per 24 hours``, for a decision's detail."""
        what = {"all": "", "category": f" of {category}", "template_category": f" of {template}"}
        span = "per calendar day" if self.within is None else f"per {_span(self.within)}"
        noun = "send" if self.max_sends == 1 else "sends"
        return f"{self.max_sends} {noun}{what[self.per]} {span}"


@dataclass(frozen=True, slots=True)
class QuietHours:
    """No message from ``start`` to ``end`` in the recipient's local time (may span midnight)."""

    start: time
    end: time
    where: Where

    def quiet_at(self, local: time) -> bool:
        """Whether a local time of day falls in the quiet hours."""
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


class Denial(NamedTuple):
    """Why the rules of frequency or time stop a send: the reason's name and a detail."""

    reason: Literal["frequency-limit", "quiet-hours"]
    detail: str


def quiet_hours_denial(
    rules: Sequence[QuietHours], at: datetime, template: TemplateCategory, recipient: Identifier
) -> Denial | None:
    """The quiet hours a send at ``at`` falls in, if any, with when sends open again."""
    for rule in rules:
        if not rule.where.reaches(template, recipient):
            continue
        for zone in time_zones(recipient):
            local = at.astimezone(zone)
            if rule.quiet_at(local.time()):
                opens = _next(local, rule.end)
                detail = (
                    f"{local:%H:%M} in {zone.key}, within quiet hours {rule.start:%H:%M} to "
                    f"{rule.end:%H:%M}; sends open at {_utc(opens)}"
                )
                return Denial("quiet-hours", detail)
    return None


def frequency_denial(  # noqa: PLR0913 (a send has this many facts)
    limits: Sequence[FrequencyLimit],
    sends: Iterable[SentMessage],
    *,
    at: datetime,
    category: str,
    template: TemplateCategory,
    recipient: Identifier,
) -> Denial | None:
    """The limit that a send at ``at`` would break, if any, with when the next one may go."""
    sends = [s for s in sends if s.sent_at <= at and at - s.sent_at < MAX_WINDOW]
    for limit in limits:
        if not limit.where.reaches(template, recipient):
            continue
        counted = sorted(s.sent_at for s in sends if limit.counts(s, category, template))
        over = _over(limit, counted, at, recipient)
        if over is not None:
            what = limit.describe(category, template)
            return Denial("frequency-limit", f"at most {what}: {over}")
    return None


def _over(
    limit: FrequencyLimit, counted: list[datetime], at: datetime, recipient: Identifier
) -> str | None:
    """How the counted sends reach the limit, and when the next may go; None if they do not."""
    if limit.within is not None:
        recent = [t for t in counted if at - t < limit.within]
        if len(recent) < limit.max_sends:
            return None
        next_at = recent[-limit.max_sends] + limit.within
        return (
            f"{len(recent)} sent in the {_span(limit.within)} before; "
            f"the next may go at {_utc(next_at)}"
        )
    for zone in time_zones(recipient):
        day = at.astimezone(zone).date()
        same_day = [t for t in counted if t.astimezone(zone).date() == day]
        if len(same_day) >= limit.max_sends:
            tomorrow = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
            return (
                f"{len(same_day)} sent on {day.isoformat()} in {zone.key}; "
                f"the next may go at {_utc(tomorrow)}"
            )
    return None


def time_zones(recipient: Identifier) -> tuple[ZoneInfo, ...]:
    """The time zones the recipient's number may be in (every zone of its country if unknown).

    A recipient with no number (an e-mail address) or a country without zone data is read
    as UTC.
    """
    number = _number_of(recipient)
    return (ZoneInfo("UTC"),) if number is None else _zones_of(number)


@functools.lru_cache(maxsize=65536)
def _zones_of(number: str) -> tuple[ZoneInfo, ...]:
    """The zones of an E.164 number (cached: a check asks this of every recipient)."""
    # Imported here: only a policy with hours or calendar days needs the zone data.
    import phonenumbers  # noqa: PLC0415
    from phonenumbers import timezone  # noqa: PLC0415
    from phonenumbers.tzdata import TIMEZONE_DATA  # noqa: PLC0415

    parsed = phonenumbers.parse(number)
    names: Sequence[str] = timezone.time_zones_for_number(parsed)
    if tuple(names) == (timezone.UNKNOWN_TIMEZONE,):
        names = TIMEZONE_DATA.get(str(parsed.country_code), ("UTC",))
    zones = []
    for name in names:
        try:
            zones.append(ZoneInfo(name))
        except ZoneInfoNotFoundError:  # a zone the system's database lacks: skip it
            continue
    return tuple(zones) or (ZoneInfo("UTC"),)


def _number_of(recipient: Identifier) -> str | None:
    kind = str(recipient.kind)
    if kind == "phone":
        return recipient.value
    if kind == "wa":
        return "+" + recipient.value
    return None


def _next(local: datetime, clock: time) -> datetime:
    """The next moment the local clock reads ``clock`` (today, or tomorrow)."""
    candidate = local.replace(hour=clock.hour, minute=clock.minute, second=0, microsecond=0)
    return candidate if candidate > local else candidate + timedelta(days=1)


def _span(window: timedelta) -> str:
    hours = int(window.total_seconds() // 3600)
    if hours % 24 == 0 and hours >= 48:  # noqa: PLR2004 (two days and more read as days)
        return f"{hours // 24} days"
    return "hour" if hours == 1 else f"{hours} hours"


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# Reading them from a policy document.


def frequency_limits(data: Any) -> tuple[FrequencyLimit, ...]:
    """The ``frequency_limits`` of a policy document.

    Raises:
        InvalidInputError: a limit is malformed (its index and field named).
    """
    if not isinstance(data, list):
        _refuse("frequency_limits", "not a list of limits")
    return tuple(_limit(item, f"frequency_limits[{i}]") for i, item in enumerate(data))


def quiet_hours(data: Any) -> tuple[QuietHours, ...]:
    """The ``quiet_hours`` of a policy document.

    Raises:
        InvalidInputError: a rule is malformed (its index and field named).
    """
    if not isinstance(data, list):
        _refuse("quiet_hours", "not a list of quiet hours")
    return tuple(_quiet(item, f"quiet_hours[{i}]") for i, item in enumerate(data))


_LIMIT_FIELDS = {"max_sends", "within_hours", "per_day", "per"} | {"template_categories"}
_WHERE_FIELDS = {"template_categories", "countries", "number_prefixes"}


def _limit(item: Any, where: str) -> FrequencyLimit:
    fields = _object(item, where, _LIMIT_FIELDS | _WHERE_FIELDS)
    max_sends = fields.get("max_sends")
    if isinstance(max_sends, bool) or not isinstance(max_sends, int) or max_sends < 1:
        _refuse(f"{where}.max_sends", "not a whole number of at least 1")
    hours, per_day = fields.get("within_hours"), fields.get("per_day", False)
    if (hours is None) == (per_day is not True):
        _refuse(where, "give within_hours (a rolling window) or per_day: true, not both")
    if hours is not None and (
        isinstance(hours, bool) or not isinstance(hours, int | float) or hours <= 0
    ):
        _refuse(f"{where}.within_hours", "not a positive number of hours")
    within = None if hours is None else timedelta(hours=hours)
    if within is not None and within > MAX_WINDOW:
        _refuse(f"{where}.within_hours", f"over {MAX_WINDOW.days} days, the longest window")
    per = fields.get("per", "all")
    if per not in _PERS:
        _refuse(f"{where}.per", f"not one of {', '.join(_PERS)}")
    return FrequencyLimit(max_sends=max_sends, within=within, per=per, where=_where(fields, where))


def _quiet(item: Any, where: str) -> QuietHours:
    fields = _object(item, where, {"start", "end"} | _WHERE_FIELDS)
    start, end = (_clock(fields.get(key), f"{where}.{key}") for key in ("start", "end"))
    if start == end:
        _refuse(where, "start and end are the same time")
    return QuietHours(start=start, end=end, where=_where(fields, where))


def _where(fields: dict[str, Any], where: str) -> Where:
    templates = fields.get("template_categories")
    if templates is not None and (
        not _strings(templates) or not set(templates) <= _TEMPLATE_CATEGORIES.keys()
    ):
        _refuse(f"{where}.template_categories", f"not a list of {', '.join(_TEMPLATE_CATEGORIES)}")
    countries = fields.get("countries")
    if countries is not None and not (
        _strings(countries) and all(re.fullmatch(r"[A-Z]{2}", c) for c in countries)
    ):
        _refuse(f"{where}.countries", "not a list of ISO 3166 country codes (US, IT, ...)")
    prefixes = fields.get("number_prefixes")
    if prefixes is not None and not (
        _strings(prefixes) and all(re.fullmatch(r"\+\d{1,15}", p) for p in prefixes)
    ):
        _refuse(f"{where}.number_prefixes", "not a list of number prefixes (+1305, ...)")
    return Where(
        template_categories=None
        if templates is None
        else frozenset(_TEMPLATE_CATEGORIES[t] for t in templates),
        countries=None if countries is None else frozenset(countries),
        number_prefixes=None if prefixes is None else tuple(prefixes),
    )


def _object(item: Any, where: str, known: set[str]) -> dict[str, Any]:
    if not isinstance(item, dict):
        _refuse(where, "not an object")
    if unknown := sorted(item.keys() - known):
        _refuse(f"{where}.{unknown[0]}", "unknown field")
    return item


def _clock(value: Any, where: str) -> time:
    match = _CLOCK.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        _refuse(where, "not a time of day HH:MM (e.g. 20:00)")
    return time(int(match.group(1)), int(match.group(2)))


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _refuse(field: str, problem: str) -> NoReturn:
    msg = f"policy {field}: {problem}"
    raise InvalidInputError(msg)
