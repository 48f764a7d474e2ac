"""A person's consent dossier: one self-contained HTML file an auditor can read, print and check.

Three steps, each explicit: sign a checkpoint (:meth:`ConsentLedger.checkpoint`, a write),
gather the facts under it (:func:`gather_dossier`, which only reads), and render them
(:func:`render_html`, from the Jinja2 templates in ``templates/``)::

    signed = ledger.checkpoint()
    dossier = gather_dossier(ledger, "+44 7700 900123", business_id="acme", checkpoint=signed)
    page = render_html(dossier)

Importing this package loads Jinja2; the rest of the library never imports it.
"""

from consent_ledger.reports.dossier.facts import (
    CheckpointCoverageError,
    Dossier,
    EventProof,
    NoticeCheck,
    gather_dossier,
)
from consent_ledger.reports.dossier.render import render_html

__all__ = [
    "CheckpointCoverageError",
    "Dossier",
    "EventProof",
    "NoticeCheck",
    "gather_dossier",
    "render_html",
]
