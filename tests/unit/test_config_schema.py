"""The schema carries each setting's bounds (shared/config.py `bounded`): every default keeps
them, and a value outside them is refused wherever it comes from, naming the setting."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_type_hints

import pytest

from cti_journal.shared.config import Bound, Settings
from cti_journal.shared.errors import ConfigError
from cti_journal.shared.loader import load_settings


def _bounded(cls: type, path: str = "") -> Iterator[tuple[str, Bound, Any]]:
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        where = f"{path}.{f.name}" if path else f.name
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _bounded(hints[f.name], where)
        elif "bound" in f.metadata:
            default = f.default if f.default is not dataclasses.MISSING else None
            yield where, f.metadata["bound"], default


BOUNDED = list(_bounded(Settings))


def test_the_schema_states_bounds_for_the_numeric_settings() -> None:
    names = {where for where, _, _ in BOUNDED}
    assert {"writer.batch_size", "gateway.port", "broker.retry_delays_ms"} <= names
    assert len(names) >= 25


@pytest.mark.parametrize(("where", "bound", "default"), BOUNDED, ids=[b[0] for b in BOUNDED])
def test_every_default_keeps_its_bounds(where: str, bound: Bound, default: Any) -> None:
    assert bound.check(where, default) is None


@pytest.mark.parametrize(
    ("variable", "value", "setting", "text"),
    [
        ("WRITER__BATCH_SIZE", "0", "writer.batch_size", "must be greater than 0, is 0"),
        ("GATEWAY__METRICS_PORT", "65536", "gateway.metrics_port", "TCP port 0..65535"),
        ("GATEWAY__IDLE_TIMEOUT_S", "-1", "gateway.idle_timeout_s", "must be >= 0 (0 = off)"),
        ("BROKER__RETRY_DELAYS_MS", "10,0", "broker.retry_delays_ms", "give one or more"),
        ("GATEWAY__BUNDLE_MAX", "10000000", "gateway.bundle_max", "must be at most"),
        # The days settings said the value they refused before the schema; they still do.
        ("WRITER__RETENTION_DAYS", "-1", "writer.retention_days", "number of days, is -1"),
        ("BROKER__DEAD_LETTER_DAYS", "-3", "broker.dead_letter_days", "number of days, is -3"),
    ],
)
def test_a_value_out_of_bounds_from_the_environment_names_the_setting(
    tmp_path: Path, variable: str, value: str, setting: str, text: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, {f"CTI_JOURNAL_{variable}": value})
    assert err.value.setting == setting
    assert text in str(err.value)
