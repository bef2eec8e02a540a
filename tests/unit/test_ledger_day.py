"""The ledger's key day (writer/ledger.py): the same event id always gets the same day.

A dated ledger's key is (day, id), so a day that could differ between two copies of one call
would let both in. The gateway hashes the parsed values into the id — the Zeitpunkt among them,
not the UTC instant — so the day must come from the Zeitpunkt: two gateways of a pair set to
different time zones read one line into one id and one day, while their UTC days differ.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from cti_journal.gateway.identity import EventIdentifier
from cti_journal.shared.record import LineFormat
from cti_journal.simulator.calls import generate_calls
from cti_journal.writer.dialect import Dialect
from cti_journal.writer.ledger import Ledger, call_day, local_day

ZONES = ("Europe/Berlin", "UTC", "America/New_York", "Pacific/Kiritimati", "Pacific/Pago_Pago",
         "Asia/Kathmandu")  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    start=st.datetimes(datetime(2000, 1, 1), datetime(2037, 12, 31)),
    zones=st.tuples(st.sampled_from(ZONES), st.sampled_from(ZONES)),
)
def test_one_id_one_day_whatever_zone_each_gateway_has(
    seed: int, start: datetime, zones: tuple[str, str]
) -> None:
    ledger = Ledger("journal_ledger", Dialect.SQLITE)
    assert ledger.layout == "dated"
    values = next(iter(generate_calls(seed, 1, start=start)))
    keys = []
    for zone in zones:
        fmt = LineFormat(timezone=zone)
        parsed = fmt.parse(fmt.format(values))
        event_id = EventIdentifier("cti").identify(parsed.values, parsed.explicit_id)
        v = parsed.values
        keys.append((ledger.day(v["utc"], v["zeitpunkt"]), event_id, call_day(v["utc"])))
    (day_a, id_a, utc_day_a), (day_b, id_b, utc_day_b) = keys
    assert id_a == id_b and day_a == day_b
    assert day_a.isoformat() == values["zeitpunkt"][:10]  # the first call may be past midnight
    assert abs(utc_day_a - utc_day_b) <= timedelta(days=2)  # what a UTC day would have been


def test_a_day_that_cannot_be_read_is_the_same_every_time() -> None:
    """Never the clock: a retry the next day must meet the key the first attempt wrote."""
    assert local_day("2026-11-25 10:00:00", "2026-11-24T23:00:00Z") == date(2026, 11, 25)
    assert local_day("25.11.2026 10:00", "2026-11-24T23:00:00Z") == date(2026, 11, 24)
    assert local_day("", "") == local_day("", "") == date.max


def test_the_older_layouts_keep_their_days() -> None:
    ledger = Ledger("journal_ledger", Dialect.POSTGRESQL)
    ledger.layout = "compact"
    assert ledger.day("2026-11-24T23:00:00Z", "2026-11-25 00:00:00") == date(2026, 11, 24)
