"""Read models (views) of the consent ledger and their runners.

Nothing lives here yet: the consent-status and audit-log views arrive with the read side.
"""
