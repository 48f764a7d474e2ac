"""The main job: `consent-ledger demo` tells the story and keeps personal data sealed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from click.testing import CliRunner
from consent_ledger.cli import main
from consent_ledger.cli.demo import ADA, BRUNO, BUSINESS, CHIARA

from consent_ledger import ConsentLedger, State
from tests.test_privacy import needles

if TYPE_CHECKING:
    from pathlib import Path


def test_the_demo_builds_a_ledger_and_prints_status_and_history(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"

    result = CliRunner().invoke(main, ["demo", "--db", str(db)], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    for heading in ("== Status now", "== Status as it was 15 days ago", "== Histories"):
        assert heading in result.stdout
    with ConsentLedger.open(db) as ledger:
        now = {
            person: {
                c.category: c.state
                for c in ledger.get_status(person, business_id=BUSINESS).consents
            }
            for person in (ADA, BRUNO, CHIARA)
        }
    assert now[ADA] == {
        "offers": State.WITHDRAWN,
        "order-updates": State.GRANTED,
        "recommendations": State.GRANTED,
    }
    assert now[BRUNO] == {"*": State.WITHDRAWN, "order-updates": State.WITHDRAWN}
    assert now[CHIARA] == {"offers": State.EXPIRED, "back-in-stock": State.EXPIRED}


def test_the_demo_ledger_holds_no_phone_number_in_clear(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    CliRunner().invoke(main, ["demo", "--db", str(db)], catch_exceptions=False)

    content = b"".join(p.read_bytes() for p in tmp_path.glob("demo.db*") if p.suffix != ".key")
    phones = ("+447700900123", "+12025550143", "+61491570156")

    assert b"Acme Outfitters" in content
    assert [n for n in needles(phones) if n in content] == []
