"""`cti-journal lookup explain`: a field's numbers and what was ignored; a call's candidates, the
record that wins and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from cti_journal.cli.main import main

WORLD = Path(__file__).resolve().parents[1] / "corpus" / "world_lookup"


def explain(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["lookup", "explain", "--area-code", "089", *args]) == 0
    return capsys.readouterr().out


def test_a_field_shows_its_numbers_and_what_was_ignored(capsys: pytest.CaptureFixture[str]) -> None:
    out = explain(capsys, "Tel. 089 123456-21 / 0171 2345678, Kd.-Nr. 471123")
    assert "+4989123456~21         direct dial 21 of the base +4989123456" in out
    assert "key +498912345621" in out
    assert "+491712345678" in out
    assert "ignored '471123': a local number among other words or numbers" in out


def test_a_field_without_a_number_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    out = explain(capsys, "80331 München")
    assert "ignored '80331': a postcode" in out
    assert "→ no number" in out


def contacts() -> list[str]:
    return [
        "--contacts",
        str(WORLD / "crm_persons.csv"),
        "--contacts",
        str(WORLD / "erp_companies.csv"),
    ]


def test_a_direct_dial_nobody_has_gets_the_company(capsys: pytest.CaptureFixture[str]) -> None:
    out = explain(capsys, *contacts(), "--call", "08912345633")
    assert "candidates, in order: +498912345633" in out
    assert "exact +498912345633: none" in out
    assert "switchboard for +498912345633: base +4989123456, 1 record(s)" in out
    assert "→ switchboard match: Firma 'Brauerei Huber GmbH', DatensatzID 1" in out


def test_the_switchboard_is_the_companys_not_the_persons_who_lists_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = explain(capsys, *contacts(), "--call", "0891234560")
    assert (
        "1. erp_companies id 1 'Brauerei Huber GmbH' (company record, priority 20)  ← wins" in out
    )
    assert "Bernd" not in out  # lists 089 123456-0 only: no key of his own


def test_an_incoming_call_without_amtsholung_strips_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = explain(capsys, *contacts(), "--call", "004312345678", "--direction", "in")
    assert "outside prefix '': none: an incoming number without Amtsholung carries none" in out
    assert "→ no match" in out
    out = explain(capsys, *contacts(), "--call", "004312345678", "--direction", "out")
    assert "→ hit: Name 'Moritz Kiel'" in out


def test_no_field_and_no_call_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lookup", "explain"]) == 2
    assert "give a contact FIELD or --call NUMBER" in capsys.readouterr().err


def test_contacts_reads_a_german_excel_export_by_its_columns(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`;`-separated, Windows-1252: read by its columns as a file source reads it (it used to be
    read as one `,` column, with numbers "found" in whole lines and no name)."""
    export = Path(__file__).resolve().parents[1] / "corpus" / "sources" / "outlook_de.csv"
    out = explain(capsys, "--contacts", str(export), "--call", "0893838191")
    assert (
        "→ hit: Name 'Jon. Hofmann', Firma 'Schwabinger Werbeagentur', DatensatzID row:1, "
        "table 'outlook_de'" in out
    )
