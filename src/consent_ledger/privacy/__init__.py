"""Personal data: the master key, each person's data key, sealing and lookups."""
