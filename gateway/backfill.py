"""`cti-journal import FILE…`: load existing journal files (years of journal.log) through the
same pipeline, with progress. Ids come from the same identity rules as the live sources, so
running it twice, or over days the live tail already delivered, adds no row."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

from cti_journal.gateway.intake import Buffer, Done
from cti_journal.gateway.main import Gateway
from cti_journal.gateway.prepare import Preparer
from cti_journal.shared.arguments import GATEWAY, add_config_argument, load_settings
from cti_journal.shared.config import GatewaySettings
from cti_journal.shared.errors import ConfigError
from cti_journal.shared.metrics import Metrics, make_metrics
from cti_journal.shared.process import on_termination

CHUNK = 256 * 1024


class FileImportSource:
    """Reads whole files once, in order; `run` returns when everything was handed over."""

    def __init__(self, paths: list[Path], settings: GatewaySettings, metrics: Metrics) -> None:
        self.paths = paths
        self.settings = settings
        self.preparer = Preparer(settings, metrics)
        self.total = sum(p.stat().st_size for p in paths)
        self.read = 0
        self.confirmed_bytes = 0
        self.entries = 0
        self.handed = 0
        self._lock = threading.Lock()

    def run(self, buffer: Buffer, stop: threading.Event) -> None:
        for path in self.paths:
            splitter = self.preparer.splitter()  # counts empty lines
            origin = f"import {path}"
            with open(path, "rb") as fh:
                while not stop.is_set() and (data := fh.read(CHUNK)):
                    self.read += len(data)
                    previous = splitter.offset
                    lines = list(splitter.feed(data))
                    outs = self.preparer.prepare_lines(lines, origin, time.time())
                    dones: list[Done | None] = []
                    for line in lines:
                        dones.append(self._counter(line.end_offset - previous))
                        previous = line.end_offset
                    if outs and not buffer.put(outs, dones):
                        return
                    self.handed += len(outs)

    def _counter(self, size: int) -> Done:
        def done() -> None:
            with self._lock:
                self.confirmed_bytes += size
                self.entries += 1

        return done


def _progress(source: FileImportSource, finished: threading.Event) -> None:
    started = time.monotonic()
    while not finished.wait(0.5):
        _print(source, started)
    _print(source, started)
    print(file=sys.stderr)


def _print(source: FileImportSource, started: float) -> None:
    share = source.confirmed_bytes / source.total if source.total else 1.0
    bar = "#" * int(share * 30)
    rate = source.entries / max(1e-9, time.monotonic() - started)
    print(
        f"\rimport [{bar:<30}] {share:6.1%}  {source.entries} entries confirmed  {rate:,.0f}/s",
        end="",
        file=sys.stderr,
    )


def configure(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("files", nargs="+", type=Path, help="journal files, oldest first")


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args, GATEWAY)
    for path in args.files:
        if not path.is_file():
            raise ConfigError("FILE", f"{path} is not a readable file")
    metrics = make_metrics()
    source = FileImportSource(args.files, settings.gateway, metrics)
    gateway = Gateway(settings, metrics, source=source, spool=False)
    on_termination(gateway.shutdown)
    finished = threading.Event()
    printer = threading.Thread(target=_progress, args=(source, finished), daemon=True)
    printer.start()
    gateway.run()
    finished.set()
    printer.join()
    complete = source.entries == source.handed and source.read == source.total
    print(f"import: {source.entries} entries confirmed by the broker", file=sys.stderr)
    return 0 if complete else 1
