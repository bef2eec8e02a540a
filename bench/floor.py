"""The per-entry floor of a Python pipeline: CPU for only the C-level calls that any Python
gateway, look-up and writer must make for an entry, on the same generated calls as
`bench.stage_cost`, without broker, database, validation or look-up logic:

* gateway: decode the line, split it with one compiled regex, hash the values (SHA-256), encode
  the message body (orjson);
* look-up: decode a bundle of 200 bodies, set one field on each, encode the bundle;
* writer: decode a bundle of 200 bodies and encode the rows as one JSON parameter.

What a stage costs in the pipeline above this floor is Python (parsing rules, number
normalisation, the index, time zones, bookkeeping), pika's framing and the system calls. Issue
18's target (our three processes ≤ the database server's CPU per entry, 10-14 µs on the 2-core
machine) leaves that room for all three together. Process CPU time, best of `--rounds`.

    .venv/bin/python -m bench.floor [--entries 40000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import hashlib
import re
import time
from collections.abc import Callable
from typing import Any, Final

import orjson

from cti_journal.shared.record import FIELDS, LineFormat
from cti_journal.simulator.calls import generate_calls

BUNDLE: Final = 200  # gateway.bundle_max's default


def lines_of(count: int) -> list[bytes]:
    fmt = LineFormat(timezone="Europe/Berlin")
    return [fmt.format(v) for v in generate_calls(5, count, mean_gap_s=1.0)]


def best_us(step: Callable[[], Any], entries: int, rounds: int) -> float:
    """µs of process CPU per entry, the best of `rounds` runs of `step`."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        step()
        best = min(best, time.process_time() - started)
    return best / entries * 1e6


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="bench.floor", description=__doc__.split("\n\n")[0])
    p.add_argument("--entries", type=int, default=40_000)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    lines = lines_of(args.entries)
    split = re.compile(";".join(["([^;]*)"] * len(FIELDS))).fullmatch

    def gateway() -> list[bytes]:
        out = []
        for raw in lines:
            match = split(raw.rstrip(b"\r\n").decode("utf-8"))
            assert match is not None, raw
            values = match.groups()
            event_id = hashlib.sha256(orjson.dumps(values)).hexdigest()[:32]
            out.append(orjson.dumps({"id": event_id, "v": values}))
        return out

    bodies = gateway()
    bundles = [
        b"[" + b",".join(bodies[i : i + BUNDLE]) + b"]" for i in range(0, len(bodies), BUNDLE)
    ]

    def lookup() -> None:
        for bundle in bundles:
            entries = orjson.loads(bundle)
            for entry in entries:
                entry["name"] = "x"
            orjson.dumps(entries)

    def writer() -> None:
        for bundle in bundles:
            orjson.dumps([entry["v"] for entry in orjson.loads(bundle)])

    n, rounds = len(lines), args.rounds
    floors = {"gateway": best_us(gateway, n, rounds), "lookup": best_us(lookup, n, rounds)}
    floors["writer"] = best_us(writer, n, rounds)
    parts = ", ".join(f"{stage} {us:.2f}" for stage, us in floors.items())
    print(f"floor, CPU µs per entry ({n:,} generated calls): {parts}; "
          f"together {sum(floors.values()):.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
