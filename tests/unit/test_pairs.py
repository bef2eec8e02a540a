"""A pair whose gateways hash different source ids is named in one error (writer/pairs.py)."""

from __future__ import annotations

import logging

import pytest

from cti_journal.shared.message import JournalEntry
from cti_journal.writer.pairs import PairCheck


def calls(n: int, source: str, gateway: str, offset: int = 0) -> list[JournalEntry]:
    return [
        JournalEntry(
            event_id=f"{source}{i}",
            source=source,
            received_at=0.0,
            in_out="i",
            zeitpunkt="2026-11-25 10:00:00",
            utc=f"2026-11-25T09:{(i + offset) // 60 % 60:02d}:{(i + offset) % 60:02d}Z",
            verb_zustand="CONN",
            rufnummer=f"089{i + offset:07d}",
            gateway=gateway,
        )
        for i in range(n)
    ]


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_two_source_ids_for_the_same_calls_are_reported_once(caplog):
    check = PairCheck(threshold=20)
    with caplog.at_level(logging.ERROR):
        for a, b in zip(calls(100, "cti", "gw-a"), calls(100, "cti-2", "gw-b"), strict=True):
            check.observe([a, b])
    assert len(errors(caplog)) == 1
    message = errors(caplog)[0]
    assert "'gw-a'" in message and "'cti-2'" in message and "gateway.source_id" in message


def test_a_pair_with_one_source_id_and_unrelated_servers_are_quiet(caplog):
    check = PairCheck(threshold=20)
    with caplog.at_level(logging.ERROR):
        check.observe(calls(100, "cti", "gw-a") + calls(100, "cti", "gw-b"))  # a good pair
        check.observe(calls(100, "other", "gw-c", offset=5000))  # another CTI server's calls
        check.observe(calls(19, "third", "gw-d"))  # a few coincidences are not a pair
    assert errors(caplog) == []
