import pytest

from cti_journal.shared.masking import (
    mask_name,
    mask_number,
    mask_numbers_in,
    mask_personal_in,
)


def test_mask_keeps_only_the_last_three_digits_and_the_shape() -> None:
    assert mask_number("+49 89 1234567") == "+** ** ****567"
    assert mask_number("12") == "12"


def test_numbers_in_free_text_are_masked_but_dates_are_not() -> None:
    line = "i;2026-01-01 10:00:00;CONN;08912345678;Meier"
    assert mask_numbers_in(line) == "i;2026-01-01 10:00:00;CONN;********678;Meier"
    assert "4567" not in mask_numbers_in("call from 089 / 1234567 failed")


def test_hex_ids_and_words_are_left_alone() -> None:
    event_id = "3f2a1234567b9c0d1e2f3a4b5c6d7e8f"
    assert (
        mask_numbers_in(f"entry {event_id} from 0891234567") == f"entry {event_id} from *******567"
    )


def test_addresses_versions_and_short_runs_are_not_numbers() -> None:
    text = "broker 127.0.0.1:34109 down; python 3.11.7; 10.1.2.3 ok; took 12.5 s"
    assert mask_numbers_in(text) == text
    assert mask_numbers_in("call 089.123.4567") == "call ***.***.*567"


# -- issue 20, finding 11: any notation of a number is masked ------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "call 079.123.45.67 failed",  # dotted like an address, but with a leading 0
        "Rufnummer0891234567",  # glued to a word
        "0891234567Meier",
        "call ０８９１２３４５６７",  # fullwidth digits
        "٠٨٩١٢٣٤٥٦٧",  # Arabic-Indic digits
        "⁰⁸⁹¹²³⁴⁵⁶⁷",  # superscripts (str.isdigit, not \\d)
        "089\u00a0123\u202f4567",  # no-break and narrow no-break spaces
        "089–123‑4567",  # en dash, non-breaking hyphen
        "+49 (0)89 / 123 45-67",
    ],
)
def test_a_number_in_any_notation_is_masked(text: str) -> None:
    masked = mask_numbers_in(text)
    digits = [c for c in masked if c.isdigit()]
    assert len(digits) <= 3, masked
    assert "*" in masked


def test_addresses_ids_and_dates_stay() -> None:
    text = "10.1.2.3 and 192.168.0.10 at 2026-11-25 10:00:00 event 3f2a1234567b9c0d1e2f3a4b5c6d7e8f"
    assert mask_numbers_in(text) == text


def test_names_keep_only_their_initials() -> None:
    assert mask_name("Maria Meier-Schulz") == "M**** M***********"
    assert mask_name("") == ""


def test_quoted_names_in_messages_are_masked_and_identifiers_are_not() -> None:
    text = (
        "conversion failed for 'Maria Meier' in column 'Journal_Name' of \"Müller\"; can't, don't"
    )
    assert mask_personal_in(text) == (
        "conversion failed for 'M**** M****' in column 'Journal_Name' of \"M*****\"; can't, don't"
    )


def test_log_lines_mask_names_quoted_by_a_driver(caplog: pytest.LogCaptureFixture) -> None:
    """A contact source's error quoting a row's value (a lookup log line) shows initials only."""
    import logging

    from cti_journal.shared.logs import MaskNumbers

    log = logging.getLogger("cti_journal.lookup.sources")
    log.addFilter(MaskNumbers())
    try:
        with caplog.at_level(logging.WARNING):
            error = ValueError("invalid input for 'Maria Meier' (0891234567)")
            log.warning("contact source %s failed, keeping its last good data: %s", "crm", error)
    finally:
        log.filters.clear()
    assert "Maria" not in caplog.text and "0891234567" not in caplog.text
    assert "'M**** M****'" in caplog.text
