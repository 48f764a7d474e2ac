"""The command line, as a user types it: stdout, stderr and exit status."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING

import click
import pytest
from click.testing import CliRunner, Result
from consent_ledger.cli import main

from consent_ledger import ConsentLedger
from tests.cli.conftest import NOTICE_TEXT, fails, new_ledger, ok
from tests.conftest import StoreFactory

if TYPE_CHECKING:
    from pathlib import Path

ADA = "+44 7700 900123"


@pytest.fixture
def db(tmp_path: Path, runner: CliRunner) -> str:
    """An SQLite ledger with business acme and notice whatsapp-optin@1."""
    return new_ledger(runner, str(tmp_path / "ledger.db"))


def opt_in(runner: CliRunner, db: str, *extra: str) -> Result:
    return ok(
        runner,
        "opt-in",
        ADA,
        "--db",
        db,
        "-c",
        "offers",
        "--notice",
        "whatsapp-optin@1",
        "--method",
        "web-form",
        *extra,
    )


class TestInit:
    def test_creates_the_ledger_and_says_where_the_key_is(
        self, tmp_path: Path, runner: CliRunner
    ) -> None:
        result = ok(runner, "init", "--db", str(tmp_path / "l.db"))

        assert f"Created consent ledger at {tmp_path / 'l.db'}" in result.stdout
        assert f"Master key written to {tmp_path / 'l.db.key'} (mode 0600)" in result.stdout
        assert (tmp_path / "l.db.key").exists()

    def test_refuses_an_existing_ledger(self, db: str, runner: CliRunner) -> None:
        result = fails(runner, "init", "--db", db)

        assert (
            result.stderr == f"Error: {db} exists already; choose another path for a new ledger\n"
        )

    def test_business_needs_its_name(self, tmp_path: Path, runner: CliRunner) -> None:
        result = fails(runner, "init", "--db", str(tmp_path / "l.db"), "--business", "x", code=2)

        assert "--business and --business-name go together" in result.stderr
        assert not (tmp_path / "l.db").exists()

    def test_takes_the_db_from_the_environment(
        self, tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("CONSENT_LEDGER_DB", str(tmp_path / "env.db"))

        ok(runner, "init")

        assert (tmp_path / "env.db").exists()


class TestNotices:
    def test_publish_shows_the_version_and_content_hash(self, db: str, runner: CliRunner) -> None:
        result = ok(
            runner,
            "notice",
            "publish",
            "whatsapp-optin",
            "--db",
            db,
            "--language",
            "en",
            "-c",
            "order-updates",
            "-c",
            "offers",
            "-c",
            "recommendations",
            input=NOTICE_TEXT + " And recommendations.",
        )

        assert result.stdout.startswith("Published notice whatsapp-optin@2 sha256:")

    def test_show_prints_the_full_text(self, db: str, runner: CliRunner) -> None:
        result = ok(runner, "notice", "show", "whatsapp-optin@1", "--db", db)

        assert "notice:       whatsapp-optin@1" in result.stdout
        assert "categories:   offers order-updates" in result.stdout
        assert result.stdout.rstrip().endswith(NOTICE_TEXT)

    def test_show_as_json(self, db: str, runner: CliRunner) -> None:
        data = json.loads(
            ok(runner, "notice", "show", "whatsapp-optin", "--db", db, "--format", "json").stdout
        )

        assert data["text"] == NOTICE_TEXT
        assert data["business_name"] == "Acme Outfitters"
        assert data["content_hash"].startswith("sha256:")

    def test_list(self, db: str, runner: CliRunner) -> None:
        rows = list(
            csv.DictReader(
                io.StringIO(ok(runner, "notice", "list", "--db", db, "--format", "csv").stdout)
            )
        )

        assert [(r["notice"], r["categories"]) for r in rows] == [
            ("whatsapp-optin@1", "offers order-updates")
        ]

    def test_a_notice_that_does_not_name_the_business_is_refused(
        self, db: str, runner: CliRunner
    ) -> None:
        result = fails(
            runner,
            "notice",
            "publish",
            "vague",
            "--db",
            db,
            "--language",
            "en",
            "-c",
            "offers",
            input="We may send you offers.",
        )

        assert result.stderr.startswith("Error: the notice text does not name the business")

    def test_an_unknown_category_is_refused(self, db: str, runner: CliRunner) -> None:
        result = fails(
            runner,
            "notice",
            "publish",
            "x",
            "--db",
            db,
            "--language",
            "en",
            "-c",
            "ofers",
            input=NOTICE_TEXT,
        )

        assert result.stderr.startswith(
            "Error: unknown category 'ofers'; this business's categories: order-updates, "
        )


class TestRecordAndRead:
    def test_opt_in_then_status_as_json(self, db: str, runner: CliRunner) -> None:
        recorded = opt_in(runner, db, "--collection-point", "checkout")
        status = json.loads(
            ok(runner, "status", "+447700900123", "--db", db, "--format", "json").stdout
        )

        assert "Recorded OptedIn #2 for +447700900123" in recorded.stdout
        assert status["identifier"] == "+447700900123"
        assert [
            (c["channel"], c["category"], c["state"], c["notice"], c["event_version"])
            for c in status["consents"]
        ] == [("whatsapp", "offers", "granted", "whatsapp-optin@1", 2)]

    def test_national_form_with_region(self, db: str, runner: CliRunner) -> None:
        opt_in(runner, db)

        result = ok(runner, "status", "07700 900123", "--region", "GB", "--db", db)

        assert "whatsapp  offers" in result.stdout

    def test_opt_out_all_then_status_table(self, db: str, runner: CliRunner) -> None:
        opt_in(runner, db)
        ok(
            runner,
            "opt-out",
            ADA,
            "--all",
            "--db",
            db,
            "--method",
            "whatsapp-thread",
            "--reason",
            "STOP",
        )

        lines = ok(runner, "status", ADA, "--db", db).stdout.splitlines()

        assert lines[0].startswith("Consent of +447700900123 towards acme now")
        assert lines[1].split() == [
            "CHANNEL",
            "CATEGORY",
            "SENDER",
            "STATE",
            "SINCE",
            "EXPIRES",
            "NOTICE",
            "EVENT",
        ]
        assert [line.split()[:4] for line in lines[2:]] == [
            ["whatsapp", "(all)", "any", "withdrawn"],
            ["whatsapp", "offers", "any", "withdrawn"],
        ]

    def test_change_and_history_as_csv(self, db: str, runner: CliRunner) -> None:
        opt_in(runner, db, "--occurred-at", "2026-01-05T10:00:00Z", "--evidence", "ticked box")
        ok(
            runner,
            "change",
            ADA,
            "--db",
            db,
            "--grant",
            "order-updates",
            "--withdraw",
            "offers",
            "--notice",
            "whatsapp-optin@1",
            "--method",
            "web-form",
            "--actor",
            "operator:ada",
        )

        rows = list(
            csv.DictReader(
                io.StringIO(ok(runner, "history", ADA, "--db", db, "--format", "csv").stdout)
            )
        )

        assert [(r["version"], r["event_type"], r["granted"], r["withdrawn"]) for r in rows] == [
            ("1", "SubjectRegistered", "", ""),
            ("2", "OptedIn", "offers", ""),
            ("3", "CategoriesChanged", "order-updates", "offers"),
        ]
        assert rows[1]["occurred_at"] == "2026-01-05T10:00:00.000000Z"
        assert rows[1]["evidence"] == "'ticked box'"
        assert rows[2]["actor"] == "operator:ada"

    def test_status_at_and_known_at(self, db: str, runner: CliRunner) -> None:
        opt_in(runner, db, "--occurred-at", "2026-01-05")

        was = ok(runner, "status", ADA, "--db", db, "--at", "2026-02-01", "--format", "json").stdout
        knew = ok(
            runner,
            "status",
            ADA,
            "--db",
            db,
            "--at",
            "2026-02-01",
            "--known-at",
            "2026-02-01",
            "--format",
            "json",
        ).stdout

        assert [c["state"] for c in json.loads(was)["consents"]] == ["granted"]
        assert json.loads(knew)["consents"] == []

    def test_double_opt_in(self, db: str, runner: CliRunner) -> None:
        opt_in(runner, db, "--awaiting-confirmation")
        pending = json.loads(ok(runner, "status", ADA, "--db", db, "--format", "json").stdout)
        ok(runner, "confirm", ADA, "--db", db, "-c", "offers", "--method", "sms-keyword")
        granted = json.loads(ok(runner, "status", ADA, "--db", db, "--format", "json").stdout)

        assert [c["state"] for c in pending["consents"]] == ["pending"]
        assert [c["state"] for c in granted["consents"]] == ["granted"]

    def test_evidence_file(self, db: str, runner: CliRunner, tmp_path: Path) -> None:
        form = tmp_path / "form.pdf"
        form.write_bytes(b"%PDF-1.4 signed form")
        opt_in(runner, db, "--evidence-file", str(form))

        history = json.loads(ok(runner, "history", ADA, "--db", db, "--format", "json").stdout)

        evidence = history["events"][1]["evidence"]
        assert (evidence["file_name"], evidence["media_type"]) == ("form.pdf", "application/pdf")


class TestBadInput:
    def test_an_unreadable_phone_number(self, db: str, runner: CliRunner) -> None:
        result = fails(runner, "status", "07700 900123", "--db", db)

        assert result.stderr.startswith("Error: cannot read '07700 900123' as a phone number")
        assert "give a region" in result.stderr

    def test_an_unknown_category_writes_nothing(self, db: str, runner: CliRunner) -> None:
        result = fails(
            runner,
            "opt-in",
            ADA,
            "--db",
            db,
            "-c",
            "ofers",
            "--notice",
            "whatsapp-optin",
            "--method",
            "web-form",
        )

        assert result.stderr.startswith("Error: unknown category 'ofers'")
        assert fails(runner, "history", ADA, "--db", db).stderr == (
            "Error: business 'acme' has no consent record for +447700900123\n"
        )

    def test_an_unknown_notice(self, db: str, runner: CliRunner) -> None:
        result = fails(
            runner,
            "opt-in",
            ADA,
            "--db",
            db,
            "-c",
            "offers",
            "--notice",
            "nope@1",
            "--method",
            "web-form",
        )

        assert result.stderr == "Error: business 'acme' has published no notice 'nope'\n"

    def test_a_malformed_date_is_a_usage_error(self, db: str, runner: CliRunner) -> None:
        result = fails(runner, "status", ADA, "--db", db, "--at", "yesterday", code=2)

        assert "'yesterday' is not an ISO 8601 time" in result.stderr

    def test_a_future_occurrence_is_refused(self, db: str, runner: CliRunner) -> None:
        result = fails(
            runner,
            "opt-out",
            ADA,
            "--all",
            "--db",
            db,
            "--method",
            "api",
            "--occurred-at",
            "2999-01-01",
        )

        assert "is in the future" in result.stderr

    def test_a_db_that_does_not_exist(self, tmp_path: Path, runner: CliRunner) -> None:
        missing = tmp_path / "missing.db"
        result = fails(runner, "status", ADA, "--db", str(missing))

        assert result.stderr == (
            f"Error: no ledger at {missing}; create one with: consent-ledger init --db {missing}\n"
        )
        assert not missing.exists()

    def test_a_db_that_is_not_a_ledger(self, tmp_path: Path, runner: CliRunner) -> None:
        other = tmp_path / "other.db"
        other.write_text("not sqlite")

        result = fails(runner, "history", ADA, "--db", str(other))

        assert result.stderr == f"Error: {other} is not a consent ledger\n"

    def test_a_wrong_key(self, db: str, runner: CliRunner, tmp_path: Path) -> None:
        ok(runner, "init", "--db", str(tmp_path / "other.db"))

        result = fails(
            runner, "status", ADA, "--db", db, "--key-file", str(tmp_path / "other.db.key")
        )

        assert result.stderr.startswith(
            f"Error: the key from key file {tmp_path / 'other.db.key'} belongs to ledger"
        )

    def test_opt_out_needs_categories_or_all(self, db: str, runner: CliRunner) -> None:
        neither = fails(runner, "opt-out", ADA, "--db", db, "--method", "api", code=2)
        both = fails(
            runner, "opt-out", ADA, "--db", db, "--method", "api", "-c", "offers", "--all", code=2
        )

        assert "say what is withdrawn: --category CAT (repeatable) or --all" in neither.stderr
        assert "not both" not in neither.stderr
        assert "give the categories withdrawn (--category) or --all, not both" in both.stderr

    def test_a_too_long_notice_names_the_text_not_a_field(self, db: str, runner: CliRunner) -> None:
        text = "Acme Outfitters " * 7000
        result = fails(
            runner,
            *("notice", "publish", "long", "--db", db, "--language", "en", "-c", "offers"),
            input=text,
        )

        assert result.stderr == (
            "Error: the notice's text: String should have at most 100000 characters\n"
        )

    def test_times_in_messages_read_as_the_ledger_writes_them(
        self, db: str, runner: CliRunner
    ) -> None:
        result = fails(
            runner,
            *("opt-out", ADA, "--all", "--db", db, "--method", "api"),
            *("--occurred-at", "2999-01-01T10:30:00.123456+02:00"),
        )

        assert result.stderr == (
            "Error: the decision is dated 2999-01-01T08:30:00Z, which is in the future: "
            "record decisions that have happened\n"
        )

    def test_a_long_bad_identifier_is_not_echoed_whole(self, db: str, runner: CliRunner) -> None:
        result = fails(runner, "status", "1" * 100_000, "--db", db)

        assert len(result.stderr) < 300
        assert "(100,000 characters)" in result.stderr

    def test_a_local_number_without_its_area_code(self, db: str, runner: CliRunner) -> None:
        result = fails(runner, "opt-out", "+1 555 0100", "--all", "--db", db, "--method", "api")

        assert "is a local number, dialled without its area code" in result.stderr

    def test_a_status_in_the_future_is_not_captioned_now(self, db: str, runner: CliRunner) -> None:
        opt_in(runner, db)

        result = ok(runner, "status", ADA, "--db", db, "--at", "2030-01-01")

        assert result.stdout.startswith(
            "Consent of +447700900123 towards acme at 2030-01-01T00:00:00Z"
        )

    def test_a_view_db_that_is_not_there_is_not_made(
        self, db: str, runner: CliRunner, tmp_path: Path
    ) -> None:
        typo = tmp_path / "vews.db"

        checked = fails(runner, "check", ADA, "-c", "offers", "--db", db, "--view-db", str(typo))
        status = fails(runner, "projections", "status", "--db", db, "--view-db", str(typo))

        assert checked.stderr == (
            f"Error: no view database at {typo}: make it with "
            f"consent-ledger projections catch-up --view-db {typo}\n"
        )
        assert status.stderr == checked.stderr
        assert not typo.exists()

    @pytest.mark.parametrize("kind", ["missing folder", "not a database"])
    def test_a_view_db_that_cannot_be_opened(
        self, db: str, runner: CliRunner, tmp_path: Path, kind: str
    ) -> None:
        path = tmp_path / "no" / "views.db"
        if kind == "not a database":
            path = tmp_path / "views.db"
            path.write_bytes(b"\x00not sqlite" * 100)

        result = fails(runner, "projections", "catch-up", "--db", db, "--view-db", str(path))

        assert result.stderr.startswith(f"Error: cannot open {path} as the views' SQLite database")

    def test_status_explains_a_later_grant_beside_an_all_withdrawal(
        self, db: str, runner: CliRunner
    ) -> None:
        opt_in(runner, db, "--occurred-at", "2026-11-01")
        ok(runner, *("opt-out", ADA, "--all", "--db", db, "--method", "api"),
           *("--occurred-at", "2026-11-10"))  # fmt: skip
        opt_in(runner, db, "--occurred-at", "2026-11-20")

        result = ok(runner, "status", ADA, "--db", db)

        assert result.stdout.splitlines()[-1] == (
            "Note: #3 OptedOut withdrew every category on whatsapp at 2026-11-10T00:00:00Z; "
            "events apply in the order they occurred, so what was granted after it stands: "
            "offers (granted by #4 OptedIn, 2026-11-20T00:00:00Z)"
        )

    def test_an_opt_in_dated_before_its_notice_was_published_is_flagged(
        self, db: str, runner: CliRunner
    ) -> None:
        opt_in(runner, db, "--occurred-at", "2026-01-15")

        table = ok(runner, "history", ADA, "--db", db)
        as_json = json.loads(ok(runner, "history", ADA, "--db", db, "--format", "json").stdout)

        opted_in = as_json["events"][1]
        assert opted_in["occurred_at"] < opted_in["notice_published_at"]
        assert "dated before whatsapp-optin@1 was published (" in table.stdout.splitlines()[-1]

    def test_an_unreachable_postgres_keeps_psycopgs_reason(self, runner: CliRunner) -> None:
        result = fails(runner, "status", ADA, "--db", "postgresql://nobody@127.0.0.1:1/none")

        assert result.stderr.startswith("Error: cannot connect to postgresql://nobody@127.0.0.1:1/")
        assert "Connection refused" in result.stderr
        assert "Is the server running" in result.stderr
        assert result.stderr.count("\n") == 1

    def test_ctrl_c_exits_130(
        self, db: str, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def interrupted(*_: object, **__: object) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(ConsentLedger, "get_status", interrupted)

        result = runner.invoke(main, ["status", ADA, "--db", db])

        assert result.exit_code == 130
        assert result.stderr == "Interrupted\n"

    def test_an_unknown_method_is_a_usage_error(self, db: str, runner: CliRunner) -> None:
        result = fails(
            runner, "opt-out", ADA, "--all", "--db", db, "--method", "carrier-pigeon", code=2
        )

        assert "Invalid value for '--method'" in result.stderr


def test_every_command_has_help() -> None:
    """Each command documents itself with an example; each group lists its commands."""
    runner = CliRunner()
    paths: list[list[str]] = []
    ctx = click.Context(main)
    for name in main.list_commands(ctx):
        command = main.get_command(ctx, name)
        if isinstance(command, click.Group):
            paths += [[name, sub] for sub in command.commands]
        else:
            paths.append([name])
    for path in paths:
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "Example" in result.stdout, path


@pytest.mark.postgres
def test_a_postgres_ledger_from_the_command_line(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """init takes a key file for PostgreSQL; later commands find it through the environment."""
    factory = StoreFactory("postgres", tmp_path)
    db, key_file = factory.new_location()
    assert key_file is not None
    try:
        no_key = fails(runner, "init", "--db", db)
        assert "keeps its master key outside the database: pass --key-file" in no_key.stderr

        init = ok(
            runner,
            "init",
            "--db",
            db,
            "--key-file",
            str(key_file),
            "--business",
            "acme",
            "--business-name",
            "Acme Outfitters",
        )
        assert f"Master key written to {key_file} (mode 0600)" in init.stdout

        missing = fails(runner, "status", ADA, "--db", db)
        assert missing.stderr.startswith("Error: no master key for the ledger at postgresql://")

        monkeypatch.setenv("CONSENT_LEDGER_KEY_FILE", str(key_file))
        ok(
            runner,
            "notice",
            "publish",
            "whatsapp-optin",
            "--db",
            db,
            "--language",
            "en",
            "-c",
            "offers",
            input=NOTICE_TEXT,
        )
        opt_in(runner, db)
        status = json.loads(ok(runner, "status", ADA, "--db", db, "--format", "json").stdout)
        assert [c["state"] for c in status["consents"]] == ["granted"]
    finally:
        factory.cleanup()


class TestBusiness:
    def test_register_and_show(self, db: str, runner: CliRunner) -> None:
        ok(runner, "business", "register", "globex", "--name", "Globex", "--db", db)

        acme = json.loads(
            ok(runner, "business", "show", "acme", "--db", db, "--format", "json").stdout
        )
        globex = ok(runner, "business", "show", "globex", "--db", db).stdout

        assert acme == {
            "business_id": "acme",
            "display_name": "Acme Outfitters",
            "default": True,
            "notice_ids": ["whatsapp-optin"],
        }
        assert globex.splitlines() == [
            "business:     globex",
            "name:         Globex",
            "notices:      -",
        ]

    def test_an_id_taken_twice_is_refused(self, db: str, runner: CliRunner) -> None:
        result = fails(runner, "business", "register", "acme", "--name", "Acme", "--db", db)

        assert result.stderr == "Error: business 'acme' is registered already\n"


def test_notice_show_as_csv(db: str, runner: CliRunner) -> None:
    [row] = csv.DictReader(
        io.StringIO(
            ok(runner, "notice", "show", "whatsapp-optin", "--db", db, "--format", "csv").stdout
        )
    )

    assert (row["notice_id"], row["version"], row["categories"], row["text"]) == (
        "whatsapp-optin",
        "1",
        "offers order-updates",
        NOTICE_TEXT,
    )


def test_marketing_preference(db: str, runner: CliRunner) -> None:
    ok(runner, "marketing-preference", ADA, "--db", db, "--stop", "--sender", "15550001111")

    status = json.loads(ok(runner, "status", ADA, "--db", db, "--format", "json").stdout)
    table = ok(runner, "status", ADA, "--db", db).stdout

    [stop] = status["platform_marketing"]
    assert (stop["sender"], stop["stopped"], stop["event_type"]) == (
        "15550001111",
        True,
        "PlatformMarketingStopped",
    )
    assert "WhatsApp marketing stopped by the person for sender 15550001111" in table
    assert fails(runner, "marketing-preference", ADA, "--db", db, code=2).stderr.endswith(
        "say whether the person stopped (--stop) or resumed (--resume) marketing\n"
    )
