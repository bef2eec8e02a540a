"""The lookup's part of `cti-journal check`: every contact source can be read and indexed, and
how many phone fields give no number at all (bad data shows before it costs matches)."""

from __future__ import annotations

import time
from typing import Final

from cti_journal.lookup.contacts import ContactRow
from cti_journal.lookup.index import ContactIndex
from cti_journal.lookup.sources.factory import make_source
from cti_journal.lookup.sources.http import HttpClient, RecordMapper
from cti_journal.shared.config import ContactSourceSettings, Settings
from cti_journal.shared.errors import CheckFailedError, CtiJournalError
from cti_journal.shared.fieldtext import MAX_FIELD_CHARS
from cti_journal.shared.masking import mask_number
from cti_journal.shared.normalize import NumberNormalizer
from cti_journal.shared.secrets import redact_url

EXAMPLES: Final = 3
EXAMPLE_CHARS: Final = 40


def check(settings: Settings) -> list[str]:
    lookup = settings.lookup
    if not lookup.sources:
        return ["no contact sources configured: entries pass on un-enriched"]
    normalizer = NumberNormalizer.from_settings(lookup)
    lines: list[str] = []
    failed: list[str] = []
    rows: list[ContactRow] = []
    for source in lookup.sources:
        started = time.perf_counter()
        try:
            read = list(make_source(source).full_load())
        except CtiJournalError as exc:
            lines.append(f"source {source.name}: FAILED: {exc}")
            failed.append(source.name)
            continue
        seconds = time.perf_counter() - started
        lines.append(f"source {source.name}: ok, {len(read)} records in {seconds:.2f} s")
        lines.append(_unreadable(source, read, normalizer))
        rows += read
        if source.type == "http" and source.query_url:
            try:
                lines.append(_query(source, normalizer, lookup.own_number))
            except CtiJournalError as exc:
                lines.append(f"source {source.name}: query_url FAILED: {exc}")
                failed.append(source.name)
    index = ContactIndex.build(rows, normalizer, lookup.tie_break)
    lines.append(f"index: {len(index)} numbers, {index.bases} switchboard bases")
    if failed:
        names = ", ".join(failed)
        message = f"contact source(s) {names} cannot be read ([[lookup.sources]])"
        raise CheckFailedError(lines, message)
    return lines


def _query(source: ContactSourceSettings, normalizer: NumberNormalizer, own_number: str) -> str:
    """One per-call query, for the company's own number (a number the CRM may well know)."""
    number = normalizer.journal(own_number, incoming=True) if own_number else None
    if number is None or not number.keys:
        return f"source {source.name}: query_url not tried (lookup.own_number gives the number)"
    client = HttpClient(source, timeout_s=source.timeout_s, attempts=1)
    url = source.query_url.replace("{number}", f"%2B{number.keys[0]}")
    started = time.perf_counter()
    reply = client.get_json(url, shown=redact_url(source.query_url))
    found = sum(1 for _ in RecordMapper(source).rows(reply))
    seconds = time.perf_counter() - started
    return (
        f"source {source.name}: query_url answers: {found} record(s) for lookup.own_number in "
        f"{seconds:.2f} s (query_timeout_s {source.query_timeout_s:g})"
    )


def _unreadable(
    source: ContactSourceSettings, rows: list[ContactRow], normalizer: NumberNormalizer
) -> str:
    """`source crm: 1200 phone fields, 14 gave no number (e.g. 'Kd.-Nr. ***123'); 3 of them
    have two readings (e.g. '*****456'), 1 is longer than 256 characters`."""
    fields = empty = ambiguous = refused = 0
    examples: list[str] = []
    two: list[str] = []
    for row in rows:
        for field in row.phones:
            if not field.strip():
                continue
            fields += 1
            reading = normalizer.read(field)
            if reading.numbers:
                continue
            empty += 1
            shown = repr(mask_number(field.strip()[:EXAMPLE_CHARS]))
            if reading.ambiguous:
                ambiguous += 1
                two += [shown] if len(two) < EXAMPLES else []
            elif reading.refused:
                refused += 1
            elif len(examples) < EXAMPLES:
                examples.append(shown)
    line = f"source {source.name}: {fields} phone fields, {empty} gave no number"
    line += f" (e.g. {', '.join(examples)})" if examples else ""
    if ambiguous:
        line += f"; {ambiguous} of them have two readings, so no key (e.g. {', '.join(two)})"
    if refused:
        line += f"; {refused} of them are longer than {MAX_FIELD_CHARS} characters (refused)"
    return line
