"""Where events live: stores, recorders, the event log, and the views' database."""
