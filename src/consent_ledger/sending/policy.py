"""A send-time policy: the rules a check applies, read from data (``presets/*.json``).

A plain dataclass read by :meth:`Policy.from_json`, not a pydantic model: a check in a
fresh process then loads no pydantic (see :mod:`consent_ledger.model.plain`), and an
ill-formed policy is still refused with the field that is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, NoReturn

from consent_ledger.exceptions import InvalidInputError
from consent_ledger.model.taxonomy import TemplateCategory
from consent_ledger.sending.limits import (
    FrequencyLimit,
    QuietHours,
    frequency_limits,
    quiet_hours,
)

_TEXTS = ("name", "description", "source")
_FLAGS = ("marketing_needs_marketing_category", "honour_platform_marketing_stop")
_TEMPLATE_CATEGORIES = {t.value: t for t in TemplateCategory}
_OPTIONAL = {"service_window_exempt", "frequency_limits", "quiet_hours"}


@dataclass(frozen=True, slots=True)
class Policy:
    """The rules a send-time check applies.

    ``recipient_countries``: the ISO 3166 countries a recipient's number must be in (None:
    any). ``service_window_exempt``: the template categories an open customer service
    window lets through without an opt-in.
    """

    name: str
    description: str
    source: str
    recipient_countries: frozenset[str] | None
    marketing_needs_marketing_category: bool
    honour_platform_marketing_stop: bool
    service_window_exempt: frozenset[TemplateCategory] = frozenset()
    frequency_limits: tuple[FrequencyLimit, ...] = ()
    quiet_hours: tuple[QuietHours, ...] = ()

    @classmethod
    def from_json(cls, data: Any) -> Policy:
        """The policy a JSON object describes.

        Raises:
            InvalidInputError: a field is missing, unknown or of the wrong type (named).
        """
        if not isinstance(data, dict):
            msg = f"a policy is a JSON object, not {type(data).__name__}"
            raise InvalidInputError(msg)
        known = {f.name for f in fields(cls)}
        if unknown := sorted(data.keys() - known):
            _refuse(unknown[0], "unknown field")
        if missing := sorted(known - data.keys() - _OPTIONAL):
            _refuse(missing[0], "missing")
        for name in _TEXTS:
            if not isinstance(data[name], str):
                _refuse(name, "not a string")
        for name in _FLAGS:
            if not isinstance(data[name], bool):
                _refuse(name, "not true or false")
        countries = data["recipient_countries"]
        if countries is not None and not _strings(countries):
            _refuse("recipient_countries", "not null or a list of country codes")
        exempt = data.get("service_window_exempt", [])
        if not _strings(exempt) or not set(exempt) <= _TEMPLATE_CATEGORIES.keys():
            _refuse("service_window_exempt", f"not a list of {', '.join(_TEMPLATE_CATEGORIES)}")
        return cls(
            **{name: data[name] for name in (*_TEXTS, *_FLAGS)},
            recipient_countries=None if countries is None else frozenset(countries),
            service_window_exempt=frozenset(_TEMPLATE_CATEGORIES[t] for t in exempt),
            frequency_limits=frequency_limits(data.get("frequency_limits", [])),
            quiet_hours=quiet_hours(data.get("quiet_hours", [])),
        )

    @property
    def limits_sends(self) -> bool:
        """Whether the policy looks at past sends or the time of day (not consent alone)."""
        return bool(self.frequency_limits or self.quiet_hours)


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _refuse(field: str, problem: str) -> NoReturn:
    msg = f"policy {field}: {problem}"
    raise InvalidInputError(msg)
