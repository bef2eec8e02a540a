"""Load time and peak memory of 100,000 contacts from LDAP and from CardDAV, beside the same
contacts from an ODBC table (SQLite), and the look-up rate once loaded.

    .venv/bin/python -m bench.contact_sources --count 100000

The contacts are the corpus generator's (`tests/corpus/sources/make_ldif.py N`): loaded into a
throwaway slapd (tests/support/slapd.py), read back once through the ldap source, and the rows
written unchanged as one vCard 3.0 per contact into a throwaway Radicale address book and as
rows of a SQLite table: the three sources hold the same contacts. Each measurement runs in a
fresh child process: `load s` is the source's full load plus the index build, `peak MB` the
child's peak RSS (VmHWM) over its RSS after imports, `look-ups/s` ContactIndex.find on
20,000 of the contacts' numbers. Radicale parses every card once on its first REPORT (its own
cache); that server-side warm-up is done before the measurement and shown separately.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cti_journal.lookup.contacts import ContactRow
from cti_journal.lookup.index import ContactIndex
from cti_journal.lookup.sources.factory import make_source
from cti_journal.shared.config import ContactSourceSettings, LookupSettings
from cti_journal.shared.normalize import NumberNormalizer

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT / "tests" / "corpus" / "sources" / "make_ldif.py"
MAX_PHONES = 8
SAMPLE = 20_000


def _status_kb(field: str) -> int:
    """VmRSS (now) or VmHWM (the peak) of this process. Not getrusage's ru_maxrss: Linux keeps
    that across exec, so a child would report the parent's peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def measure(settings: ContactSourceSettings, numbers: list[str]) -> dict[str, Any]:
    """In the child: one full load into a fresh index, then look-ups."""
    lookup = LookupSettings(area_code="89", sources=(settings,))
    normalizer = NumberNormalizer.from_settings(lookup)
    baseline = _status_kb("VmRSS")
    started = time.perf_counter()
    source = make_source(settings)
    index = ContactIndex.empty(normalizer).updated(settings, source.full_load(), replace="all")
    load_s = time.perf_counter() - started
    peak_kb = _status_kb("VmHWM") - baseline
    rates = []
    for _ in range(5):  # the best of five: a shared machine's noise only ever slows a round
        started = time.perf_counter()
        found = sum(1 for number in numbers if index.find(number, incoming=True) is not None)
        rates.append(len(numbers) / (time.perf_counter() - started))
    rate = max(rates)
    return {
        "records": index.records_of(settings.name),
        "load_s": round(load_s, 2),
        "peak_mb": round(peak_kb / 1024, 1),
        "lookups_per_s": round(rate),
        "found": found,
        "looked_up": len(numbers),
    }


