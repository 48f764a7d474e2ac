"""Random command lines for the fuzz test: which command, which options, which values.

An invocation is one command of ``consent-ledger``, found by walking the command tree (so
new commands and options are fuzzed without being listed here), with a random subset of
its own options and arguments. Each value is usually plausible for its option (a known
person, category, notice, file) and otherwise hostile: empty, huge, unicode, bytes that
are not UTF-8, numbers out of range, typos, paths that are folders, missing or FIFOs.
What a command reads on stdin is a prepared file, random bytes, or for the commands that
read data (``check --input``, ``ingest whatsapp``) rows and webhook bodies with odd values.
:mod:`tests.cli.fuzz_runs` runs them.
"""

from __future__ import annotations

import copy
import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from consent_ledger.cli import main
from hypothesis import strategies as st

PAYLOADS = Path(__file__).parent.parent / "payloads" / "whatsapp"
LEDGER = "ledger.db"
FIFO = "pipe"
SKIPPED = {
    ("projections", "follow"): "runs until it is interrupted",
    ("demo",): "builds a ledger of its own, in a new temporary folder unless given --db",
}

ADA = "+44 7700 900123"
BRUNO = "+1 202-555-0143"
SHOP = "15550001111"
PEOPLE = (ADA, BRUNO, "wa:447700900123", "email:ada@example.com", "bsuid:GB.1502576394655843")
HOSTILE = (
    "",
    " ",
    "-",
    "--",
    "-1",
    "0",
    "99999999999999999999999",
    "x" * 100_000,
    "\u00dcn\u00efc\u00f8d\u00e9 \U0001f642",
    "\u202eevil",
    "\udcff\udcfe",  # argv bytes that are not UTF-8, as Python hands them over
    "a,b,,c",
    "@",
    "@1",
    "nan",
    "../../etc/passwd",
)
NUMBERS = ("1", "2", "0", "-1", "99999999999999999999999", "1e3", "\u00b2", "x")
TIMES = (
    "2026-11-24",
    "2026-11-24T10:30:00+01:00",
    "2099-01-01",
    "1970-01-01T00:00:00Z",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+01:00",
    "2026-13-01",
    "yesterday",
)
INPUTS = (
    "notice.txt",
    "recipients.csv",
    "recipients.jsonl",
    "webhooks.jsonl",
    "keywords.json",
    "ledger.pub",
    "checkpoint.note",
    "bundle.jsonl",
    "latin1.txt",
    "utf16.txt",
    "empty.txt",
    "huge-field.csv",
    "binary.bin",
    "folder",
    "missing.txt",
    "-",
)
OUTPUTS = ("out.txt", "-", "folder", "missing-folder/out.txt", FIFO, "notice.txt")
DATABASES = (
    LEDGER,
    "missing.db",
    "folder",
    "notice.txt",
    "latin1.txt",
    "empty.txt",
    "missing-folder/x.db",
    "postgresql://postgres@127.0.0.1:1/nosuch",
)
CATEGORIES = ("offers", "order-updates", "offers,order-updates", "newsletters", "promotions")
NOTICES = (
    "whatsapp-optin@1",
    "whatsapp-optin@2",
    "whatsapp-optin",
    "sms-optin@1",
    "nosuch@1",
    "whatsapp-optin@99999999999999999999999",
    "whatsapp-optin@0",
    "whatsapp-optin@\u00b2",
)
BY_NAME: dict[str, tuple[str, ...]] = {
    "identifier": PEOPLE,
    "business_id": ("acme", "nosuch", "ACME"),
    "business_name": ("Acme Outfitters",),
    "display_name": ("Acme Outfitters", "Shop Two"),
    "notice": NOTICES,
    "notice_id": ("whatsapp-optin", "sms-optin", "new-notice", "nosuch", "Bad Id!"),
    "categories": CATEGORIES,
    "category": CATEGORIES,
    "grant": CATEGORIES,
    "withdraw": CATEGORIES,
    "language": ("en", "it", "en_US", "pt-BR"),
    "template_language": ("en_US", "it"),
    "sender": (SHOP, "110200345678901"),
    "event_types": ("OptedIn", "OptedOut", "CategoriesChanged", "OptOut", "Bogus"),
    "channel": ("whatsapp", "sms", "*", "fax"),
    "method": ("web-form", "whatsapp-thread", "website"),
    "region": ("GB", "US", "ZZ", "gb"),
    "jurisdiction": ("IT", "US-CA", "it"),
    "name": ("order_shipped", "nosuch"),
    "template": ("order_shipped", "nosuch"),
    "policy_url": ("https://acme.example/privacy",),
    "ip": ("192.0.2.10", "2001:db8::1", "999.1.1.1"),
    "actor": ("subject", "operator:ada"),
    "public_keys": ("ledger.pub", "latin1.txt", "notice.txt", "missing.pub", "folder"),
    "output": OUTPUTS,
    "bundle_path": OUTPUTS,
    "db": DATABASES,
    "view_db": ("views.db", LEDGER, "folder", "notice.txt", "empty.txt", "missing-folder/v.db"),
    "key_file": ("ledger.db.key", "missing.key", "folder", "notice.txt", "latin1.txt"),
    "text_file": ("notice.txt", "-", "latin1.txt"),
    "input_file": ("recipients.csv", "recipients.jsonl", "huge-field.csv", "-"),
    "source": ("webhooks.jsonl", "-", "latin1.txt"),
    "keywords_file": ("keywords.json",),
    "kept": ("checkpoint.note", "latin1.txt"),
    "bundle": ("bundle.jsonl",),
    "evidence_file": ("evidence.pdf",),
}
"""Plausible values of each parameter, by its name; others get hostile ones."""

