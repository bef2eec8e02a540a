"""Soak: the fault tests' random faults for as long as asked, then the same counts.

    .venv/bin/python -m bench.soak --minutes 3 [--rate 200] [--source file|tcp] [--seed 1]

A RabbitMQ node of its own (tests/fault/conftest.py: own ports, data, cookie; removed at the
end), the simulator at `--rate` entries/s, gateway + 2 lookup workers + 2 writers into an SQLite
journal. Every few seconds one random fault: SIGKILL of the gateway, a lookup worker or a writer
(restarted after a moment), and now and then an orderly stop and restart of the broker node.
After `--minutes` the faults stop, the simulator sends its last entries, the pipeline drains,
and the journal is compared with what was sent. Exit status 0 only with 0 missing,
0 duplicated and 0 dead letters.

`--source file` (default) tails day.log with rotation: lossless by design, so any loss is a bug.
`--source tcp` (with a spool) also counts lines that TCP loses when the gateway is killed with
lines in the kernel's buffers (no application acks); those show up as missing.

`--gateway-pair`: the production topology for TCP. The simulator serves two clients, each
getting every line; two gateways (`gateway-a`, `gateway-b`, each with its own spool) read it,
and a gateway fault is a SIGKILL or a SIGTERM of either, only while both are connected (the
pair's promise: one member up at any time). What TCP loses at a kill, the other one delivered.

`--cluster` runs on a three-node RabbitMQ cluster of its own on hosts of its own (network
namespaces, tests/cluster.py; needs root) instead of one node, file source only. Besides the
process kills, every 30-60 s one node fault: SIGKILL of the node holding the quorum leaders, or
of a follower (restarted after 5-15 s), or a partition (a node's cable pulled for 15-25 s).
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.support.faults import CtiServer, DayLog, FaultRun, own_node
from tests.support.harness import wait_for

if TYPE_CHECKING:
    from tests.support.cluster import Cluster

MAX_MINUTES = 120
PROCESSES = ("gateway", "lookup-1", "lookup-2", "writer-1", "writer-2")
PAIR = ("gateway-a", "gateway-b")
PAIR_PROCESSES = (*PAIR, "lookup-1", "lookup-2", "writer-1", "writer-2")


def _pair_setup(
    args: argparse.Namespace, work: Path, count: int, node: Any
) -> tuple[Any, FaultRun]:
    """A CTI server with two clients and a pipeline whose gateway is a pair."""
    server = CtiServer(count, rate=args.rate, seed=args.seed, clients=2).start()
    gateway = {"source": "tcp", "host": "127.0.0.1", "port": server.port}
    run = FaultRun(node, work, gateway)
    for name in PAIR:
        run.env[name] = {"CTI_JOURNAL_GATEWAY__NAME": name,
                         "CTI_JOURNAL_GATEWAY__SPOOL_DIR": str(work / f"spool-{name}")}  # fmt: skip
    for name in ("writer-1", "writer-2", "lookup-1", "lookup-2", *PAIR):
        run.start(name)
    return server, run


def _pair_kill(run: FaultRun, server: CtiServer, victim: str, rng: random.Random,
               log: Counter[str]) -> None:  # fmt: skip
    """SIGKILL or SIGTERM one member, only while both are connected; restart it."""
    try:
        wait_for(lambda: server.sim.clients == 2, 60, "both gateways connected", 0.2)
    except AssertionError:
        log["gateway fault skipped: partner not connected"] += 1
        return
    sig = rng.choice((signal.SIGKILL, signal.SIGTERM))
    run.pipeline.kill(victim, sig)
    time.sleep(rng.uniform(0.1, 1.5))
    run.start(victim)
    log[f"{sig.name} {victim}"] += 1


def _faults(run: FaultRun, until: float, rng: random.Random, log: Counter[str],
            server: CtiServer | None = None) -> None:  # fmt: skip
    next_broker = time.monotonic() + rng.uniform(30, 60)
    while time.monotonic() < until:
        time.sleep(rng.uniform(2.0, 6.0))
        run.pipeline.assert_running()
        if time.monotonic() >= next_broker:
            print("soak: stopping the broker node", flush=True)
            run.node.stop()
            time.sleep(rng.uniform(3.0, 10.0))
            run.node.start()
            print("soak: broker node back", flush=True)
            log["broker restart"] += 1
            next_broker = time.monotonic() + rng.uniform(45, 90)
            continue
        victim = rng.choice(PROCESSES if server is None else PAIR_PROCESSES)
        if server is not None and victim in PAIR:
            _pair_kill(run, server, victim, rng, log)
            continue
        run.kill(victim)
        time.sleep(rng.uniform(0.1, 1.5))
        run.start(victim)
        log[f"kill {victim}"] += 1


def _settle(run: FaultRun, timeout: float) -> bool:
    """Wait for the pipeline to go quiet; False (and the counts as they are) if it does not."""
    try:
        run.settle(quiet_s=3.0, timeout=timeout)
    except AssertionError as exc:
        print(f"soak: {exc}; {run.diagnose()}; comparing what is there", flush=True)
        return False
    return True


def _node_fault(cluster: Cluster, run: FaultRun, rng: random.Random, log: Counter[str]) -> None:
    """One fault of a broker node: the leaders' node or a follower SIGKILLed, or one cut off."""
    lookup = run.pipeline.topology.queue("lookup")
    leader = cluster.leader_node(lookup)
    kind = rng.choice(("kill leader node", "kill follower node", "partition"))
    if kind == "kill follower node":
        node = rng.choice([n for n in cluster.nodes if n is not leader])
    else:
        node = leader if kind == "kill leader node" else rng.choice(cluster.nodes)
    print(f"soak: {kind} {node.name}", flush=True)
    if kind == "partition":
        cluster.hosts.cut(node.host)
        time.sleep(rng.uniform(15.0, 25.0))
        cluster.hosts.mend(node.host)
    else:
        node.kill()
        time.sleep(rng.uniform(5.0, 15.0))
        node.start()
    cluster.await_nodes(3)
    print(f"soak: {node.name} back", flush=True)
    log[kind] += 1


