"""Bad input and typos (issue #11, items 4 and 5): one ``Error:`` line, a known exit status.

Every case here was a traceback or an empty answer with exit status 0.
"""

from __future__ import annotations

import gc
import sqlite3
from typing import TYPE_CHECKING

import pytest
from consent_ledger.cli import main
from consent_ledger.projections.audit_log import EVENT_TYPES

from consent_ledger.model import Business, ConsentRecord, Notice, Template
from consent_ledger.model.aggregate import Aggregate
from tests.cli.conftest import fails, new_ledger, ok, unraisable_exceptions
from tests.cli.test_cli import ADA, opt_in

if TYPE_CHECKING:
    from pathlib import Path

    from click.testing import CliRunner

LATIN_1 = "Acme Outfitters: caf\u00e9\n".encode("latin-1")  # byte 0xe9 at offset 20
NOT_UTF8 = "not UTF-8 text (byte 0xe9 at offset 20, line 1)"


@pytest.fixture
def db(tmp_path: Path, runner: CliRunner) -> str:
    """A ledger where Ada opted in to offers under whatsapp-optin@1."""
    path = new_ledger(runner, str(tmp_path / "ledger.db"))
    opt_in(runner, path)
    return path


@pytest.fixture
def latin1(tmp_path: Path) -> Path:
    path = tmp_path / "latin1.txt"
    path.write_bytes(LATIN_1)
    return path


def events(db: str) -> int:
    with sqlite3.connect(db) as connection:
        return int(connection.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0])


class TestNotUTF8:
    def test_ingest_names_the_file_and_the_byte_and_records_nothing(
        self, db: str, runner: CliRunner, latin1: Path
    ) -> None:
        before = events(db)

        result = fails(runner, "ingest", "whatsapp", str(latin1), "--db", db)

        assert result.stderr == f"Error: {latin1}: {NOT_UTF8}\n"
        assert events(db) == before

    def test_ingest_from_stdin(self, db: str, runner: CliRunner) -> None:
        result = runner.invoke(main, ["ingest", "whatsapp", "-", "--db", db], input=LATIN_1)

        assert (result.exit_code, result.stdout) == (1, "")
        assert result.stderr == f"Error: stdin: {NOT_UTF8}\n"

    def test_check_input(self, db: str, runner: CliRunner, latin1: Path) -> None:
        result = fails(runner, "check", "--input", str(latin1), "--db", db, "-c", "offers")

        assert result.stderr == f"Error: {latin1}: {NOT_UTF8}\n"

    def test_notice_text_is_not_published(self, db: str, runner: CliRunner, latin1: Path) -> None:
        before = events(db)

        result = fails(
            runner, "notice", "publish", "whatsapp-optin", "--db", db, "--language", "en",
            "-c", "offers", "--text-file", str(latin1),
        )  # fmt: skip

        assert result.stderr == f"Error: {latin1}: {NOT_UTF8}\n"
        assert events(db) == before

    @pytest.mark.parametrize("option", ["--public-key", "--since"])
    def test_verify_keys_and_kept_checkpoints(
        self, db: str, runner: CliRunner, latin1: Path, option: str
    ) -> None:
        result = fails(runner, "verify", "--db", db, option, str(latin1))

        assert result.stderr == f"Error: {latin1}: {NOT_UTF8}\n"

    def test_utf16_gets_a_hint(self, db: str, runner: CliRunner, tmp_path: Path) -> None:
        path = tmp_path / "recipients.csv"
        path.write_bytes("identifier\n+447700900123\n".encode("utf-16"))

        result = fails(runner, "check", "--input", str(path), "--db", db, "-c", "offers")

        assert result.stderr.startswith(f"Error: {path}: not UTF-8 text (byte 0xff at offset 0")
        assert "UTF-16" in result.stderr

    def test_an_argument_that_is_not_utf8_is_a_usage_error(
        self, db: str, runner: CliRunner
    ) -> None:
        # What Python makes of a byte that is not UTF-8 on the command line (surrogateescape).
        result = fails(runner, "business", "show", "acme\udce9", "--db", db, code=2)

        assert result.stderr == "Error: an argument is not UTF-8 text: 'acme\\xe9'\n"