STDIN = (None, "notice.txt", "recipients.csv", "webhooks.jsonl", "latin1.txt", "utf16.txt")
COLUMNS = ("identifier", "category", "channel", "sender", "template_category", "region", "x")
"""Columns of ``check --input`` rows (and one it does not know)."""
BODIES = tuple(
    json.loads(path.read_text())
    for path in sorted(PAYLOADS.glob("*.json"))
    if path.name != "bodies_array_broken.json"  # not JSON on purpose
)


@dataclass(frozen=True)
class Invocation:
    """One command line, with what it reads on stdin (a prepared file, or raw bytes)."""

    path: tuple[str, ...]
    args: tuple[str, ...]
    stdin: str | bytes | None = None

    def __str__(self) -> str:
        """The command line, shortened where a value is huge."""
        shown = [a if len(a) < 80 else f"{a[:20]}...({len(a)} chars)" for a in self.args]
        return f"consent-ledger {' '.join(shown)} (stdin: {self.stdin!r:.40})"


# What to run ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """A command to fuzz: its words, its own parameters and those of the groups above it."""

    path: tuple[str, ...]
    params: tuple[click.Parameter, ...]
    group_params: tuple[click.Parameter, ...]


def commands(group: click.Group = main, path: tuple[str, ...] = ()) -> list[Command]:
    """Every command under ``group`` (lazily loaded ones too), but the ones in SKIPPED."""
    ctx = click.Context(group)
    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or (*path, name) in SKIPPED:
            continue
        if isinstance(command, click.Group):
            found.extend(commands(command, (*path, name)))
        else:
            found.append(Command((*path, name), tuple(command.params), ()))
    own = tuple(p for p in group.params if p.expose_value)
    return [Command(c.path, c.params, own + c.group_params) for c in found]


def _typos(choices: tuple[str, ...]) -> tuple[str, ...]:
    return (*(t for c in choices[:3] for t in (c.upper(), c[:-1], f"{c}s")), "")


def values(param: click.Parameter) -> st.SearchStrategy[str]:
    """Values for one parameter: usually plausible for it, sometimes hostile."""
    kind = param.type
    if isinstance(kind, click.Choice):
        choices = tuple(str(c) for c in kind.choices)
        plausible = st.sampled_from(choices)
        odd: st.SearchStrategy[str] = st.sampled_from(_typos(choices))
    else:
        pool = BY_NAME.get(param.name or "")
        if pool is None and isinstance(kind, click.types.IntParamType | click.types.FloatParamType):
            pool = NUMBERS
        elif pool is None and kind.name == "TIME":
            pool = TIMES
        elif pool is None and isinstance(kind, click.File | click.Path):
            pool = INPUTS
        plausible = st.sampled_from(pool or HOSTILE)
        odd = st.sampled_from(INPUTS if isinstance(kind, click.File | click.Path) else HOSTILE)
    text = st.text(st.characters(exclude_characters="\x00"), max_size=12)
    return st.one_of(plausible, plausible, plausible, odd, text)


