"""CPU per entry of the privacy rules: the example config's four rules (the usual works-council
agreement) on 100,000 generated entries, in the gateway (`at_gateway`) and in the look-up
(`after_lookup`). Process CPU time, best of three runs.

    .venv/bin/python bench/privacy_rules.py [CONFIG]
"""

from __future__ import annotations

import logging
import random
import sys
import time

from cti_journal.shared.loader import load_settings
from cti_journal.shared.message import JournalEntry
from cti_journal.shared.privacy import PrivacyRules


def entries(count: int, seed: int = 1) -> list[JournalEntry]:
    rng = random.Random(seed)
    return [
        JournalEntry(
            event_id=f"{i:032x}",
            source="bench",
            received_at=0.0,
            in_out=rng.choice("io"),
            zeitpunkt="2026-11-25 10:00:00",
            utc="2026-11-25T09:00:00Z",
            verb_zustand=rng.choice(("CONN", "CONN", "RING", "BUSY")),
            rufnummer=f"0{rng.choice(('89', '30', '40', '800'))}{rng.randrange(1000000, 9999999)}",
            lokale_rufnummer=str(rng.randrange(200, 5000)),
            datensatz_tabelle=rng.choice(("crm", "Privat", "")),
        )
        for i in range(count)
    ]


def main() -> None:
    logging.disable(logging.WARNING)  # "applied after the look-up" is expected here
    config = sys.argv[1] if len(sys.argv) > 1 else "deploy/cti-journal.example.toml"
    rules = PrivacyRules.from_settings(load_settings(config, env={}))
    batch = entries(100_000)
    for name, step in (
        ("gateway (at_gateway)", lambda e: rules.at_gateway(e, True)),
        ("look-up (after_lookup)", rules.after_lookup),
    ):
        best = float("inf")
        for _ in range(3):
            started = time.process_time()
            for entry in batch:
                step(entry)
            best = min(best, time.process_time() - started)
        print(f"{name}: {best / len(batch) * 1e6:.1f} µs CPU per entry, {len(rules.rules)} rules")


if __name__ == "__main__":
    main()
