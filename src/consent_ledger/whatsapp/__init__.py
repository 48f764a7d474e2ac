"""WhatsApp: webhook payloads, opt-out keywords, and ingestion into the ledger."""
