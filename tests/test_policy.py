"""Policies are data: the presets read as they are written, an ill-formed one names its field."""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING, Any

import pytest

from consent_ledger import InvalidInputError, TemplateCategory
from consent_ledger.sending import eligibility
from consent_ledger.sending.eligibility import policies
from consent_ledger.sending.policy import Policy

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

WHATSAPP_2025: dict[str, Any] = json.loads(
    (resources.files("consent_ledger.sending") / "presets" / "whatsapp-2025.json").read_text()
)


def test_each_preset_reads_as_written() -> None:
    presets = policies()

    assert sorted(presets) == [
        "consent-only",
        "us-fl-ftsa",
        "us-tcpa",
        "whatsapp-2021",
        "whatsapp-2025",
    ]
    assert presets["whatsapp-2025"].service_window_exempt == {
        TemplateCategory.UTILITY,
        TemplateCategory.AUTHENTICATION,
    }
    assert presets["whatsapp-2025"].recipient_countries is None
    assert presets["whatsapp-2021"].recipient_countries is not None
    assert {"GB", "IT", "US"} <= presets["whatsapp-2021"].recipient_countries
    assert presets["consent-only"].service_window_exempt == frozenset()
    [florida_hours, us_hours] = presets["us-fl-ftsa"].quiet_hours
    assert (florida_hours.start.hour, florida_hours.end.hour) == (20, 8)
    assert (us_hours.start.hour, us_hours.end.hour) == (21, 8)
    [three_a_day] = presets["us-fl-ftsa"].frequency_limits
    assert (three_a_day.max_sends, three_a_day.per) == (3, "category")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"honour_platform_marketing_stop": "yes"}, "honour_platform_marketing_stop: not true"),
        ({"recipient_countries": "GB"}, "recipient_countries: not null or a list"),
        ({"service_window_exempt": ["PROMOTIONAL"]}, "service_window_exempt: not a list of"),
        ({"name": 7}, "name: not a string"),
        ({"quiet_time": [22, 8]}, "quiet_time: unknown field"),
        ({"quiet_hours": [22, 8]}, r"quiet_hours\[0\]: not an object"),
    ],
)
def test_an_ill_formed_policy_names_its_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=f"^policy {message}"):
        Policy.from_json(WHATSAPP_2025 | change)


def test_a_missing_field_is_named_and_the_exemptions_may_be_left_out() -> None:
    with pytest.raises(InvalidInputError, match=r"^policy source: missing$"):
        Policy.from_json({k: v for k, v in WHATSAPP_2025.items() if k != "source"})
    without = {k: v for k, v in WHATSAPP_2025.items() if k != "service_window_exempt"}

    assert Policy.from_json(without).service_window_exempt == frozenset()


def test_a_policy_is_a_json_object() -> None:
    with pytest.raises(InvalidInputError, match=r"^a policy is a JSON object, not list$"):
        Policy.from_json(["whatsapp-2025"])


@pytest.fixture
def uncached_policies() -> Iterator[None]:
    policies.cache_clear()
    yield
    policies.cache_clear()


@pytest.mark.usefixtures("uncached_policies")
def test_presets_are_found_where_there_is_no_folder_to_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Installed in a zip archive, the presets are read through importlib.resources."""
    found = policies()
    policies.cache_clear()
    monkeypatch.setattr(eligibility, "PRESETS", tmp_path / "presets")

    assert policies() == found
