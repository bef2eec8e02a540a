"""cti-journal: shared."""
