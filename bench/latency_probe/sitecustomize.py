"""Timestamps per entry and stage, for `bench.latency_trace` only (never imported otherwise).

Python imports `sitecustomize` at start-up from sys.path; bench.latency_trace puts this folder
first on the pipeline processes' PYTHONPATH with CTI_LATENCY_PROBE=<dir>. The hooks wrap a
few methods and append `stage t event_id...` lines (t = time.time(), the one clock all the
processes share) to <dir>/<pid>.txt. They change no behaviour: each calls the original.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from typing import Any

_DIR = os.environ.get("CTI_LATENCY_PROBE", "")


def _install() -> None:  # noqa: C901, PLR0915 - a list of wrappers, flat on purpose
    import orjson

    out = open(os.path.join(_DIR, f"{os.getpid()}.txt"), "a", buffering=1 << 20)  # noqa: SIM115
    lock = threading.Lock()

    def rec(stage: str, ids: list[str], t: float | None = None) -> None:
        line = f"{stage} {t if t is not None else time.time():.6f} {' '.join(ids)}\n"
        with lock:
            out.write(line)

    def close() -> None:
        with lock:
            out.flush()

    atexit.register(close)

    def flusher() -> None:
        while True:
            time.sleep(1.0)
            close()

    threading.Thread(target=flusher, daemon=True).start()

    def ids_of(body: bytes) -> list[str]:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return []
        items = data if isinstance(data, list) else [data]
        return [str(d.get("event_id", "?")) for d in items if isinstance(d, dict)]

    # -- gateway: the read batch's spool write (fsync) and its wake-up on the IOLoop --------
    from cti_journal.gateway import intake, publisher, spool

    def wrap_put(cls: Any) -> None:
        orig = cls.put

        def put(self: Any, outs: Any, on_published: Any = None) -> bool:
            t0 = time.time()
            ok = orig(self, outs, on_published)
            t1 = time.time()
            ids = [i for o in outs for i in ids_of(o.body)]
            rec("put_start", ids, t0)
            rec("put_end", ids, t1)
            return bool(ok)

        cls.put = put

    from cti_journal.gateway import sources

    orig_hand_over = sources._hand_over

    def hand_over(*a: Any, **kw: Any) -> bool:
        rec("gw_recv", [])
        return bool(orig_hand_over(*a, **kw))

    sources._hand_over = hand_over

    wrap_put(spool.SpoolBuffer)
    wrap_put(intake.MemoryBuffer)
    orig_wake = publisher.GatewayPublisher.wake

    def wake(self: Any) -> None:
        rec("gw_wake", [])
        orig_wake(self)

    publisher.GatewayPublisher.wake = wake  # type: ignore[method-assign]

    # -- every publish and its confirm (gateway, look-up) -----------------------------------
    from cti_journal.shared import amqp, consumer

    orig_publish = amqp.AmqpLink.publish

    def publish(self: Any, routing_key: str, body: bytes, on_confirm: Any, **kw: Any) -> bool:
        ids = ids_of(body)
        stage = self.name

        def confirmed(ok: bool) -> None:
            rec(f"{stage}_confirm", ids)
            on_confirm(ok)

        rec(f"{stage}_publish", ids)
        return bool(orig_publish(self, routing_key, body, confirmed, **kw))

    amqp.AmqpLink.publish = publish  # type: ignore[method-assign]

    orig_ack = amqp.AmqpLink.ack

    def ack(self: Any, tag: int, *, multiple: bool = False) -> None:
        rec(f"{self.name}_ack", [])
        orig_ack(self, tag, multiple=multiple)

    amqp.AmqpLink.ack = ack  # type: ignore[method-assign]

    orig_on_message = consumer.Consumer._on_message

    def on_message(self: Any, body: bytes, headers: Any, tag: int, redelivered: bool) -> None:
        rec(f"{self.link.name}_deliver", ids_of(body))
        orig_on_message(self, body, headers, tag, redelivered)

    consumer.Consumer._on_message = on_message  # type: ignore[method-assign]

    # -- writer: the batch handed to the database thread, and the write itself --------------
    from cti_journal.writer import sink, values, worker

    # a writer that holds entries as tuples of values (since 2026-12-03), or as entry objects
    event_id_at = getattr(values, "EVENT_ID", 0)

    def id_of(entry: Any) -> str:
        return str(entry[event_id_at] if isinstance(entry, tuple) else entry.event_id)

    orig_submit = worker.WriterWorker._submit

    def submit(self: Any) -> None:
        ids = [id_of(e) for e in self._batch.entries]
        if ids:
            rec("w_submit", ids)
        orig_submit(self)

    worker.WriterWorker._submit = submit  # type: ignore[method-assign]

    orig_take = getattr(worker.WriterWorker, "_take_gathered", None)
    if orig_take is not None:  # the database thread takes the next batch itself

        def take(self: Any) -> Any:
            batch = orig_take(self)
            if batch is not None:
                rec("w_submit", [id_of(e) for e in batch.entries])
            return batch

        worker.WriterWorker._take_gathered = take  # type: ignore[attr-defined]

    orig_settle = worker.WriterWorker._settle

    def settle(self: Any, batch: Any, outcomes: Any) -> None:
        rec("w_settle", [])
        orig_settle(self, batch, outcomes)

    worker.WriterWorker._settle = settle  # type: ignore[method-assign]

    orig_write = sink.OdbcJournalSink.write

    def write(self: Any, entries: Any) -> Any:
        ids = [id_of(e) for e in entries]
        rec("w_write_start", ids)
        result = orig_write(self, entries)
        rec("w_write_end", ids)
        return result

    sink.OdbcJournalSink.write = write  # type: ignore[method-assign]

    # inside the write: the ledger claim, the INSERT, the COMMIT (stamped without ids)
    orig_insert = getattr(sink, "insert", None)
    if orig_insert is None:
        return

    def insert_(*a: Any, **kw: Any) -> Any:
        rec("w_insert_start", [])
        try:
            return orig_insert(*a, **kw)
        finally:
            rec("w_insert_end", [])

    sink.insert = insert_


if _DIR:
    _install()
    if os.environ.get("CTI_PROBE_SWITCH_S"):  # an experiment: the GIL's switch interval
        import sys

        sys.setswitchinterval(float(os.environ["CTI_PROBE_SWITCH_S"]))
