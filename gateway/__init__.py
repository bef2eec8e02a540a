"""cti-journal: gateway."""
