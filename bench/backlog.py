"""A look-up worker started on a standing backlog: its peak memory and how fast it drains.

    .venv/bin/python -m bench.backlog [--entries 300000] [--contacts 100000]

The case the backfill does not show: there the look-ups keep up and the backlog stands in the
writers' queue. After a look-up outage (or with slow per-call CRM queries) it stands in the
look-up queue instead, and a worker that comes up takes `lookup.prefetch` messages of up to
`gateway.bundle_max` entries each at once. The pipeline (gateway, 1 look-up, 1 writer, SQLite,
generated contacts and calls as in bench.run) runs with its look-up stopped until the gateway
has published every entry and the broker confirmed it; then the look-up starts, and its
resident memory idle and at its peak on the backlog (both peaks include the index's build) are
printed with the drain time from when it is ready, against the benchmark's 100 MB per process.
Settings come from the environment as in bench.run (e.g. CTI_JOURNAL_LOOKUP__PREFETCH=200).
"""

from __future__ import annotations

import argparse
import os
import signal
import time

from bench.common import database, discard, sample_sum, scrape
from bench.contacts import make_contacts
from bench.pipeline import BenchPipeline
from bench.run import TARGET_RSS_MB
from cti_journal.simulator.calls import generate_calls
from tests.support.harness import wait_for

CONNECTED = "cti_journal_broker_connected"


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.backlog", description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=300_000)
    parser.add_argument("--contacts", type=int, default=100_000)
    args = parser.parse_args()
    tag = f"backlog{os.getpid()}"
    db = database("sqlite", tag)
    contacts = f"{tag}_contacts"
    numbers = make_contacts(db, contacts, args.contacts)
    try:
        with BenchPipeline(db, contacts, lookups=1, writers=1) as pipe:
            idle, idle_peak = pipe.rss_mb()["lookup-1"], pipe.peak_rss_mb()["lookup-1"]
            pipe.pipe.kill("lookup-1", signal.SIGTERM)
            del pipe.pipe.procs["lookup-1"], pipe.ports["lookup-1"]
            sim = pipe.feed(generate_calls(3, args.entries, numbers=numbers))
            wait_for(lambda: _all_published(pipe, args.entries), 600, "the gateway to publish all")
            depth = pipe.pipe.queue_depth("lookup")
            print(f"look-up queue: {depth:,} messages ({args.entries / depth:.0f} entries each)")
            pipe._spawn("lookup-1", "lookup", "lookup")
            port = pipe.ports["lookup-1"]
            wait_for(lambda: sample_sum(scrape(port), CONNECTED) == 1, 120, "the look-up ready")
            started = time.monotonic()
            wait_for(lambda: pipe.rows_written() >= args.entries, 600, "every row")
            drained = time.monotonic() - started
            peak = pipe.peak_rss_mb()["lookup-1"]
            sim.stop()
    finally:
        discard(db, contacts)
    verdict = "PASS" if peak < TARGET_RSS_MB else "FAIL"
    print(f"drained in {drained:.1f} s from the look-up's start ({args.entries / drained:,.0f} "
          f"entries/s, the writer included); look-up RSS idle {idle:.0f} MB (its peak while "
          f"idle, the index's build included, {idle_peak:.0f}), on the backlog {peak:.0f} MB "
          f"at its peak")  # fmt: skip
    print(f"  {verdict}  look-up peak < {TARGET_RSS_MB:.0f} MB (load {os.getloadavg()[0]:.1f})")


def _all_published(pipe: BenchPipeline, entries: int) -> bool:
    """The gateway has read every entry and the broker has confirmed all it published: the
    backlog stands whole in the look-up queue."""
    samples = scrape(pipe.ports["gateway"])
    return (
        sample_sum(samples, "cti_journal_entries_received_total") >= entries
        and sample_sum(samples, "cti_journal_buffered") == 0
        and sample_sum(samples, "cti_journal_in_flight") == 0
    )


if __name__ == "__main__":
    main()
