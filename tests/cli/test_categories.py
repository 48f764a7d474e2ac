"""``consent-ledger category``: a business's own categories, from the shell (issue #12)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from typing import TYPE_CHECKING

import pytest
from consent_ledger.cli import main

from tests.cli.conftest import fails, new_ledger, ok

if TYPE_CHECKING:
    from pathlib import Path

    from click.testing import CliRunner

ADA = "+447700900123"
CARLA = "+447700900456"
LOYALTY = "Loyalty points, rewards and member offers"
NOTICE = "Yes, Acme Outfitters may message me on WhatsApp about my loyalty points and orders."
KEYS = [
    "name",
    "description",
    "template_category",
    "channels",
    "built_in",
    "retired",
    "defined_at",
    "retired_at",
]


@pytest.fixture
def db(tmp_path: Path, runner: CliRunner) -> str:
    """A ledger where acme defined loyalty-points and published a notice for it."""
    path = new_ledger(runner, str(tmp_path / "ledger.db"))
    ok(runner, "category", "define", "loyalty-points", "--template-category", "MARKETING",
       "--description", LOYALTY, "--db", path)  # fmt: skip
    ok(runner, "notice", "publish", "loyalty-optin", "--language", "en",
       "-c", "loyalty-points,order-updates", "--db", path, input=NOTICE)  # fmt: skip
    return path


def opt_in(runner: CliRunner, db: str, person: str = ADA, category: str = "loyalty-points") -> None:
    ok(runner, "opt-in", person, "-c", category, "--notice", "loyalty-optin@1",
       "--method", "web-form", "--db", db)  # fmt: skip


def events(db: str) -> int:
    with sqlite3.connect(db) as connection:
        return int(connection.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0])


class TestDefine:
    def test_says_what_it_defined(self, tmp_path: Path, runner: CliRunner) -> None:
        db = new_ledger(runner, str(tmp_path / "ledger.db"))

        result = ok(runner, "category", "define", "event-tickets", "--template-category",
                    "UTILITY", "--description", "Event tickets", "--channel", "email",
                    "--channel", "sms", "--db", db)  # fmt: skip

        assert result.stdout == (
            "Defined category event-tickets of acme (UTILITY, sms, email): Event tickets\n"
        )

    def test_a_built_in_name_is_refused_and_nothing_written(
        self, db: str, runner: CliRunner
    ) -> None:
        before = events(db)

        result = fails(runner, "category", "define", "offers", "--template-category",
                       "MARKETING", "--description", "Ours", "--db", db)  # fmt: skip

        assert result.stderr == (
            "Error: 'offers' is a built-in category: every business has it already; "
            "give yours another name\n"
        )
        assert events(db) == before

    def test_a_malformed_name_is_a_usage_error(self, db: str, runner: CliRunner) -> None:
        result = fails(runner, "category", "define", "Loyalty Points", "--template-category",
                       "MARKETING", "--description", "x", "--db", db, code=2)  # fmt: skip

        assert "'Loyalty Points' is not a category name" in result.stderr

    def test_a_description_too_long_is_refused(self, db: str, runner: CliRunner) -> None:
        result = fails(runner, "category", "define", "surveys", "--template-category",
                       "MARKETING", "--description", "x" * 201, "--db", db)  # fmt: skip

        assert result.stderr.startswith("Error: --description: String should have at most 200")


class TestList:
    def test_json_lists_the_built_in_ones_then_the_businesss_own(
        self, db: str, runner: CliRunner
    ) -> None:
        listed = json.loads(ok(runner, "category", "list", "--format", "json", "--db", db).stdout)

        assert [list(row) for row in listed] == [KEYS] * len(listed)
        assert listed[0] == {
            "name": "order-updates",
            "description": "Order status, shipping and delivery",
            "template_category": "UTILITY",
            "channels": ["whatsapp", "sms", "rcs", "email"],
            "built_in": True,
            "retired": False,
            "defined_at": None,
            "retired_at": None,
        }
        own = listed[-1]
        assert (own["name"], own["description"], own["built_in"]) == (
            "loyalty-points",
            LOYALTY,
            False,
        )
        assert own["defined_at"].endswith("Z")

    def test_csv_and_table(self, db: str, runner: CliRunner) -> None:
        text = ok(runner, "category", "list", "--format", "csv", "--db", db).stdout
        rows = list(csv.DictReader(io.StringIO(text)))
        table = ok(runner, "category", "list", "--db", db).stdout.splitlines()

        assert list(rows[0]) == KEYS
        assert rows[-1]["channels"] == "whatsapp sms rcs email"
        assert table[0].split() == ["NAME", "TEMPLATE", "CHANNELS", "KIND", "STATE", "DESCRIPTION"]
        assert table[-1].startswith("loyalty-points")
        assert table[-1].endswith(f"active  {LOYALTY}")


class TestInUse:
    def test_opt_in_check_audience_receipt_dossier_and_export(
        self, db: str, runner: CliRunner, tmp_path: Path
    ) -> None:
        opt_in(runner, db)
        opt_in(runner, db, CARLA, "order-updates")

        check = ok(runner, "check", ADA, "-c", "loyalty-points", "--db", db).stdout
        audience = ok(runner, "audience", "-c", "loyalty-points", "--db", db).stdout
        receipt = json.loads(ok(runner, "receipt", ADA, "--db", db).stdout)
        ok(runner, "dossier", ADA, "--db", db, "-o", str(tmp_path / "ada.html"))
        exported = ok(runner, "export", "-c", "loyalty-points", "--db", db).stdout

        assert check.startswith("ALLOWED: consented (consent to loyalty-points granted since")
        assert "whatsapp loyalty-points as MARKETING" in check
        assert [row["identifier"] for row in csv.DictReader(io.StringIO(audience))] == [ADA]
        [purpose] = receipt[0]["services"][0]["purposes"]
        assert purpose["purpose"] == f"{LOYALTY} (loyalty-points)"
        assert f"{LOYALTY} (MARKETING messages" in (tmp_path / "ada.html").read_text()
        assert [json.loads(line)["event_type"] for line in exported.splitlines()] == [
            "CategoryDefined",
            "VersionPublished",
            "OptedIn",
        ]

    def test_a_utility_category_refuses_a_marketing_template(
        self, db: str, runner: CliRunner
    ) -> None:
        ok(runner, "category", "define", "event-tickets", "--template-category", "UTILITY",
           "--description", "Event tickets", "--db", db)  # fmt: skip

        args = ["check", ADA, "-c", "event-tickets", "--template-category", "MARKETING"]
        result = runner.invoke(main, [*args, "--db", db])

        assert result.exit_code == 3
        assert result.stdout.startswith("DENIED: template-category-mismatch")
        assert "event-tickets is UTILITY" in result.stdout

    def test_audit_finds_its_definition_and_retirement(self, db: str, runner: CliRunner) -> None:
        ok(runner, "category", "retire", "loyalty-points", "--db", db)

        types = ["--type", "CategoryDefined", "--type", "CategoryRetired"]
        rows = json.loads(ok(runner, "audit", *types, "--format", "json", "--db", db).stdout)

        assert [(r["event_type"], r["granted"], r["withdrawn"]) for r in rows] == [
            ("CategoryDefined", ["loyalty-points"], []),
            ("CategoryRetired", [], ["loyalty-points"]),
        ]

    def test_another_business_does_not_have_it(self, db: str, runner: CliRunner) -> None:
        ok(runner, "business", "register", "bistro", "--name", "Bistro", "--db", db)

        result = fails(runner, "check", ADA, "-c", "loyalty-points", "--business", "bistro",
                       "--db", db)  # fmt: skip
        audit = fails(runner, "audit", "-c", "loyalty-points", "--business", "bistro",
                      "--db", db)  # fmt: skip

        assert result.stderr.startswith(
            "Error: unknown category 'loyalty-points'; this business's categories: "
        )
        assert "loyalty-points" not in result.stderr.split("categories: ")[1]  # acme's only
        assert audit.stderr.startswith("Error: unknown category 'loyalty-points'")


class TestRetire:
    def test_refuses_new_opt_ins_and_keeps_checks_and_opt_outs(
        self, db: str, runner: CliRunner
    ) -> None:
        opt_in(runner, db)

        retired = ok(runner, "category", "retire", "loyalty-points", "--db", db).stdout
        before = events(db)
        refused = fails(runner, "opt-in", CARLA, "-c", "loyalty-points", "--notice",
                        "loyalty-optin@1", "--method", "web-form", "--db", db)  # fmt: skip
        after_refusal = events(db)
        allowed = ok(runner, "check", ADA, "-c", "loyalty-points", "--db", db).stdout
        ok(runner, "opt-out", ADA, "-c", "loyalty-points", "--method", "web-form", "--db", db)
        listed = json.loads(ok(runner, "category", "list", "--format", "json", "--db", db).stdout)

        assert retired.startswith("Retired category loyalty-points of acme on ")
        assert refused.stderr.startswith("Error: category 'loyalty-points' was retired on ")
        assert refused.stderr.endswith(": no new opt-ins\n")
        assert after_refusal == before
        assert allowed.startswith("ALLOWED: consented")
        assert listed[-1]["retired"] is True
        assert listed[-1]["retired_at"] is not None

    @pytest.mark.parametrize(
        ("name", "message"),
        [
            ("offers", "Error: 'offers' is a built-in category: every business keeps it"),
            ("surveys", "Error: unknown category 'surveys'; this business's categories: "),
        ],
    )
    def test_what_cannot_be_retired(
        self, db: str, runner: CliRunner, name: str, message: str
    ) -> None:
        result = fails(runner, "category", "retire", name, "--db", db)

        assert result.stderr.startswith(message)
