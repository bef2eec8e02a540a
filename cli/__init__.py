"""The `cti-journal` command line: one static table of commands, each imported when it runs."""
