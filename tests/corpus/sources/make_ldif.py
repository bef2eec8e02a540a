"""Write N inetOrgPerson entries with AD-like phone attributes as LDIF (RFC 2849), seeded.

For paging tests (more than AD's 1,000-entry page) and the 100,000-entry benchmark:

    python3 tests/corpus/sources/make_ldif.py 2500 > /tmp/people.ldif
    python3 tests/corpus/sources/make_ldif.py 100000 --seed 7 --out /tmp/big.ldif

The same N and seed always give the same bytes. Entries sit under OU=Volume,DC=example,DC=local;
the two parent entries come first. Every person gets a unique telephoneNumber
(`+49 89 <block>-<dd>`, E.123 with a DIN 5008 hyphen) and a unique mobile; every tenth an
otherTelephone pair, every seventh a homePhone, every fifth an ipPhone. Names draw on German and
other European names so that some values need base64. Stdlib only; no project code.
"""

from __future__ import annotations

import argparse
import base64
import random
import sys
import uuid
from collections.abc import Iterator
from typing import TextIO

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
    "Ærin",
    "Łukasz",
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
    "Nørgaard",
]
BASE = "OU=Volume,DC=example,DC=local"
HEADER = (
    "version: 1\n"  # RFC 2849 example 1: the first record follows at once
    "dn: DC=example,DC=local\nobjectClass: top\nobjectClass: dcObject\n"
    "objectClass: organization\ndc: example\no: Example\n\n"
    f"dn: {BASE}\nobjectClass: top\nobjectClass: organizationalUnit\nou: Volume\n\n"
)


def _line(attr: str, value: str | bytes) -> str:
    """One attribute line; base64 when RFC 2849's SAFE-STRING does not hold; folded at 76."""
    if isinstance(value, bytes):
        text = f"{attr}:: {base64.b64encode(value).decode()}"
    elif value[:1] in (" ", ":", "<") or value.endswith(" ") or not value.isascii():
        text = f"{attr}:: {base64.b64encode(value.encode()).decode()}"
    else:
        text = f"{attr}: {value}"
    if len(text) <= 76:
        return text + "\n"
    parts = [text[:76]] + [text[i : i + 75] for i in range(76, len(text), 75)]
    return "\n ".join(parts) + "\n"


def entries(n: int, seed: int) -> Iterator[str]:
    rnd = random.Random(seed)
    for i in range(n):
        given, family = rnd.choice(GIVEN), rnd.choice(FAMILY)
        uid = f"u{i:06d}"
        guid = uuid.UUID(int=rnd.getrandbits(128), version=4)
        block, dd = 100000 + i // 900, 100 + i % 900  # 900 direct dials per company block
        company = f"Firma {block} GmbH"
        out = [
            _line("dn", f"uid={uid},{BASE}"),
            "objectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\n"
            "objectClass: inetOrgPerson\nobjectClass: extensibleObject\n",
            _line("uid", uid),
            _line("cn", f"{given} {family} {i}"),
            _line("sn", family),
            _line("givenName", given),
            _line("displayName", f"{family}, {given}"),
            _line("objectGUID", guid.bytes_le),
            _line("company", company),
            _line("o", company),
            _line("telephoneNumber", f"+49 89 {block}-{dd}"),
            _line("mobile", f"+49 17{i % 10} {1000000 + i}"),
            _line("facsimileTelephoneNumber", f"+49 89 {block}-99"),
        ]
        if i % 5 == 0:
            out.append(_line("ipPhone", str(dd)))
        if i % 7 == 0:
            out.append(_line("homePhone", f"08151 {200000 + i}"))
        if i % 10 == 0:
            out.append(_line("otherTelephone", f"+49 30 {3000000 + i}"))
            out.append(_line("otherTelephone", f"030 {5000000 + i}"))
        yield "".join(out) + "\n"


def write(n: int, seed: int, fh: TextIO) -> None:
    fh.write(HEADER)
    for entry in entries(n, seed):
        fh.write(entry)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("count", type=int)
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--out", help="file to write (default: standard output)")
    args = ap.parse_args(argv)
    if args.out:
        with open(args.out, "w", encoding="utf-8", newline="\n") as fh:
            write(args.count, args.seed, fh)
    else:
        write(args.count, args.seed, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
