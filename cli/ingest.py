"""``ingest whatsapp``: webhook bodies Meta posted, taken into the ledger exactly once."""

from __future__ import annotations

import io
import sys
from typing import TYPE_CHECKING

import click
import orjson
from consent_ledger.cli._inputs import TEXT_INPUT, TextInput
from consent_ledger.cli._options import (
    business_option,
    ledger_options,
    open_ledger,
    resolve_business,
)

if TYPE_CHECKING:
    from pathlib import Path

    from consent_ledger.whatsapp.keywords import Keywords
    from consent_ledger.whatsapp.report import IngestReport, Outcome


@click.group()
def ingest() -> None:
    """Take in what messaging platforms report: opt-outs, marketing stops, ..."""


@ingest.command("whatsapp")
@click.argument("source", type=TEXT_INPUT, default="-")
@ledger_options
@business_option
@click.option(
    "--strict", is_flag=True, help="Refuse the whole input if any body or item cannot be read."
)
@click.option(
    "--keywords",
    "keywords_file",
    type=TEXT_INPUT,
    help='Your keywords (JSON): {"defaults": true, "rules": [{"word": "NON SCRIVERMI", '
    '"kind": "opt_out", "language": "it"}, ...]} [default: the shipped sets].',
)
def whatsapp(  # noqa: PLR0913 (one parameter per option)
    *,
    source: TextInput,
    db: str,
    key_file: Path | None,
    business_id: str | None,
    strict: bool,
    keywords_file: TextInput | None,
) -> None:
    """Ingest WhatsApp Business Platform webhook bodies from SOURCE (a file, or - for stdin).

    SOURCE holds the JSON bodies Meta posts: one per line, or a JSON array of them. What
    each item does:

    \b
      STOP, UNSUBSCRIBE, BASTA, ... (the whole message)   opt-out, item kept as evidence
      "Stop promotions" button                            marketing categories withdrawn
      START, UNSTOP                                       the latest WhatsApp opt-in restored
      user_preferences stop / resume                      platform marketing stop / resume
      error 131050                                        platform marketing stop (evidence)
      HELP, errors 131049/131047/131026, other messages   noted, nothing changes
      an opt-out word inside a longer message             noted for review, nothing changes

    Each item is taken once: the same webhook delivered again changes nothing. One line
    per item goes to stdout (JSON), a summary to stderr; items that cannot be read are
    reported with their line and path and skipped (exit status 1 at the end), or, with
    --strict, refuse the whole input before anything is recorded. Input that is not
    UTF-8 text is refused whole, before anything is recorded.

    \b
    Examples:
        consent-ledger ingest whatsapp webhooks.jsonl
        curl ... | consent-ledger ingest whatsapp - --strict
    """
    # The webhook parser and keyword tables load only when ingesting, not at every start.
    from consent_ledger.whatsapp.ingestion import ingest_whatsapp_lines  # noqa: PLC0415

    keywords = _keywords(keywords_file) if keywords_file is not None else None
    # Read whole and decoded first: bytes that are not UTF-8 mean a wrong or damaged file
    # (UTF-16 from a Windows redirect, a compressed dump), of which nothing can be trusted.
    lines = io.StringIO(source.read(), newline=None)
    ledger = open_ledger(db, key_file)
    report = ingest_whatsapp_lines(
        ledger,
        lines,
        business_id=resolve_business(ledger, business_id),
        keywords=keywords,
        strict=strict,
    )
    _write_report(report)


def _write_report(report: IngestReport) -> None:
    """One JSON line per item on stdout; what was rejected and a summary on stderr.

    Raises:
        click.exceptions.Exit: with status 1 when items were rejected.
    """
    for outcome in report.outcomes:
        line = orjson.dumps(_outcome_json(outcome), option=orjson.OPT_APPEND_NEWLINE)
        sys.stdout.buffer.write(line)
    sys.stdout.buffer.flush()
    for problem in report.rejected:
        click.echo(f"rejected: {problem}", err=True)
    click.echo(report.summary(), err=True)
    if report.rejected:
        raise click.exceptions.Exit(1)


def _keywords(source: TextInput) -> Keywords:
    """The operator's keyword configuration.

    Raises:
        KeywordConfigError: it is not JSON, or not a keyword configuration.
    """
    from consent_ledger.whatsapp.keywords import KeywordConfigError, Keywords  # noqa: PLC0415

    try:
        config = orjson.loads(source.read())
    except orjson.JSONDecodeError as e:
        msg = f"the keywords file is not JSON: {e}"
        raise KeywordConfigError(msg) from None
    if not isinstance(config, dict):
        msg = "the keywords file must hold a JSON object with 'defaults' and 'rules'"
        raise KeywordConfigError(msg)
    return Keywords.from_config(config)


def _outcome_json(outcome: Outcome) -> dict[str, object]:
    recorded = outcome.recorded
    return {
        "path": outcome.path,
        "signal": outcome.signal,
        "action": outcome.action,
        "detail": outcome.detail,
        "subject_id": str(recorded.subject_id) if recorded else None,
        "event": f"{recorded.event_type}#{recorded.version}" if recorded else None,
    }
