"""A dossier as one self-contained HTML5 page, from the Jinja2 templates in ``templates/``.

The markup lives in the templates, the style in ``templates/dossier.css`` (inlined into
the page, so the file stands alone), and here only what turns facts into words: the
environment, and filters for times, hashes, sizes and lateness. Autoescaping is on and
undefined names fail, so a value from a user is always shown as text and a mistyped name
in a template is an error, not an empty cell.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING

from jinja2 import Environment, PackageLoader, StrictUndefined

from consent_ledger.model.identifiers import address
from consent_ledger.model.status import EVERY
from consent_ledger.model.values import utc_text

if TYPE_CHECKING:
    from consent_ledger.model.history import HistoryEntry
    from consent_ledger.model.values import NoticeRef
    from consent_ledger.reports.dossier.facts import Dossier

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
"""Evidence files shown inline as pictures (a raster image runs no code; SVG can)."""

LATE_AFTER_SECONDS = 60
"""An event recorded later than this after it occurred is flagged as recorded late."""


@cache
def environment() -> Environment:
    """The Jinja2 environment of the dossier's templates, built once.

    Returns:
        An environment loading the package's ``templates/`` folder, with autoescaping,
        strict undefined names, and the dossier's filters and globals.
    """
    env = Environment(
        loader=PackageLoader("consent_ledger.reports.dossier", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,  # block tags on lines of their own leave no blank lines
        lstrip_blocks=True,
        keep_trailing_newline=True,  # the page ends in a newline, as a text file does
    )
    env.filters.update(
        readable=readable,
        utc_text=utc_text,
        hex=bytes.hex,
        base64=lambda data: base64.b64encode(data).decode(),
        utf8=lambda data: data.decode(),
        thousands="{:,}".format,
        late_by=late_by,
        decoded_size=decoded_size,
        notice_anchor=notice_anchor,
    )
    env.globals.update(EVERY=EVERY, IMAGE_TYPES=IMAGE_TYPES, address=address)
    return env


def render_html(dossier: Dossier) -> str:
    """The dossier as one HTML5 document: inline CSS, no script, nothing fetched.

    Args:
        dossier: The facts, from :func:`~consent_ledger.reports.dossier.gather_dossier`.

    Returns:
        The whole document, every value escaped.
    """
    return environment().get_template("dossier.html").render(dossier=dossier)


# Filters.


def readable(moment: datetime, *, seconds: bool = False) -> str:
    """A UTC time for people, to the microsecond or to the second (spaces let it wrap)."""
    shown = moment.astimezone(UTC).strftime(
        "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M:%S.%f"
    )
    return f"{shown} UTC"


def late_by(entry: HistoryEntry) -> str | None:
    """How long after it occurred an event was recorded ("9 d 3 h"), if that was late."""
    if entry.occurred_at is None:
        return None
    late = (entry.recorded_at - entry.occurred_at).total_seconds()
    if late <= LATE_AFTER_SECONDS:
        return None
    days, rest = divmod(int(late), 86_400)
    hours, rest = divmod(rest, 3600)
    amounts = ((days, "d"), (hours, "h"), (rest // 60, "min"))
    return " ".join(f"{n} {unit}" for n, unit in amounts if n) or "1 min"


def decoded_size(content: str) -> int | None:
    """The size in bytes of an evidence file's base64 content; None if it is not base64.

    Content that is not strictly base64 is never put in a ``data:`` URL.
    """
    try:
        return len(base64.b64decode(content, validate=True))
    except (binascii.Error, ValueError):
        return None


def notice_anchor(ref: NoticeRef) -> str:
    """The id of a notice version's part of the page, for links to it."""
    return f"notice-{ref.notice_id}-{ref.version}"
