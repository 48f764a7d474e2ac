"""``python -m consent_ledger.cli``: the same as the ``consent-ledger`` command."""

from consent_ledger.cli import main

main()
