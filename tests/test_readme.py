"""The README's library example runs and prints what it says it prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import TYPE_CHECKING

from consent_ledger import ConsentLedger, OptIn, OptOut, PublishNotice, RegisterBusiness

if TYPE_CHECKING:
    import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def run_example(section: str, number: int) -> tuple[str, str]:
    """Run the ``number``-th python block of a README section: (what it printed, promised)."""
    text = README.read_text().split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    code = re.findall(r"```python\n(.*?)```", text, re.DOTALL)[number]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})  # noqa: S102 (our own README)
    promised = re.search(r"print\(.*\)\s+# (.*)", code)
    assert promised is not None
    return out.getvalue().strip(), promised.group(1)


def test_the_library_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    printed, promised = run_example("Library", 0)

    assert printed == promised


def test_the_audience_example_streams_who_may_be_messaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ledger, _ = ConsentLedger.create(
        "ledger.db", business=RegisterBusiness(business_id="acme", display_name="Acme Outfitters")
    )
    ledger.publish_notice(
        PublishNotice(
            business_id="acme",
            notice_id="whatsapp-optin",
            language="en",
            categories=("offers",),
            text="Yes, Acme Outfitters may send me offers on WhatsApp. Reply STOP to stop.",
        )
    )
    for number in ("+44 7700 900123", "+44 7700 900124"):
        ledger.opt_in(
            OptIn(
                business_id="acme",
                identifier=number,
                categories=("offers",),
                notice="whatsapp-optin@1",
                method="web-form",
            )
        )
    ledger.opt_out(OptOut(business_id="acme", identifier="+447700900124", method="api"))
    ledger.close()

    printed, promised = run_example("Views", 1)

    assert printed == promised
