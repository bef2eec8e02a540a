"""The per-entry floor of this pipeline's design in Python: CPU for only the C-level calls its
gateway, look-up and writer make for an entry, on messages of the real shape (the gateway's
own bodies for the same generated calls as `bench.stage_cost`), without broker, database,
validation or look-up logic:

* gateway: decode the line, split it with one compiled regex, hash the values (SHA-256), encode
  a body with the real message's keys (orjson);
* look-up: decode a bundle of 200 real bodies, set one field on each, encode the bundle;
* writer: decode a bundle of 200 real bodies and encode their values as one JSON parameter.

What a stage costs in the pipeline above this floor is Python (parsing rules, number
normalisation, the index, time zones, bookkeeping), pika's framing and the system calls. Issue
18's target (our three processes ≤ the database server's CPU per entry, 6-14 µs on the 2-core
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

from bench.stage_cost import bodies_of, generated_lines
from cti_journal.shared.record import FIELDS

BUNDLE: Final = 200  # gateway.bundle_max's default


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
    lines = generated_lines(args.entries).splitlines(keepends=True)
    bodies = bodies_of(lines)
    keys = list(orjson.loads(bodies[0]))  # the message's keys, in its order
    extra = len(keys) - len(FIELDS) - 1  # besides the id and the line's fields
    split = re.compile(";".join(["([^;]*)"] * len(FIELDS))).fullmatch

    def gateway() -> None:
        for raw in lines:
            match = split(raw.rstrip(b"\r\n").decode("utf-8"))
            assert match is not None, raw
            values = match.groups()
            event_id = hashlib.sha256(orjson.dumps(values)).hexdigest()[:32]
            orjson.dumps(dict(zip(keys, (event_id, *values, *values[:extra]), strict=True)))

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
            orjson.dumps([list(entry.values()) for entry in orjson.loads(bundle)])

    n, rounds = len(lines), args.rounds
    floors = {"gateway": best_us(gateway, n, rounds), "lookup": best_us(lookup, n, rounds)}
    floors["writer"] = best_us(writer, n, rounds)
    parts = ", ".join(f"{stage} {us:.2f}" for stage, us in floors.items())
    size = len(bodies[0])
    print(f"floor, CPU µs per entry ({n:,} generated calls, messages of {size} bytes): {parts}; "
          f"together {sum(floors.values()):.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
