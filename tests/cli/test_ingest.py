"""``consent-ledger ingest whatsapp``: webhook bodies in, one JSON line per item out."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from consent_ledger.cli import main

from consent_ledger.application.catalogue import Catalogue
from tests.cli.conftest import fails, new_ledger, ok
from tests.cli.test_cli import ADA, opt_in

if TYPE_CHECKING:
    from click.testing import CliRunner

PAYLOADS = Path(__file__).parent.parent / "payloads" / "whatsapp"


@pytest.fixture
def db(tmp_path: Path, runner: CliRunner) -> str:
    """Ada opted in on 1 October: before the webhooks' messages."""
    path = new_ledger(runner, str(tmp_path / "ledger.db"))
    opt_in(runner, path, "--occurred-at", "2026-10-01T09:00:00Z")
    return path


def test_stop_from_stdin_opts_out_and_says_so(db: str, runner: CliRunner) -> None:
    body = (PAYLOADS / "text_stop.json").read_text()

    result = ok(runner, "ingest", "whatsapp", "-", "--db", db, input=json.dumps(json.loads(body)))

    [line] = [json.loads(text) for text in result.stdout.splitlines()]
    assert (line["action"], line["event"]) == ("opted-out", "OptedOut#3")
    assert (
        result.stderr.strip()
        == "accepted 1 (1 consent changes), duplicates 0, ignored 0, rejected 0"
    )
    status = json.loads(ok(runner, "status", ADA, "--db", db, "--format", "json").stdout)
    assert {c["state"] for c in status["consents"] if c["channel"] == "whatsapp"} == {"withdrawn"}


def test_a_second_delivery_changes_nothing(db: str, runner: CliRunner) -> None:
    source = str(PAYLOADS / "text_stop.json")
    ok(runner, "ingest", "whatsapp", source, "--db", db)

    result = ok(runner, "ingest", "whatsapp", source, "--db", db)

    assert [json.loads(t)["action"] for t in result.stdout.splitlines()] == ["duplicate"]


def stop_then_broken(tmp_path: Path) -> str:
    """A file of two lines: Ada's STOP, then a line that is not JSON."""
    source = tmp_path / "webhooks.jsonl"
    stop = json.dumps(json.loads((PAYLOADS / "text_stop.json").read_text()))
    source.write_text(f"{stop}\n{{broken\n")
    return str(source)


