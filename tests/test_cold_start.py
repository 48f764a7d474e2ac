"""A fresh process loads what it uses: the library's names and event classes on demand."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import consent_ledger
from consent_ledger import ConsentLedger, OptIn, RegisterBusiness
from tests.conftest import publish_standard_notices

if TYPE_CHECKING:
    from pathlib import Path


def run(code: str, cwd: Path | None = None) -> str:
    """What ``code`` prints in a fresh interpreter."""
    result = subprocess.run(  # noqa: S603 (this interpreter, fixed code)
        [sys.executable, "-c", textwrap.dedent(code)],
        check=True,
        capture_output=True,
        text=True,
        cwd=cwd,
    )
    return result.stdout.strip()


def test_importing_the_library_loads_no_store_and_no_event_model() -> None:
    loaded = run("""
        import sys, consent_ledger
        print(" ".join(sys.modules))
    """).split()

    unloaded = ["eventsourcing.application", "consent_ledger.model.consent_record", "pydantic"]
    assert [name for name in unloaded if name in loaded] == []


def test_every_public_name_is_there_when_asked_for() -> None:
    names = run("""
        from consent_ledger import *
        import consent_ledger
        print(all(name in globals() for name in consent_ledger.__all__))
        print(" ".join(sorted(set(consent_ledger.__all__) - set(dir(consent_ledger)))))
    """)

    assert names == "True"
    assert consent_ledger.ConsentLedger.__name__ == "ConsentLedger"


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        consent_ledger.ConsentLedgr  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as e:
        assert "has no attribute 'ConsentLedgr'" in str(e)  # noqa: PT017
    else:
        raise AssertionError


def test_a_fresh_reader_of_the_log_decodes_every_kind_of_event(tmp_path: Path) -> None:
    """Events name their class by pinned topic; reading one imports the module defining it."""
    ledger, _ = ConsentLedger.create(
        tmp_path / "ledger.db",
        business=RegisterBusiness(business_id="acme", display_name="Acme Outfitters"),
    )
    publish_standard_notices(ledger)
    ledger.opt_in(OptIn(business_id="acme", identifier="+447700900123", categories=("offers",),
                        notice="whatsapp-optin@1", method="web-form"))  # fmt: skip
    ledger.set_template_category("acme", "order_shipped", "en_US", "UTILITY")
    ledger.close()

    types = run(
        """
        from consent_ledger.storage.log import EventLog
        with EventLog.open("ledger.db") as log:
            print(" ".join(sorted({type(e.event).__qualname__ for e in log})))
        """,
        cwd=tmp_path,
    )

    assert types.split() == [
        "Business.NoticeAdded",
        "Business.Registered",
        "ConsentRecord.OptedIn",
        "ConsentRecord.SubjectRegistered",
        "Notice.Registered",
        "Notice.VersionPublished",
        "Template.CategoryChanged",
        "Template.Registered",
    ]
