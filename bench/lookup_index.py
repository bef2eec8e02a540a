"""Benchmark of the contact index (not a test): build time, resident memory, look-ups per second.

    .venv/bin/python bench/lookup_index.py --contacts 1000000 [--json PATH]

Contacts (tests/lookup_dataset.iter_rows: persons with a typed phone and mobile, every fifth a
company record with its `-0` switchboard) are first written to a temporary tab-separated file,
untimed; the timed build streams them back from it as rows stream from an ODBC cursor in
production, so the resident size is the index's plus the interpreter's, not the generator's.
The look-up mix is PBX-style deliveries in every form of the test set: a third numbers of
contacts, a third direct dials into their companies' ranges, a third unknown numbers.
"""

from __future__ import annotations

import argparse
import csv
import gc
import itertools
import json
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cti_journal.lookup.contacts import ContactRow
from cti_journal.lookup.index import ContactIndex
from cti_journal.shared.normalize import NumberNormalizer
from tests.support.lookup_dataset import (
    AREAS,
    MOBILE,
    SETTINGS,
    SOURCES,
    Number,
    deliver,
    iter_rows,
)

TARGETS = {"build_s": 60.0, "rss_mb": 400.0, "lookups_per_s": 50_000.0}


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def write_rows(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh, delimiter="\t")
        for row in iter_rows(count):
            out.writerow([row.source.name, row.record_id, row.name, row.company, *row.phones])


def read_rows(path: Path) -> Iterator[ContactRow]:
    sources = {s.name: s for s in SOURCES}
    with path.open(encoding="utf-8", newline="") as fh:
        for source, rid, name, company, *phones in csv.reader(fh, delimiter="\t"):
            yield ContactRow(rid, name, company, tuple(phones), sources[source])


def call_mix(count: int, contacts: int, seed: int) -> list[tuple[str, str]]:
    rnd = random.Random(seed)
    sample = list(iter_rows(min(contacts, 50_000)))  # the first rows: the same as indexed
    digits = [p.translate(str.maketrans("", "", " /()-+")) for r in sample for p in r.phones]
    mobiles = [d for d in digits if d.lstrip("0").removeprefix("49")[:3] in MOBILE]
    bases = [r.phones[0] for r in sample if not r.name]
    calls: list[tuple[str, str]] = []
    for i in range(count):
        if i % 3 == 0:
            nsn = rnd.choice(mobiles).lstrip("0").removeprefix("49")
            calls.append(deliver(Number("49", nsn[:3], nsn[3:]), rnd))
        elif i % 3 == 1:
            typed = rnd.choice(bases)  # "0{area} {base}-0" and its variants
            nsn = typed.split("-")[0].translate(str.maketrans("", "", " /()+")).lstrip("0")
            nsn = nsn.removeprefix("49").lstrip("0")
            area = next(a for a in sorted(AREAS, key=len, reverse=True) if nsn.startswith(a))
            ext = str(rnd.randint(10, 999))
            calls.append(deliver(Number("49", area, nsn[len(area) :] + ext, ext), rnd))
        else:
            area = rnd.choice(list(AREAS))
            sub = str(rnd.randint(2, 9)) + str(rnd.randrange(10 ** (AREAS[area] - 1)))
            calls.append(deliver(Number("49", area, sub.ljust(AREAS[area], "7")), rnd))
    return calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=300_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    normalizer = NumberNormalizer.from_settings(SETTINGS)
    calls = call_mix(args.lookups, args.contacts, seed=7)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "contacts.tsv"
        write_rows(path, args.contacts)
        gc.collect()
        before = rss_mb()
        started, cpu = time.perf_counter(), time.process_time()
        index = ContactIndex.build(read_rows(path), normalizer)  # the default tie_break
        build_s = time.perf_counter() - started
        build_cpu_s = time.process_time() - cpu
    gc.collect()
    rss = rss_mb()

    started, cpu = time.perf_counter(), time.process_time()
    found = sum(1 for number, amt in calls if index.find(number, amt) is not None)
    lookup_s = time.perf_counter() - started
    lookup_cpu_s = time.process_time() - cpu

    # An incremental refresh (a source with a modified-at column): 1,000 changed records. The
    # index is immutable, so even this builds a whole new one while the old one serves.
    peak_before_refresh = peak_rss_mb()
    first = SOURCES[0]
    changed = [
        ContactRow(r.record_id, r.name + " (neu)", r.company, r.phones, r.source)
        for r in itertools.islice((r for r in iter_rows(args.contacts) if r.source is first), 1000)
    ]
    started = time.perf_counter()
    refreshed = index.updated(first, changed, replace="changed")
    refresh_s = time.perf_counter() - started
    peak_after_refresh = peak_rss_mb()
    assert len(refreshed) >= len(index) - 10  # the same numbers, give or take the changed ones
    del refreshed

    results = {
        "contacts": args.contacts,
        "numbers_indexed": len(index),
        "switchboard_bases": index.bases,
        "build_s": round(build_s, 2),
        "rss_mb": round(rss, 1),
        "rss_before_build_mb": round(before, 1),
        "peak_rss_mb": round(peak_before_refresh, 1),
        "lookups": len(calls),
        "found": found,
        "lookups_per_s": round(len(calls) / lookup_s),
        "incremental_refresh_s": round(refresh_s, 2),
        "peak_rss_with_refresh_mb": round(peak_after_refresh, 1),
        # CPU-time figures: what the process itself needed, on a machine shared with other loads
        "build_cpu_s": round(build_cpu_s, 2),
        "lookups_per_cpu_s": round(len(calls) / lookup_cpu_s),
        "load_average": round(os.getloadavg()[0], 2),
        "python": sys.version.split()[0],
    }
    _print_table(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0 if all(_passes(k, results) for k in TARGETS) else 1


def _passes(key: str, results: dict[str, object]) -> bool:
    value = float(results[key])  # type: ignore[arg-type]
    return value >= TARGETS[key] if key == "lookups_per_s" else value <= TARGETS[key]


def _print_table(results: dict[str, object]) -> None:
    print(
        f"{results['contacts']:,} contacts, {results['numbers_indexed']:,} numbers, "
        f"{results['switchboard_bases']:,} switchboard bases, "
        f"{results['found']:,}/{results['lookups']:,} look-ups found"
    )
    print(f"{'measure':<16}{'value':>14}{'target':>14}  result (wall clock)")
    for key, target in TARGETS.items():
        bound = ">=" if key == "lookups_per_s" else "<="
        verdict = "PASS" if _passes(key, results) else "FAIL"
        print(f"{key:<16}{results[key]:>14,}{bound + f' {target:,.0f}':>14}  {verdict}")
    info = ("peak_rss_mb", "incremental_refresh_s", "peak_rss_with_refresh_mb", "build_cpu_s",
            "lookups_per_cpu_s", "load_average")  # fmt: skip
    for key in info:
        print(f"{key:<18}{results[key]:>12,}{'(info)':>14}")


if __name__ == "__main__":
    raise SystemExit(main())
