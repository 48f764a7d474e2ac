"""``checkpoint`` and ``verify``: sign the log's tree head; prove the log is as it was signed."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson
from consent_ledger.cli._inputs import read_text
from consent_ledger.cli._options import format_option, ledger_options, open_ledger
from consent_ledger.cli._views import view_db_option
from consent_ledger.projections import built_views, open_view_database, view_checks

from consent_ledger.evidence.checkpoint import VerifierKey, parse_verifier_key

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar

    from consent_ledger import ConsentLedger
    from consent_ledger.evidence.derived import DerivedReport, ViewCheck
    from consent_ledger.evidence.verification import Verification


@click.command()
@ledger_options
@click.option(
    "--print-key",
    is_flag=True,
    help="Print the key that verifies this ledger's checkpoints, and sign nothing.",
)
def checkpoint(*, db: str, key_file: Path | None, print_key: bool) -> None:
    """Sign the log as it is now: a checkpoint of every event recorded so far.

    Adds the events recorded since the last checkpoint to the ledger's Merkle tree and
    signs the new tree head (size and root) with the ledger's Ed25519 key, in the C2SP
    checkpoint format. The signed note goes to stdout: keep it, or send it to your
    auditor, somewhere the operator cannot rewrite. Later, ``verify --since NOTE``
    proves the log still extends it.

    \b
    Examples:
        consent-ledger checkpoint > checkpoints/$(date +%F).note
        consent-ledger checkpoint --print-key > ledger.pub
    """
    ledger = open_ledger(db, key_file)
    if print_key:
        click.echo(ledger.verifier_key().text)
        return
    before = ledger.tamper_evidence.latest()
    signed = ledger.checkpoint(workers=None)
    click.echo(signed.note, nl=False)
    if before is not None and before.size == signed.size:
        click.echo(f"nothing recorded since checkpoint {signed.size:,}: kept as it was", err=True)
    else:
        added = signed.size - (before.size if before else 0)
        click.echo(f"checkpoint {signed.size:,} signed ({added:,} new events)", err=True)


@click.command()
@click.argument(
    "bundle", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@ledger_options
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    metavar="KEY|FILE",
    help="A key to trust (name+id+key, as checkpoint --print-key writes it), or a file "
    "holding one; repeatable [default: the ledger's own key, from its master key].",
)
@click.option(
    "--since",
    "kept",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A signed checkpoint kept outside the ledger, which the log must still extend "
    "(repeatable).",
)
@click.option(
    "--thorough",
    is_flag=True,
    help="Also compare every kept leaf with the log (reports a leaf index altered while "
    "the log is intact); slower.",
)
@click.option(
    "--log-only",
    is_flag=True,
    help="Check only the log and its checkpoints, not the lookups and views derived from it.",
)
@view_db_option
@format_option("text", "json")
def verify(  # noqa: PLR0913 (one parameter per option)
    *,
    bundle: Path | None,
    db: str,
    key_file: Path | None,
    public_keys: tuple[str, ...],
    kept: tuple[Path, ...],
    thorough: bool,
    log_only: bool,
    view_db: str | None,
    output_format: str,
) -> None:
    """Prove a ledger's log, or a bundle exported from one, is exactly as it was signed.

    With BUNDLE (from ``export --bundle``): checks it offline, without the ledger or its
    keys: the checkpoint's signature, every event against its leaf hash, the tree's root
    (a complete bundle) or each event's audit path (a partial one), and consistency with
    your kept checkpoints. Pass the key you were given with --public-key; otherwise the
    key inside the bundle is used, and you are told to compare its id out of band.

    Without BUNDLE: checks the ledger at --db. Recomputes every event's leaf from the
    log, checks each checkpoint's signature and root, and names the first position that
    changed, vanished or appeared; each --since checkpoint must be one the ledger still
    holds. Then what decisions rest on is compared with the log: the ledger's lookups
    (every identifier finds its person; people whose key is gone are skipped) and the
    views built at --view-db (up to the position each has reached), naming the table and
    the person or position that disagrees. Events recorded after the latest checkpoint
    are counted, not covered: sign them with ``checkpoint``, on a schedule.

    Exit status 0: verified; 1: something failed (what, on stderr).

    \b
    Examples:
        consent-ledger verify
        consent-ledger verify --public-key ledger.pub --since checkpoints/2026-10-01.note
        consent-ledger verify ada.bundle --public-key ledger.pub
    """
    keys = [_read_key(text) for text in public_keys]
    notes = [read_text(path) for path in kept]
    if bundle is not None:
        _verify_bundle(bundle, keys, notes, output_format)
        return
    ledger = open_ledger(db, key_file)
    checks, outdated = (
        (None, []) if log_only else _views(ledger, view_db or db, default=view_db is None)
    )
    verification = _verify_ledger(ledger, keys, notes, thorough=thorough, views=checks)
    _report(verification, outdated, output_format)


def _report(verification: Verification, outdated: list[str], output_format: str) -> None:
    """Write what a verification found; fail with its problem.

    Raises:
        click.ClickException: the verification failed.
    """
    if output_format == "json":
        click.echo(_json(verification))
    elif verification.ok:
        click.echo(_summary(verification))
        if verification.derived is not None:
            click.echo(_derived_summary(verification.derived, outdated))
    if not verification.ok:
        msg = f"verification failed: {verification.problem}"
        raise click.ClickException(msg)


def _views(
    ledger: ConsentLedger, view_db: str, *, default: bool
) -> tuple[list[ViewCheck], list[str]]:
    """Checks of the views built at ``view_db``, and the views built by another version.

    ``default``: ``view_db`` is the ledger's own database (else it must exist already).
    """
    opened = open_view_database(view_db, create=default)
    database = click.get_current_context().with_resource(contextlib.closing(opened))
    views, outdated = built_views(database, ledger.event_log.ledger_id)
    return view_checks(views, ledger.event_log), outdated


def _verify_ledger(
    ledger: ConsentLedger,
    keys: list[VerifierKey],
    notes: list[str],
    *,
    thorough: bool,
    views: list[ViewCheck] | None,
) -> Verification:
    """The ledger's log checked against its checkpoints, then the lookups and ``views``.

    ``views`` None: the log only. One progress bar on stderr, over both passes.
    """
    passes = 1 if views is None else 2
    bar: ProgressBar[int]
    with click.progressbar(
        length=ledger.event_log.head() * passes, label="verifying", file=sys.stderr
    ) as bar:
        return ledger.verify(
            keys or None,
            since=notes,
            progress=bar.update,
            workers=None,
            thorough=thorough,
            views=views or (),
            log_only=views is None,
        )


def _verify_bundle(
    path: Path, keys: list[VerifierKey], notes: list[str], output_format: str
) -> None:
    from consent_ledger.evidence.bundle import verify_bundle  # noqa: PLC0415 (only verify FILE)

    with path.open("rb") as lines:
        result = verify_bundle(lines, keys, since=notes)
    if output_format == "json":
        data = dataclasses.asdict(result) | {"ok": result.ok}
        click.echo(orjson.dumps(data).decode())
    elif result.ok:
        kind = "complete" if result.complete else "chosen events, each with its proof"
        since = "".join(f"; extends your checkpoint {size:,}" for size in result.since)
        click.echo(
            f"verified: {result.events:,} events ({kind}) exactly as checkpoint "
            f"{result.size:,} of {result.origin} signed{since}"
        )
    if result.ok and not result.pinned:
        click.echo(
            f"warning: checked with the key inside the bundle ({result.key}); compare it with "
            "the key the ledger's operator gave you, or pass it with --public-key",
            err=True,
        )
    if not result.ok:
        msg = f"verification failed: {result.problem}"
        raise click.ClickException(msg)


def _read_key(text: str) -> VerifierKey:
    """A verifier key given on the command line, or the file that holds it."""
    path = Path(text)
    try:
        is_file = path.is_file()
    except OSError:  # a key's text is no file name (too long for one)
        is_file = False
    if is_file:
        text = read_text(path).strip()
    return parse_verifier_key(text)


def _summary(verification: Verification) -> str:
    if verification.checkpoints == 0:
        return (
            f"no checkpoint yet: {verification.events:,} events, none covered "
            "(sign them with: consent-ledger checkpoint)"
        )
    checkpoints = (
        "1 checkpoint"
        if verification.checkpoints == 1
        else (f"{verification.checkpoints:,} checkpoints")
    )
    line = f"verified: {verification.covered:,} events exactly as signed ({checkpoints})"
    if verification.unchecked:
        line += f"; {verification.unchecked:,} recorded since the latest, not yet covered"
    return line


def _derived_summary(report: DerivedReport, outdated: list[str]) -> str:
    people = "1 person" if report.people == 1 else f"{report.people:,} people"
    line = f"lookups of {people} agree with the log"
    if report.erased:
        line += f" ({report.erased:,} erased, not checked)"
    views = [f"{name} (up to position {position:,})" for name, position in report.views]
    line += f"; views: {', '.join(views)} agree" if views else "; no views built to check"
    for name in outdated:
        line += f"; view {name} was built by another version: not checked (catch-up rebuilds it)"
    return line


def _json(verification: Verification) -> str:
    data: dict[str, Any] = {
        "ok": verification.ok,
        "events": verification.events,
        "checkpoints": verification.checkpoints,
        "covered": verification.covered,
        "unchecked": verification.unchecked,
        "problem": verification.problem,
        "position": verification.position,
        "derived": None,
    }
    report = verification.derived
    if report is not None:
        data["derived"] = {
            "people": report.people,
            "erased": report.erased,
            "views": dict(report.views),
            "problems": list(report.problems),
            "unreported": report.unreported,
        }
    return orjson.dumps(data).decode()