def _cluster_faults(
    cluster: Cluster, run: FaultRun, until: float, rng: random.Random, log: Counter[str]
) -> None:
    next_node = time.monotonic() + rng.uniform(20, 40)
    while time.monotonic() < until:
        time.sleep(rng.uniform(2.0, 6.0))
        run.pipeline.assert_running()
        if time.monotonic() >= next_node:
            _node_fault(cluster, run, rng, log)
            next_node = time.monotonic() + rng.uniform(30, 60)
            continue
        victim = rng.choice(PROCESSES)
        run.kill(victim)
        time.sleep(rng.uniform(0.1, 1.5))
        run.start(victim)
        log[f"kill {victim}"] += 1


def soak_cluster(args: argparse.Namespace, work: Path) -> int:
    """--cluster: the pipeline here, three broker nodes on hosts of their own."""
    from tests.support.cluster import netns_available, own_cluster

    why = netns_available()
    if why is not None:
        print(f"soak: --cluster needs network namespaces: {why}", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    count = int(args.rate * args.minutes * 60)
    log: Counter[str] = Counter()
    with own_cluster() as cluster:
        day = work / "Journal" / "day.log"
        day.parent.mkdir(parents=True)
        source = DayLog(day, count, args.rate, max(1000, int(args.rate * 40)), args.seed).start()
        # The pipeline runs here, reaching the nodes' hosts over the bridge.
        run = FaultRun(cluster.nodes[0], work, {"source": "file", "path": str(day)},  # type: ignore[arg-type]
                       broker={"urls": cluster.urls, "heartbeat_s": 5})  # fmt: skip
        began = time.monotonic()
        try:
            run.start_all(lookups=2, writers=2)
            print(f"soak: {count} entries at {args.rate}/s for {args.minutes} min on a "
                  f"3-node cluster, work folder {work}", flush=True)  # fmt: skip
            _cluster_faults(cluster, run, began + args.minutes * 60, rng, log)
            wait_for(lambda: source.done, 120, "the simulator to send everything", 0.5)
            settled = _settle(run, 180)
            result = run.compare(source.sent)
            dead = len(run.dead_letters())
            run.pipeline.assert_running()
        finally:
            source.close()
            run.close()
    missing, duplicates = sum(result.missing.values()), sum(result.extra.values())
    print("soak: summary")
    print(f"  wall time         {time.monotonic() - began:.0f} s")
    print(f"  faults            {sum(log.values())}: {dict(sorted(log.items()))}")
    print(f"  sent              {result.expected}, rows {result.rows}")
    print(f"  duplicates        {duplicates}, missing {missing}, dead letters {dead}")
    ok = settled and result.ok and dead == 0 and result.expected == count
    print("soak: OK, every entry exactly once" if ok else "soak: FAILED")
    return 0 if ok else 1


def soak(args: argparse.Namespace, work: Path) -> int:
    rng = random.Random(args.seed)
    count = int(args.rate * args.minutes * 60)
    log: Counter[str] = Counter()
    with own_node(f"cti-soak-{args.seed}@localhost") as node:
        source: Any
        pair: CtiServer | None = None
        if args.gateway_pair:
            pair, run = _pair_setup(args, work, count, node)
            source = pair
        elif args.source == "file":
            day = work / "Journal" / "day.log"
            day.parent.mkdir(parents=True)
            source = DayLog(
                day, count, args.rate, max(1000, int(args.rate * 40)), args.seed
            ).start()
            gateway = {"source": "file", "path": str(day)}
        else:
            source = CtiServer(count, rate=args.rate, seed=args.seed).start()
            gateway = {"source": "tcp", "host": "127.0.0.1", "port": source.port,
                       "spool_dir": str(work / "spool")}  # fmt: skip
        if pair is None:
            run = FaultRun(node, work, gateway)
        began = time.monotonic()
        try:
            if pair is None:
                run.start_all(lookups=2, writers=2)
            kind = "tcp gateway pair" if pair is not None else f"{args.source} source"
            print(f"soak: {count} entries at {args.rate}/s for {args.minutes} min, "
                  f"{kind}, work folder {work}", flush=True)  # fmt: skip
            _faults(run, began + args.minutes * 60, rng, log, pair)
            wait_for(lambda: source.done, 120, "the simulator to send everything", 0.5)
            # A pair doubles the work behind every broker restart: give it longer to drain.
            settled = _settle(run, 180 if pair is None else 900)
            result = run.compare(source.sent)
            dead = len(run.dead_letters())
            run.pipeline.assert_running()
        finally:
            source.close()
            run.close()
    missing, duplicates = sum(result.missing.values()), sum(result.extra.values())
    print("soak: summary")
    print(f"  wall time         {time.monotonic() - began:.0f} s")
    print(f"  faults            {sum(log.values())}: {dict(sorted(log.items()))}")
    print(f"  sent              {result.expected}")
    print(f"  rows              {result.rows}")
    print(f"  duplicates        {duplicates}")
    print(f"  missing           {missing}")
    print(f"  dead letters      {dead}")
    ok = settled and result.ok and dead == 0 and result.expected == count
    print("soak: OK, every entry exactly once" if ok else "soak: FAILED")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0, help=f"(3; at most {MAX_MINUTES})")
    parser.add_argument("--rate", type=float, default=200.0, help="entries/s (200)")
    parser.add_argument("--source", choices=("file", "tcp"), default="file")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--gateway-pair",
        action="store_true",
        help="two TCP gateways reading one CTI server; kills either (SIGKILL or SIGTERM)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, journal)")
    parser.add_argument(
        "--cluster", action="store_true", help="a 3-node cluster with node kills and partitions"
    )
    args = parser.parse_args(argv)
    if not 0 < args.minutes <= MAX_MINUTES or args.rate <= 0:
        parser.error(f"--minutes must be in (0, {MAX_MINUTES}] and --rate > 0")
    if args.cluster and (args.source != "file" or args.gateway_pair):
        parser.error("--cluster runs with --source file only")
    work = Path(tempfile.mkdtemp(prefix="cti-soak-"))
    try:
        return soak_cluster(args, work) if args.cluster else soak(args, work)
    finally:
        if args.keep:
            print(f"soak: logs and journal kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
