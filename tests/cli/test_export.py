"""``consent-ledger export``: events as JSON Lines or CSV, and bundles that ``verify`` checks."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from consent_ledger.cli import main

from tests.cli.conftest import fails, new_ledger, ok
from tests.cli.test_cli import ADA, opt_in

if TYPE_CHECKING:
    from pathlib import Path

    from click.testing import CliRunner

BRUNO = "+1 202-555-0143"


@pytest.fixture
def db(tmp_path: Path, runner: CliRunner) -> str:
    """Ada and Bruno opted in to offers; Ada then opted out of everything."""
    path = new_ledger(runner, str(tmp_path / "ledger.db"))
    opt_in(runner, path)
    ok(
        runner, "opt-in", BRUNO, "--db", path, "-c", "offers",
        "--notice", "whatsapp-optin@1", "--method", "web-form",
    )  # fmt: skip
    ok(runner, "opt-out", ADA, "--db", path, "--all", "--method", "sms-keyword")
    return path


def lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines()]


def test_export_writes_every_event_as_a_json_line(db: str, runner: CliRunner) -> None:
    exported = lines(ok(runner, "export", "--db", db).stdout)

    assert [e["position"] for e in exported] == list(range(1, len(exported) + 1))
    types = [(e["stream_type"], e["event_type"]) for e in exported]
    assert types.count(("ConsentRecord", "OptedIn")) == 2
    assert types.count(("ConsentRecord", "OptedOut")) == 1
    assert all("identifier" not in e for e in exported)
    opted_out = next(e for e in exported if e["event_type"] == "OptedOut")
    assert opted_out["event"]["provenance"]["method"] == "sms-keyword"  # type: ignore[index]


def test_export_filters_by_type_and_reveals_only_when_asked(db: str, runner: CliRunner) -> None:
    hidden = lines(ok(runner, "export", "--db", db, "--type", "OptedOut").stdout)
    shown = lines(ok(runner, "export", "--db", db, "--type", "OptedOut", "--reveal").stdout)

    assert [e["event_type"] for e in hidden] == ["OptedOut"]
    assert "identifier" not in hidden[0]
    assert shown[0]["identifier"] == "+447700900123"


def test_export_one_persons_events(db: str, runner: CliRunner) -> None:
    exported = lines(ok(runner, "export", "--db", db, "--identifier", BRUNO).stdout)

    assert [e["event_type"] for e in exported] == ["SubjectRegistered", "OptedIn"]
    assert len({e["stream_id"] for e in exported}) == 1


def test_export_csv_has_a_row_per_event(db: str, runner: CliRunner) -> None:
    output = ok(runner, "export", "--db", db, "--format", "csv", "--category", "offers").stdout

    rows = list(csv.DictReader(io.StringIO(output)))
    assert [r["event_type"] for r in rows].count("OptedIn") == 2
    assert all("identifier" not in r for r in rows)


def test_export_to_a_file_in_a_missing_folder_fails_and_leaves_nothing(
    db: str, runner: CliRunner, tmp_path: Path
) -> None:
    target = tmp_path / "missing" / "events.jsonl"

    result = fails(runner, "export", "--db", db, "-o", str(target))

    assert result.stderr.startswith("Error: cannot write")
    assert not target.parent.exists()


def test_an_unknown_person_is_a_clear_error(db: str, runner: CliRunner) -> None:
    result = fails(runner, "export", "--db", db, "--identifier", "+44 7700 900999")

    assert "Error: acme has no consent record for +44 7700 900999" in result.stderr


# Bundles, written by export and checked by verify.


def test_a_bundle_of_the_whole_ledger_verifies(db: str, runner: CliRunner, tmp_path: Path) -> None:
    bundle = tmp_path / "ledger.bundle"
    key = ok(runner, "checkpoint", "--db", db, "--print-key").stdout.strip()

    ok(runner, "export", "--db", db, "--bundle", str(bundle))
    result = ok(runner, "verify", str(bundle), "--public-key", key)

    events = len(ok(runner, "export", "--db", db).stdout.splitlines())
    assert result.stdout.startswith(
        f"verified: {events} events (complete) exactly as checkpoint {events} of consent-ledger/"
    )
    assert "warning" not in result.stderr


def test_a_bundle_of_one_person_verifies_and_warns_when_the_key_is_not_pinned(
    db: str, runner: CliRunner, tmp_path: Path
) -> None:
    bundle = tmp_path / "bruno.bundle"

    ok(runner, "export", "--db", db, "--identifier", BRUNO, "--bundle", str(bundle))
    result = ok(runner, "verify", str(bundle))

    assert "(chosen events, each with its proof)" in result.stdout
    assert "warning: checked with the key inside the bundle" in result.stderr
    records = [json.loads(line)["record"] for line in bundle.read_text().splitlines()[1:]]
    topics = {r["topic"].rsplit(".", 1)[-1] for r in records}
    assert {"SubjectRegistered", "OptedIn", "VersionPublished"} <= topics  # and the notice


def test_a_tampered_bundle_fails_naming_the_line(
    db: str, runner: CliRunner, tmp_path: Path
) -> None:
    bundle = tmp_path / "ledger.bundle"
    ok(runner, "export", "--db", db, "--bundle", str(bundle))
    text = bundle.read_text().splitlines(keepends=True)
    text[5] = text[5].replace("acme", "acne", 1)
    bundle.write_text("".join(text))

    result = fails(runner, "verify", str(bundle))
    report = runner.invoke(main, ["verify", str(bundle), "--format", "json"])

    assert "Error: verification failed: line 6: the event at position" in result.stderr
    assert report.exit_code == 1
    assert json.loads(report.stdout) | {"origin": "", "key": ""} == {
        "origin": "",
        "key": "",
        "size": len(text) - 1,
        "events": 4,
        "complete": True,
        "pinned": False,
        "since": [],
        "created_at": json.loads(text[0])["created_at"],
        "problem": report.stderr.removeprefix("Error: verification failed: ").strip(),
        "line": 6,
        "position": json.loads(text[5])["record"]["position"],
        "ok": False,
    }


def test_a_file_that_is_not_a_bundle_fails(runner: CliRunner, tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("hello\n")

    result = fails(runner, "verify", str(other))

    assert result.stderr.strip() == (
        "Error: verification failed: not a consent-ledger bundle "
        "(its first line must name consent-ledger-bundle/1)"
    )


# The bundle's header (issue #11): not signed, so checked against the file and the clock.


def bundle_with(db: str, runner: CliRunner, tmp_path: Path, **header: object) -> str:
    """A bundle of the ledger, its header changed as given."""
    path = tmp_path / "ledger.bundle"
    ok(runner, "export", "--db", db, "--bundle", str(path))
    lines = path.read_text().splitlines(keepends=True)
    lines[0] = json.dumps(json.loads(lines[0]) | header) + "\n"
    path.write_text("".join(lines))
    return str(path)


def test_a_bundle_header_with_another_event_count_fails(
    db: str, runner: CliRunner, tmp_path: Path
) -> None:
    bundle = bundle_with(db, runner, tmp_path, events=6)

    result = fails(runner, "verify", bundle)

    assert result.stderr.splitlines()[-1] == (
        "Error: verification failed: line 1: the bundle header says 6 events; the bundle holds 9"
    )


def test_a_bundle_header_made_in_the_future_fails(
    db: str, runner: CliRunner, tmp_path: Path
) -> None:
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    bundle = bundle_with(db, runner, tmp_path, created_at=later)

    result = fails(runner, "verify", bundle)

    assert f"line 1: the bundle header's created_at {later} is after this check" in result.stderr


def test_a_bundle_header_made_before_its_events_fails(
    db: str, runner: CliRunner, tmp_path: Path
) -> None:
    bundle = bundle_with(db, runner, tmp_path, created_at="2020-01-01T00:00:00Z")

    result = fails(runner, "verify", bundle)

    assert (
        "line 1: the bundle header's created_at 2020-01-01T00:00:00Z is before the newest "
        "event it holds was recorded"
    ) in result.stderr
