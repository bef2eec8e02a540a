from cti_journal.shared.masking import mask_number, mask_numbers_in


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
