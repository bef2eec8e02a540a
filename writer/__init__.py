"""cti-journal: writer."""
