"""警情 / incidents."""
