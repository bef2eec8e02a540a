"""Write N vCards (one .vcf per card, as a CardDAV collection holds them), seeded.

For CardDAV volume tests and the 100,000-card benchmark (upload the folder to Radicale, or copy
it into a Radicale collection folder):

    python3 tests/corpus/sources/make_vcards.py 2500 /tmp/cards
    python3 tests/corpus/sources/make_vcards.py 100000 /tmp/cards --single /tmp/all.vcf

Cards alternate between vCard 4.0 (RFC 6350: TEL as `tel:` URI, RFC 3966, sometimes with
`;ext=`) and vCard 3.0 (RFC 2426: TEL as text with TYPE lists); lines are CRLF-terminated and
folded at 75 octets; UIDs are `urn:uuid:` values. Same N and seed, same bytes. Stdlib only.
"""

from __future__ import annotations

import argparse
import random
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

GIVEN = [
    "Anna",
    "Bernd",
    "Clara",
    "Dieter",
    "Emma",
    "Fritz",
    "Greta",
    "Hans",
    "Ida",
    "Jörg",
    "Karin",
    "Lutz",
    "Marta",
    "Nils",
    "Olga",
    "Peter",
    "Rita",
    "Sven",
    "Tanja",
    "Uwe",
    "Vera",
    "Walter",
    "Xenia",
    "Yvonne",
    "Zoë",
    "Ömer",
]
FAMILY = [
    "Adler",
    "Bach",
    "Conrad",
    "Dorn",
    "Ebert",
    "Falk",
    "Gärtner",
    "Horn",
    "Iser",
    "Jung",
    "Kolb",
    "Lorenz",
    "Mohr",
    "Nagel",
    "Ott",
    "Pohl",
    "Quast",
    "Rieger",
    "Sauer",
    "Thiel",
    "Ulm",
    "Vogt",
    "Wendt",
    "Zeller",
    "Ölmez",
    "Šimek",
]
CRLF = "\r\n"


def fold(line: str) -> str:
    """RFC 6350 3.2: at most 75 octets a line, never splitting a UTF-8 sequence."""
    out, cur, size, limit = [], "", 0, 75
    for ch in line:
        n = len(ch.encode())
        if size + n > limit:
            out.append(cur)
            cur, size, limit = "", 0, 74
        cur += ch
        size += n
    out.append(cur)
    return (CRLF + " ").join(out) + CRLF


def esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;")


def card(i: int, rnd: random.Random) -> tuple[str, str]:
    given, family = rnd.choice(GIVEN), rnd.choice(FAMILY)
    uid = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
    block, dd = 200000 + i // 900, 100 + i % 900
    org = f"{esc(f'Kunde {block} GmbH')};Einkauf"  # organisation;unit (RFC 6350 6.6.4)
    mob = f"{1000000 + i}"
    if i % 2 == 0:
        work = f"tel:+49-89-{block};ext={dd}" if i % 4 == 0 else f"tel:+49-89-{block}-{dd}"
        lines = ["BEGIN:VCARD", "VERSION:4.0", f"UID:urn:uuid:{uid}",
                 f"FN:{esc(given)} {esc(family)}", f"N:{esc(family)};{esc(given)};;;",
                 f"ORG:{org}", f'TEL;VALUE=uri;PREF=1;TYPE="work,voice":{work}',
                 f"TEL;VALUE=uri;TYPE=cell:tel:+49-160-{mob}"]  # fmt: skip
    else:
        lines = ["BEGIN:VCARD", "VERSION:3.0", f"UID:urn:uuid:{uid}",
                 f"FN:{esc(given)} {esc(family)}", f"N:{esc(family)};{esc(given)};;;",
                 f"ORG:{org}", f"TEL;TYPE=WORK,VOICE:089 {block}-{dd}",
                 f"TEL;TYPE=CELL:0160 {mob}"]  # fmt: skip
    if i % 9 == 0:
        lines.append(
            f"NOTE:Karte {i} – eine lange Notiz\\, damit die Zeile über 75 Oktette hinausgeht "
            "und nach RFC 6350 gefaltet werden muss."
        )
    lines += ["REV:20261101T080000Z", "END:VCARD"]
    return uid, "".join(fold(x) for x in lines)


def cards(n: int, seed: int) -> Iterator[tuple[str, str]]:
    rnd = random.Random(seed)
    for i in range(n):
        yield card(i, rnd)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("count", type=int)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--single", type=Path, help="also write all cards into this one .vcf")
    args = ap.parse_args(argv)
    args.folder.mkdir(parents=True, exist_ok=True)
    single = args.single.open("wb") if args.single else None
    try:
        for uid, text in cards(args.count, args.seed):
            data = text.encode()
            (args.folder / f"{uid}.vcf").write_bytes(data)
            if single:
                single.write(data)
    finally:
        if single:
            single.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