def _child(settings: ContactSourceSettings, numbers: Path) -> dict[str, Any]:
    payload = json.dumps(dataclasses.asdict(settings))
    done = subprocess.run(
        [sys.executable, "-m", "bench.contact_sources", "--measure", payload, str(numbers)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{settings.name}: {done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _e164(text: str) -> str:
    return "".join(c for c in text if c.isdigit() or c == "+")


def _vcard(row: ContactRow) -> str:
    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;")

    lines = ["BEGIN:VCARD", "VERSION:3.0", f"UID:{row.record_id}", f"FN:{esc(row.name)}"]
    if row.company:
        lines.append(f"ORG:{esc(row.company)}")
    lines += [f"TEL;TYPE=WORK:{phone}" for phone in row.phones]
    return "\r\n".join([*lines, "END:VCARD", ""])


def _sqlite(path: Path, rows: list[ContactRow]) -> ContactSourceSettings:
    columns = [f"p{i}" for i in range(MAX_PHONES)]
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE contacts (id TEXT PRIMARY KEY, name TEXT, company TEXT, "
            + ", ".join(f"{c} TEXT" for c in columns)
            + ")"
        )
        db.executemany(
            f"INSERT INTO contacts VALUES ({', '.join('?' * (3 + MAX_PHONES))})",
            (
                (
                    r.record_id,
                    r.name,
                    r.company,
                    *(list(r.phones[:MAX_PHONES]) + [None] * MAX_PHONES)[:MAX_PHONES],
                )
                for r in rows
            ),
        )
    return ContactSourceSettings(
        name="erp",
        dsn=f"Driver={{SQLite3}};Database={path};",
        table="contacts",
        id_column="id",
        name_column="name",
        company_column="company",
        phone_columns=tuple(columns),
    )


MULTISTATUS_HEAD = (
    '<?xml version="1.0" encoding="utf-8"?>\n<multistatus xmlns="DAV:" '
    'xmlns:CR="urn:ietf:params:xml:ns:carddav">'
)


def _replay_body(rows: list[ContactRow], path: Path) -> None:
    """A REPORT addressbook-query reply of every card, written the way Radicale writes one."""
    with path.open("w", encoding="utf-8") as out:
        out.write(MULTISTATUS_HEAD)
        for i, row in enumerate(rows):
            card = _vcard(row).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            out.write(
                f"<response><href>/cti/bench/{i}.vcf</href><propstat><prop>"
                f'<getetag>"{i}"</getetag><CR:address-data>{card}</CR:address-data></prop>'
                "<status>HTTP/1.1 200 OK</status></propstat></response>"
            )
        out.write("</multistatus>")


def _replay_server(body: Path) -> tuple[Any, int]:
    """A loopback stand-in answering the two requests of a full load from a recorded reply:
    measures the client's parsing and memory at a size Radicale takes hours to serve."""
    import http.server
    import threading

    propfind = (
        MULTISTATUS_HEAD + "<response><href>/cti/bench/</href><propstat><prop><resourcetype>"
        "<collection/><CR:addressbook/></resourcetype><sync-token>t1</sync-token></prop>"
        "<status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"
    ).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, size: int) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(207)
            self.send_header("Content-Type", "application/xml; charset=utf-8")
            self.send_header("Content-Length", str(size))
            self.end_headers()

        def do_PROPFIND(self) -> None:
            self._reply(len(propfind))
            self.wfile.write(propfind)

        def do_REPORT(self) -> None:
            self._reply(body.stat().st_size)
            with body.open("rb") as data:
                while chunk := data.read(1 << 20):
                    self.wfile.write(chunk)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, int(server.server_address[1])


def run(count: int, dav_count: int) -> list[tuple[str, dict[str, Any]]]:
    from tests.support.radicale import USER, start_radicale
    from tests.support.slapd import BASE_DN, READER_DN, READER_PASSWORD, start_slapd

    results: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="cti-bench-sources-") as tmp:
        work = Path(tmp)
        ldif = subprocess.run(
            [sys.executable, str(GENERATOR), str(count)], capture_output=True, text=True, check=True
        ).stdout
        started = time.perf_counter()
        slapd = start_slapd(work / "slapd", ldif)
        print(f"slapd with {count} entries up in {time.perf_counter() - started:.1f} s", flush=True)
        radicale = None
        try:
            ldap = ContactSourceSettings(
                name="ad", type="ldap", url=slapd.ldaps_url, base_dn=f"OU=Volume,{BASE_DN}",
                bind_dn=READER_DN, password=READER_PASSWORD, ca_file=str(slapd.ca_file),
                timeout_s=60.0,
            )  # fmt: skip
            rows = list(make_source(ldap).full_load())
            numbers = [_e164(r.phones[0]) for r in rows[:: max(1, len(rows) // SAMPLE)] if r.phones]
            sample = work / "numbers.txt"
            sample.write_text("\n".join(numbers[:SAMPLE]))
            odbc = _sqlite(work / "contacts.db", rows)

            _replay_body(rows, work / "report.xml")
            replay, port = _replay_server(work / "report.xml")
            replayed = ContactSourceSettings(
                name="nextcloud", type="carddav", url=f"http://127.0.0.1:{port}/cti/bench/",
                allow_plain=True, timeout_s=600.0,
            )  # fmt: skip
            radicale = start_radicale(work / "radicale")
            dav_rows = rows[:dav_count]
            radicale.make_book("bench", {f"{i}.vcf": _vcard(r) for i, r in enumerate(dav_rows)})
            carddav = ContactSourceSettings(
                name="nextcloud", type="carddav", url=radicale.book_url("bench"), username=USER,
                password="dav-secret", ca_file=str(radicale.ca_file), timeout_s=3600.0,
            )  # fmt: skip
            del rows, dav_rows
            started = time.perf_counter()
            warm = sum(1 for _ in make_source(carddav).full_load())
            print(f"Radicale's first REPORT (server parses and caches {warm} cards): "
                  f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
            kinds = (
                ("odbc (SQLite)", odbc),
                ("ldap (slapd)", ldap),
                (f"carddav (Radicale, {warm})", carddav),
                ("carddav (replayed)", replayed),
            )
            for kind, settings in kinds:
                result = _child(settings, sample)
                print(kind, result, flush=True)
                results.append((kind, result))
            replay.shutdown()
        finally:
            slapd.stop()
            if radicale is not None:
                radicale.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument(
        "--radicale-count", type=int, default=3000,
        help="cards in the real Radicale (its first REPORT parses each card: ~20/s here)",
    )  # fmt: skip
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("numbers", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        raw = json.loads(args.measure)
        raw["phone_columns"] = tuple(raw["phone_columns"])
        raw["phone_attributes"] = tuple(raw["phone_attributes"])
        raw["phone_paths"] = tuple(raw["phone_paths"])
        numbers = Path(args.numbers).read_text().split()
        print(json.dumps(measure(ContactSourceSettings(**raw), numbers)))
        return 0
    results = run(args.count, args.radicale_count)
    print(f"\n{args.count} contacts       | load s | peak MB | look-ups/s | found")
    for kind, r in results:
        print(
            f"{kind:25} | {r['load_s']:6} | {r['peak_mb']:7} | {r['lookups_per_s']:10} | "
            f"{r['found']}/{r['looked_up']} (records {r['records']})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
