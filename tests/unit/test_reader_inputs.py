"""Any text from outside, read as a contact field or a journal number, gives a reading or no
number — never an exception — and its length is bounded (issue 20, findings 1 and 6)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cti_journal.shared.fieldtext import MAX_FIELD_CHARS, MAX_RAW_CHARS, TOO_LONG, ascii_digits
from cti_journal.shared.normalize import NumberNormalizer

MUNICH = NumberNormalizer(region="DE", area_code="89", outside_prefix="0")
PHONEISH = st.text(st.sampled_from("0123456789 +-/()., ;:#xX~\t\n"), max_size=80)


def test_superscript_digits_are_not_digits() -> None:
    # `"²".isdigit()` is True and `int("²")` fails: the digit test must agree with int()
    assert MUNICH.journal("0²²²²²²²") is None
    assert MUNICH.journal("⁴⁷⁹⁵") is None
    assert MUNICH.read("0²²²²²²²").numbers == []
    assert ascii_digits("0²²") is None
    assert ascii_digits("٠٨٩") == "089"  # Arabic-Indic digits are digits (Nd), as int() says


def test_a_journal_number_in_another_script_is_looked_up() -> None:
    assert MUNICH.journal("٠٨٩١٢٣٤٥٦٧") == MUNICH.journal("0891234567")


def test_the_redos_field_of_issue_20_is_refused_at_once() -> None:
    reading = MUNICH.read("089 7654321" + " " * 28_000 + "x")
    assert reading.numbers == [] and reading.refused == TOO_LONG


def test_a_field_padded_with_spaces_is_read() -> None:
    # a CHAR(4000) column pads with spaces at the end; runs of spaces inside count as one
    assert [str(n) for n in MUNICH.contact_numbers("089 7654321" + " " * 3_000)] == ["+49897654321"]


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_read_without_an_exception(text: str) -> None:
    reading = MUNICH.read(text)
    for number in reading.numbers:
        assert 10**6 <= number.key < 10**15 or (number.key == 0 and number.extension)
    MUNICH.journal(text)
    MUNICH.journal(text, "0", incoming=False)


@settings(max_examples=300, deadline=None)
@given(PHONEISH, st.text(" \t\r\n\u00a0\u3000", max_size=50), st.text(" \t\u00a0", max_size=50))
def test_white_space_around_a_field_changes_nothing(field: str, before: str, after: str) -> None:
    assert MUNICH.read(before + field + after).numbers == MUNICH.read(field).numbers


@settings(max_examples=200, deadline=None)
@given(PHONEISH, st.integers(MAX_FIELD_CHARS + 1, MAX_RAW_CHARS + 100))
def test_a_field_longer_than_the_limit_is_refused_whole(field: str, length: int) -> None:
    """Never a partial number: past the limit the whole field gives nothing, with a reason."""
    long_field = (field + " x") * (length // (len(field) + 2) + 1)
    reading = MUNICH.read(long_field[:length])
    if len(" ".join(long_field[:length].split())) > MAX_FIELD_CHARS:
        assert reading.numbers == [] and reading.refused == TOO_LONG


@settings(max_examples=200, deadline=None)
@given(PHONEISH.filter(lambda f: len(f.strip()) <= MAX_FIELD_CHARS))
def test_a_field_within_the_limit_is_read_not_refused(field: str) -> None:
    assert MUNICH.read(field).refused == ""