@st.composite
def _option(draw: st.DrawFn, param: click.Parameter) -> list[str]:
    if isinstance(param, click.Argument):
        return [draw(values(param))]
    assert isinstance(param, click.Option)
    names = [*param.opts, *param.secondary_opts]
    if param.is_flag:
        return [draw(st.sampled_from(names))]
    repeats = draw(st.integers(1, 3)) if param.multiple else 1
    return [
        item for _ in range(repeats) for item in (draw(st.sampled_from(names)), draw(values(param)))
    ]


@st.composite
def _chosen(draw: st.DrawFn, params: tuple[click.Parameter, ...]) -> list[str]:
    """Some of ``params``: nearly always the required ones, each other one now and then."""
    words: list[str] = []
    for param in params:
        if param.name == "help" or not param.expose_value:
            continue
        chance = 9 if param.required else 3
        if draw(st.integers(0, 9)) < chance:
            words.extend(draw(_option(param)))
    return words


def _json_values() -> st.SearchStrategy[Any]:
    """Any JSON value, usually one the ledger knows."""
    known = st.sampled_from((*PEOPLE, *CATEGORIES, "whatsapp", "MARKETING", SHOP, "GB", ""))
    return st.one_of(
        known,
        known,
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=10),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    )


@st.composite
def recipients(draw: st.DrawFn) -> bytes:
    """Rows for ``check --input``: JSON Lines or CSV, their values of any kind."""
    rows = draw(
        st.lists(st.dictionaries(st.sampled_from(COLUMNS), _json_values(), max_size=5), max_size=4)
    )
    if draw(st.booleans()):
        return "".join(json.dumps(row) + "\n" for row in rows).encode()
    columns = draw(st.lists(st.sampled_from(COLUMNS), unique=True, max_size=5))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            [v if isinstance(v := row.get(c, ""), str) else json.dumps(v) for c in columns]
        )
    return out.getvalue().encode()


@st.composite
def webhooks(draw: st.DrawFn) -> bytes:
    """A real webhook body with a few of its parts replaced by other JSON values."""
    body = copy.deepcopy(draw(st.sampled_from(BODIES)))
    for _ in range(draw(st.integers(1, 3))):
        body = _mutated(draw, body)
    return json.dumps(body).encode()


def _mutated(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with one part, found by walking down at random, replaced."""
    if isinstance(value, dict | list) and value and draw(st.integers(0, 4)) > 0:
        keys = list(value) if isinstance(value, dict) else list(range(len(value)))
        key = draw(st.sampled_from(keys))
        value[key] = _mutated(draw, value[key])
        return value
    return draw(_json_values())


def _stdin(path: tuple[str, ...]) -> st.SearchStrategy[str | bytes | None]:
    """What a command reads on stdin: a prepared file's name, or bytes."""
    anything: st.SearchStrategy[str | bytes | None] = st.one_of(
        st.sampled_from(STDIN), st.binary(max_size=64)
    )
    if path == ("ingest", "whatsapp"):
        return st.one_of(anything, webhooks(), webhooks())
    if path == ("check",):
        return st.one_of(anything, recipients(), recipients())
    return anything


@st.composite
def invocations(draw: st.DrawFn) -> Invocation:
    """A random command line of ``consent-ledger``, and its stdin."""
    command = draw(st.sampled_from(commands()))
    arguments = tuple(p for p in command.params if isinstance(p, click.Argument))
    options = tuple(p for p in command.params if not isinstance(p, click.Argument))
    args = [
        *draw(_chosen(command.group_params)),
        *command.path,
        *draw(_chosen(arguments)),
        *draw(_chosen(options)),
    ]
    extra = draw(st.sampled_from((None, None, None, None, "--nosuch", "extra", "--help")))
    if extra is not None:
        args.append(extra)
    return Invocation(command.path, tuple(args), draw(_stdin(command.path)))