def test_a_csv_field_over_the_limit_is_a_bad_row(
    db: str, runner: CliRunner, tmp_path: Path
) -> None:
    """The row is named by line, and the rows after it are still decided."""
    path = tmp_path / "recipients.csv"
    path.write_text(f'identifier,category\n"{"9" * 200_000}",offers\n{ADA},offers\n')

    result = runner.invoke(main, ["check", "--input", str(path), "--db", db])

    assert result.exit_code == 1
    assert result.stderr == (
        "Error: 1 rows could not be checked: line 2: a field is longer than 131,072 characters\n"
    )
    assert [row.split(",")[:4] for row in result.stdout.splitlines()[1:]] == [
        ["3", "+447700900123", "True", "consented"]
    ]


def test_json_rows_whose_values_are_not_text_are_bad_rows(db: str, runner: CliRunner) -> None:
    rows = (
        '{"identifier": "+447700900123", "category": ["offers"]}\n'
        '{"identifier": "+447700900123", "category": "offers", "region": 44}\n'
        '{"identifier": "+447700900123", "category": "offers"}\n'
    )

    result = runner.invoke(main, ["check", "--input", "-", "--db", db], input=rows)

    assert result.exit_code == 1
    assert result.stderr == (
        'Error: 2 rows could not be checked: line 1: category is not text: ["offers"]; '
        "line 2: region is not text: 44\n"
    )
    assert result.stdout.splitlines()[1].startswith("3,+447700900123,True,consented,")


class TestPaths:
    def test_a_key_file_that_is_a_folder(
        self, db: str, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)  # '' is '.': this folder, readable by its owner only

        result = fails(runner, "status", ADA, "--db", db, "--key-file", "")

        assert result.stderr == "Error: . is not a consent-ledger key file (not a file)\n"

    def test_a_database_name_too_long_for_the_file_system(self, runner: CliRunner) -> None:
        name = "x" * 5000

        result = fails(runner, "status", ADA, "--db", name)

        assert result.stderr == f"Error: no ledger at {name}: File name too long\n"

    def test_init_with_the_database_as_its_key_file(
        self, runner: CliRunner, tmp_path: Path
    ) -> None:
        path = tmp_path / "l.db"

        result = fails(runner, "init", "--db", str(path), "--key-file", str(path))

        assert result.stderr == (
            f"Error: the key file {path} would be the database's own file: keep it elsewhere\n"
        )
        assert list(tmp_path.iterdir()) == []


class TestNoticeVersions:
    @pytest.mark.parametrize(
        "notice", ["whatsapp-optin@99999999999999999999999", "whatsapp-optin@\u00b2"]
    )
    def test_audit(self, db: str, runner: CliRunner, notice: str) -> None:
        result = fails(runner, "audit", "--db", db, "--notice", notice, code=2)

        assert "Invalid value for '--notice'" in result.stderr
        assert "does not name a notice version" in result.stderr

    def test_opt_in_records_nothing(self, db: str, runner: CliRunner) -> None:
        before = events(db)

        fails(
            runner, "opt-in", ADA, "--db", db, "-c", "offers", "--method", "web-form",
            "--notice", "whatsapp-optin@\u00b2", code=2,
        )  # fmt: skip

        assert events(db) == before


@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+01:00"])
def test_a_time_beyond_the_calendar_in_utc_is_a_usage_error(
    db: str, runner: CliRunner, moment: str
) -> None:
    result = fails(runner, "status", ADA, "--db", db, "--at", moment, code=2)

    assert f"{moment!r} is out of range" in result.stderr


def test_audience_that_cannot_open_an_identifier_leaves_nothing_open(
    db: str, runner: CliRunner
) -> None:
    """The view's cursor is closed before its database: no "Exception ignored" at exit."""
    ok(runner, "projections", "catch-up", "--db", db)
    with sqlite3.connect(db) as connection:  # the view's copy of Ada's sealed identifier
        connection.execute("UPDATE consent_subjects SET identifier_ct = zeroblob(40)")

    with unraisable_exceptions() as ignored:
        result = runner.invoke(main, ["audience", "--db", db, "-c", "offers"])
        code, stdout, stderr = result.exit_code, result.stdout, result.stderr
        del result  # it holds the exception, and the frames that hold the cursor
        gc.collect()

    assert ignored == []
    assert (code, stdout) == (1, "")
    assert stderr.startswith("Error: the identifier of subject")


