"""The look-up worker under load while a source is slow or down: calls keep flowing at full rate.

One real lookup process (tests/support/harness.py), a file source and an http CRM (the loopback
stand-in) with a per-call query. Phase A: everything healthy. Phase B: the CRM's list endpoint
answers slower than its time-out (every refresh fails) and its per-call query takes 3 s against
a query_timeout_s of 0.2 s. The lookup must deliver phase B at (about) phase A's rate, with the
file's records and the CRM's last good list still enriching calls, written with the source's
label or name in DatensatzTabelle and its record id in DatensatzID.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest

from cti_journal.shared.message import JournalEntry
from tests.support.crm import Crm, running_crm
from tests.support.harness import Pipeline, wait_for

PER_PHASE = 1000


@pytest.fixture
def crm() -> Iterator[Crm]:
    with running_crm() as server:
        server.page_size = 50
        for i in range(100):
            server.add(
                f"c{i}", "Kunde", f"{i:03d}", "Kunden AG", [f"089 55{i:04d}"], "2026-11-01T08:00Z"
            )
        yield server


def entry(event: int, number: str) -> JournalEntry:
    return JournalEntry(
        event_id=f"{event:032x}", source="cti", received_at=time.time(), in_out="i",
        zeitpunkt="2026-11-25 10:00:00", utc="2026-11-25T09:00:00Z", verb_zustand="CONN",
        rufnummer=number,
    )  # fmt: skip


def numbers(phase: int, count: int) -> list[str]:
    """Half file contacts, a quarter CRM list contacts, a quarter unknown (queried) numbers."""
    out = []
    for i in range(count):
        kind = i % 4
        if kind < 2:
            out.append(f"08944{(i // 4 + 100 * kind) % 200:04d}")
        elif kind == 2:
            out.append(f"08955{(i // 4) % 100:04d}")
        else:
            out.append(f"08977{phase}{i:05d}")  # new in each phase: never cached
    return out


def consumers(pipeline: Pipeline) -> int:
    """Consumers of the lookup queue (0 until it exists): publishing before it exists loses."""
    try:
        with pipeline.channel() as ch:
            frame = ch.queue_declare(pipeline.topology.queue("lookup"), passive=True)
            return int(frame.method.consumer_count)
    except pika.exceptions.ChannelClosedByBroker:
        return 0


def publish_and_time(pipeline: Pipeline, phase: int, first_event: int) -> float:
    before = pipeline.queue_depth("write")
    bodies = [entry(first_event + i, n).encode() for i, n in enumerate(numbers(phase, PER_PHASE))]
    started = time.monotonic()
    with pipeline.channel() as ch:
        for body in bodies:
            ch.basic_publish(
                pipeline.topology.exchange, "lookup", body, pika.BasicProperties(delivery_mode=2)
            )
    try:
        wait_for(lambda: pipeline.queue_depth("write") >= before + PER_PHASE, 120, f"phase {phase}")
    except AssertionError as exc:
        depths = {q: pipeline.queue_depth(q) for q in ("lookup", "write", "dead")}
        raise AssertionError(f"{exc}; queue depths {depths}") from None
    return PER_PHASE / (time.monotonic() - started)


def test_calls_flow_at_full_rate_while_the_crm_is_slow(
    pipeline_factory: Any, crm: Crm, tmp_path: Path
) -> None:
    export = tmp_path / "export.csv"
    export.write_text(
        "id;name;company;phone\r\n"
        + "".join(f"e{i};Person {i};Firma;089 44{i:04d}\r\n" for i in range(200)),
        encoding="cp1252",
    )
    crm_source: dict[str, Any] = {
        "name": "crm",
        "type": "http",
        "url": crm.url,
        "token": crm.token,
        "first_name_path": "attributes.name.first",
        "last_name_path": "attributes.name.last",
        "company_path": "attributes.company.name",
        "phone_paths": ["attributes.phones[*].number"],
        "timeout_s": 1.0,
        "query_url": f"http://127.0.0.1:{crm.port}/api/search?phone={{number}}",
        "query_timeout_s": 0.2,
        "priority": 200,
    }
    file_source = {"name": "export", "type": "file", "path": str(export), "label": "Adressbuch"}
    pipeline = pipeline_factory(
        {
            "lookup": {
                "area_code": "89",
                "prefetch": 100,
                "refresh_s": 0.5,
                "sources": [file_source, crm_source],
            }
        }
    )
    pipeline.start("lookup", "lookup")
    wait_for(lambda: consumers(pipeline) > 0, 60, "the lookup consuming")

    healthy = publish_and_time(pipeline, 1, 0)
    crm.list_delay_s = 3.0  # every refresh of the list now times out (timeout_s = 1)
    crm.query_delay_s = 3.0  # and each per-call query takes 15 × query_timeout_s
    wait_for(lambda: "contact source crm failed" in pipeline.log("lookup"), 30, "a failed refresh")
    slow = publish_and_time(pipeline, 2, PER_PHASE)
    print(f"healthy CRM: {healthy:.0f} calls/s; slow CRM: {slow:.0f} calls/s")
    # Without the deadline and the slow mark, phase B would take ≥ 250 × 0.2 s = 50 s.
    assert slow >= 0.3 * healthy, (healthy, slow)  # without them: 0.09 × (27 against 296)

    entries = pipeline.entries("write")
    assert len(entries) == 2 * PER_PHASE
    by_number: dict[str, set[tuple[str, str, str]]] = {}
    for e in entries:
        by_number.setdefault(e["rufnummer"], set()).add(
            (e["name"], e["datensatz_tabelle"], e["datensatz_id"])
        )
    assert by_number["089440007"] == {("Person 7", "Adressbuch", "e7")}
    # The CRM's last good list still enriches while the CRM is failing.
    assert by_number["089550042"] == {("Kunde 042", "crm", "c42")}
    pipeline.assert_running()
