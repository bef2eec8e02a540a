"""cti-journal: lookup."""