class TestUnknownValues:
    @pytest.mark.parametrize(
        ("args", "option", "known"),
        [
            (["audit", "--type", "OptOut"], "'--type'", "'OptedOut'"),
            (["export", "--type", "Bogus"], "'--type'", "'OptedOut'"),
            (["audit", "--method", "website"], "'--method'", "'web-form'"),
            (["audit", "--channel", "fax"], "'--channel'", "'whatsapp'"),
            (["audit", "-c", "Promotions!"], "'--category' / '-c'", "not a category name"),
            (["check", ADA, "-c", "Offers"], "'--category' / '-c'", "not a category name"),
        ],
    )
    def test_is_a_usage_error_naming_the_known_ones(
        self, db: str, runner: CliRunner, args: list[str], option: str, known: str
    ) -> None:
        result = fails(runner, *args, "--db", db, code=2)

        assert f"Error: Invalid value for {option}:" in result.stderr
        assert known in result.stderr

    @pytest.mark.parametrize(
        ("args", "whose"),
        [
            (["audit", "-c", "promotions"], "categories in this ledger"),
            (["export", "-c", "promotions"], "categories in this ledger"),
            (["audit", "-c", "promotions", "--business", "acme"], "this business's categories"),
            (["audience", "-c", "promotions"], "this business's categories"),
            (["check", ADA, "-c", "promotions"], "this business's categories"),
        ],
    )
    def test_an_unknown_category_is_refused_naming_the_known_ones(
        self, db: str, runner: CliRunner, args: list[str], whose: str
    ) -> None:
        """Which categories exist depends on the business: the ledger says, not the parser."""
        result = fails(runner, *args, "--db", db)

        assert result.stderr.startswith(f"Error: unknown category 'promotions'; {whose}: ")
        assert "offers" in result.stderr

    @pytest.mark.parametrize("command", [["audit"], ["export"], ["audience", "-c", "offers"]])
    def test_business(self, db: str, runner: CliRunner, command: list[str]) -> None:
        result = fails(runner, *command, "--db", db, "--business", "nosuch")

        assert result.stderr.startswith("Error: no business 'nosuch' in this ledger")

    def test_check_of_an_unknown_business(self, db: str, runner: CliRunner) -> None:
        result = fails(runner, "check", ADA, "--db", db, "-c", "offers", "--business", "nosuch")

        assert result.stderr.startswith("Error: no business 'nosuch' in this ledger")

    @pytest.mark.parametrize(
        ("notice", "message"),
        [
            ("nosuch@1", "no notice 'nosuch' in this ledger (notices: whatsapp-optin)"),
            ("nosuch", "no notice 'nosuch' in this ledger (notices: whatsapp-optin)"),
            ("whatsapp-optin@7", "notice 'whatsapp-optin' has no version 7 (versions 1 to 1)"),
        ],
    )
    def test_notice(self, db: str, runner: CliRunner, notice: str, message: str) -> None:
        result = fails(runner, "audit", "--db", db, "--notice", notice)

        assert result.stderr == f"Error: {message}\n"

    def test_known_values_still_find_events(self, db: str, runner: CliRunner) -> None:
        result = ok(
            runner, "audit", "--db", db, "--type", "OptedIn", "-c", "offers", "--method",
            "web-form", "--notice", "whatsapp-optin@1", "--business", "acme", "--channel",
            "whatsapp", "--format", "csv",
        )  # fmt: skip

        assert len(result.stdout.splitlines()) == 2  # the header, Ada's opt-in


def test_every_stored_event_type_is_a_known_type() -> None:
    """A new event class without its name in EVENT_TYPES could not be filtered by."""
    bases = {"Event", "Change"}  # the aggregates' abstract bases, never stored
    topics = {
        str(getattr(value, "TOPIC", "")).rsplit(".", 1)[1]
        for aggregate in (Business, ConsentRecord, Notice, Template)
        for value in vars(aggregate).values()
        if isinstance(value, type) and issubclass(value, Aggregate.Event)
    }

    assert topics - bases == set(EVENT_TYPES)


class TestOneCategory:
    @pytest.mark.parametrize(
        "args",
        [
            ["check", ADA, "-c", "offers", "-c", "order-updates"],
            ["check", ADA, "-c", "offers,order-updates"],
            ["audience", "-c", "offers", "-c", "order-updates"],
            ["audit", "-c", "offers", "-c", "order-updates"],
        ],
    )
    def test_more_than_one_is_a_usage_error(
        self, db: str, runner: CliRunner, args: list[str]
    ) -> None:
        result = fails(runner, *args, "--db", db, code=2)

        assert "give one category" in result.stderr
