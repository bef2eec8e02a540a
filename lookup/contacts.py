"""What a look-up returns (`Contact`, `Match`) and what a source yields (`ContactRow`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cti_journal.shared.config import ContactSourceSettings


@dataclass(frozen=True, slots=True)
class Contact:
    record_id: str
    name: str
    company: str
    label: str  # written to Journal_DatensatzTabelle
    source: str
    priority: int  # lower wins


@dataclass(frozen=True, slots=True)
class Match:
    contact: Contact
    # "company": a direct-dial number matched the company's switchboard record; the worker fills
    # Firma and the record id / table, but not Name (the record is not the caller).
    # "undecided": several persons claimed the number and nothing decided (lookup.tie_break
    # "none"): the entry passes on as a miss; `contact` is the first candidate, for explain.
    kind: Literal["hit", "company", "undecided"]
    ambiguous: bool  # several records competed for the number; the choice was by rule
    # several persons and nothing decided: the company owning the block took the call
    # ("company"), or no record did ("undecided")
    undecided: bool = False


@dataclass(frozen=True, slots=True)
class ContactRow:
    """One raw record as a source read it: phone fields still as people typed them."""

    record_id: str
    name: str
    company: str
    phones: tuple[str, ...]
    source: ContactSourceSettings
    modified: object = None  # the modified_column value, for incremental refresh


def source_label(source: ContactSourceSettings) -> str:
    """Journal_DatensatzTabelle for a source: its label, else its table, else its name."""
    return source.label or source.table or source.name