def test_unreadable_lines_are_reported_and_the_rest_taken(
    db: str, runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(main, ["ingest", "whatsapp", stop_then_broken(tmp_path), "--db", db])

    assert result.exit_code == 1
    assert [json.loads(t)["action"] for t in result.stdout.splitlines()] == ["opted-out"]
    assert "rejected: line 2: not JSON" in result.stderr


def test_strict_refuses_everything_on_one_bad_line(
    db: str, runner: CliRunner, tmp_path: Path
) -> None:
    source = stop_then_broken(tmp_path)

    result = fails(runner, "ingest", "whatsapp", source, "--db", db, "--strict")

    assert result.stderr.startswith("Error: nothing ingested: line 2: not JSON")
    status = json.loads(ok(runner, "status", ADA, "--db", db, "--format", "json").stdout)
    assert "withdrawn" not in {c["state"] for c in status["consents"]}


def test_template_set_show_and_check_by_template(db: str, runner: CliRunner) -> None:
    sale = ("spring_sale", "-l", "en_US", "--db", db)
    ok(runner, "template", "set", *sale, "--category", "MARKETING")

    shown = ok(runner, "template", "show", *sale)
    by_template = ("--template", "spring_sale", "--template-language", "en_US", "--db", db)
    allowed = ok(runner, "check", ADA, "-c", "offers", *by_template)
    unknown = fails(
        runner, "check", ADA, "-c", "offers", "--template", "nope", "--template-language", "en_US",
        "--db", db,
    )  # fmt: skip

    assert shown.stdout.splitlines()[0] == "spring_sale (en_US): MARKETING"
    assert allowed.stdout.startswith("ALLOWED: consented")
    assert "as MARKETING" in allowed.stdout
    assert unknown.stderr.startswith("Error: no category is recorded for template nope (en_US)")


def test_a_bulk_check_by_template_looks_its_category_up_once(
    db: str, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(
        runner,
        "template",
        "set",
        "spring_sale",
        "-l",
        "en_US",
        "--category",
        "MARKETING",
        "--db",
        db,
    )
    rows = tmp_path / "recipients.csv"
    rows.write_text(f"identifier,template_category\n{ADA},\n{ADA},UTILITY\n{ADA},\n")
    lookups: list[tuple[Any, ...]] = []
    look_up = Catalogue.template_category

    def counted(catalogue: Catalogue, *args: Any, **kwargs: Any) -> Any:
        lookups.append(args)
        return look_up(catalogue, *args, **kwargs)

    monkeypatch.setattr(Catalogue, "template_category", counted)

    result = runner.invoke(
        main,
        ["check", "--input", str(rows), "-c", "offers", "--db", db, "--format", "jsonl",
         "--template", "spring_sale", "--template-language", "en_US"],
    )  # fmt: skip

    decisions = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(d["line"], d["allowed"], d["template_category"]) for d in decisions] == [
        (2, True, "MARKETING"),
        (4, True, "MARKETING"),
    ]
    assert "line 3: give the template or its category, not both" in result.stderr
    assert lookups == [("acme", "spring_sale", "en_US")]


def test_check_works_out_the_service_window_from_ingested_messages(
    db: str, runner: CliRunner, tmp_path: Path
) -> None:
    """Dan never opted in; he wrote an hour ago: a utility reply may go now, marketing not."""
    body = json.loads((PAYLOADS / "text_help.json").read_text())
    [message] = body["entry"][0]["changes"][0]["value"]["messages"]
    message["timestamp"] = str(int(time.time()) - 3600)
    source = tmp_path / "help.json"
    source.write_text(json.dumps(body))
    ok(runner, "ingest", "whatsapp", str(source), "--db", db)

    utility = ok(runner, "check", "+1 202-555-0187", "-c", "order-updates", "--db", db)
    marketing = runner.invoke(main, ["check", "+1 202-555-0187", "-c", "offers", "--db", db])

    assert utility.stdout.startswith("ALLOWED: service-window")
    assert marketing.exit_code == 3
    assert marketing.stdout.startswith("DENIED: no-consent")


def test_an_operators_keywords_are_used(db: str, runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "keywords.json"
    config.write_text(json.dumps({"rules": [{"word": "LEAVE ME BE", "kind": "opt_out"}]}))
    body = json.loads((PAYLOADS / "text_stop.json").read_text())
    body["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "leave me be!"
    source = tmp_path / "body.json"
    source.write_text(json.dumps(body))

    result = ok(runner, "ingest", "whatsapp", str(source), "--db", db, "--keywords", str(config))
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    refused = fails(
        runner, "ingest", "whatsapp", str(source), "--db", db, "--keywords", str(broken)
    )

    assert json.loads(result.stdout)["action"] == "opted-out"
    assert refused.stderr.startswith("Error: the keywords file is not JSON")


def test_history_says_what_was_reported_and_what_was_linked(db: str, runner: CliRunner) -> None:
    ok(runner, "ingest", "whatsapp", str(PAYLOADS / "bsuid.json"), "--db", db)
    ok(runner, "ingest", "whatsapp", str(PAYLOADS / "text_help.json"), "--db", db)

    table = ok(runner, "history", "+1 202-555-0187", "--db", db).stdout
    events = json.loads(
        ok(runner, "history", "+1 202-555-0187", "--db", db, "--format", "json").stdout
    )["events"]

    assert "now also known by this bsuid" in table
    assert "reported: replied 'help' (en): asked for help, nothing changes" in table
    [help_reply] = [e for e in events if e["event_type"] == "SignalReceived"]
    assert (help_reply["method"], help_reply["actor"]) == ("whatsapp-thread", "subject")
    linked = {e["linked"]: e["identifier"] for e in events if e["event_type"] == "IdentifierLinked"}
    assert linked["bsuid"] == "US.1349120865530274"


def test_template_set_over_whatsapps_change_says_so_and_show_orders_by_effect(
    db: str, runner: CliRunner
) -> None:
    update = str(PAYLOADS / "template_category_update_completed.json")
    ok(runner, "ingest", "whatsapp", update, "--db", db)  # UTILITY -> MARKETING, 2026-11-21
    order = ("order_shipped_with_offer", "-l", "en_US", "--db", db)

    early = ok(runner, "template", "set", *order, "--category", "UTILITY", "--from", "2026-11-01")
    now = ok(runner, "template", "set", *order, "--category", "UTILITY")
    shown = ok(runner, "template", "show", *order)

    assert early.stderr == ""  # WhatsApp's later change still stands: nothing overridden
    assert now.stderr.startswith(
        "Note: this overrides WhatsApp's change to MARKETING in force from 2026-11-2"
    )
    rows = [line.split() for line in shown.stdout.splitlines()[2:]]
    effective = [row[0] for row in rows]
    assert effective == sorted(effective)  # the order they take effect, not recorded
    assert [(row[1], row[3]) for row in rows] == [
        ("UTILITY", "operator"),
        ("MARKETING", "whatsapp"),
        ("UTILITY", "operator"),
    ]
