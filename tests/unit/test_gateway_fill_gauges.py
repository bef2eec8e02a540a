"""The gauges behind the 'spool/buffer above 80 %' alert: a spooling gateway exports its spool's
fill and limit, a memory-buffered one its buffer's limit."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from cti_journal.gateway.intake import MemoryBuffer
from cti_journal.gateway.main import export_fill
from cti_journal.gateway.prepare import Outgoing
from cti_journal.gateway.spool import SpoolBuffer
from cti_journal.shared.config import GatewaySettings
from cti_journal.shared.metrics import GATEWAY, make_metrics


def test_a_spool_exports_its_fill_and_limit(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    spool = SpoolBuffer(tmp_path / "spool", 1_000_000, lambda: None)
    try:
        export_fill(
            spool, GatewaySettings(spool_max_bytes=1_000_000), make_metrics(registry, GATEWAY)
        )
        assert registry.get_sample_value("cti_journal_spool_limit_bytes") == 1_000_000
        assert registry.get_sample_value("cti_journal_spool_bytes") == 0
        spool.put([Outgoing("lookup", b"x" * 500)])
        assert 500 < (registry.get_sample_value("cti_journal_spool_bytes") or 0) < 1000
        assert registry.get_sample_value("cti_journal_buffer_limit") == 0
    finally:
        spool.close()


def test_a_memory_buffer_exports_its_limit() -> None:
    registry = CollectorRegistry()
    export_fill(
        MemoryBuffer(1234, lambda: None),
        GatewaySettings(buffer=1234),
        make_metrics(registry, GATEWAY),
    )
    assert registry.get_sample_value("cti_journal_buffer_limit") == 1234
    assert registry.get_sample_value("cti_journal_spool_limit_bytes") == 0
