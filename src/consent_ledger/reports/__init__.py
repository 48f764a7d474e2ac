"""What an auditor is handed: exports, consent receipts, dossiers."""
