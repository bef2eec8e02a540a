"""Read the contact world (`world.json`) and the calls with their expected owners (`calls.tsv`).

Pure Python, no project imports, so that tests can compare the look-up's answers with data that
did not come from the look-up. See README.md for what the fields mean.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Company:
    id: int
    name: str
    phone: str  # E.164 of the main number (switchboard `-0` when the company owns a block)
    fax: str | None
    block: bool  # owns every direct dial under the switchboard's base number
    erp_phone: str  # as the ERP table holds it
    erp_fax: str


@dataclass(frozen=True)
class Person:
    key: str  # P01..P60, the world's own key; never a source's record id
    given: str
    family: str
    company: int | None
    phones: tuple[tuple[str, str], ...]  # (kind, E.164)
    records: dict[str, str]  # source name -> record id in that source
    phones_per_source: dict[str, tuple[str, ...]]  # source name -> E.164 numbers it holds


@dataclass(frozen=True)
class World:
    region: str
    own_area_code: str
    amtsholung: str
    priorities: dict[str, int]  # source name -> priority, lower wins
    companies: tuple[Company, ...]
    persons: tuple[Person, ...]
    strangers: tuple[str, ...]


@dataclass(frozen=True)
class Owner:
    """Expected owner of a call: a person record, a company (fall-back), or nobody."""

    kind: str  # "record" | "company" | "none"
    source: str = ""
    record_id: str = ""
    company_id: int = 0

    @classmethod
    def parse(cls, text: str) -> Owner:
        if text == "NONE":
            return cls("none")
        if text.startswith("COMPANY:"):
            return cls("company", company_id=int(text.removeprefix("COMPANY:")))
        source, sep, record_id = text.partition(":")
        if not sep or not source or not record_id:
            raise ValueError(f"calls.tsv: expected 'source:id', 'COMPANY:id' or NONE, got {text!r}")
        return cls("record", source=source, record_id=record_id)


@dataclass(frozen=True)
class Call:
    direction: str  # "in" | "out"
    number: str  # as the PBX delivers it, Amtsholung included for outgoing calls
    amtsholung: str  # "0" when `number` starts with the outside-line prefix, else ""
    expected: Owner
    why: str


def _company(raw: dict[str, Any]) -> Company:
    return Company(
        id=int(raw["id"]),
        name=str(raw["name"]),
        phone=str(raw["phone"]),
        fax=None if raw["fax"] is None else str(raw["fax"]),
        block=bool(raw["block"]),
        erp_phone=str(raw["erp_phone"]),
        erp_fax=str(raw["erp_fax"]),
    )


def _person(raw: dict[str, Any]) -> Person:
    return Person(
        key=str(raw["key"]),
        given=str(raw["given"]),
        family=str(raw["family"]),
        company=None if raw["company"] is None else int(raw["company"]),
        phones=tuple((str(p["kind"]), str(p["e164"])) for p in raw["phones"]),
        records={str(k): str(v) for k, v in raw["records"].items()},
        phones_per_source={
            str(k): tuple(str(n) for n in v) for k, v in raw["phones_per_source"].items()
        },
    )


def load_world(path: Path = HERE / "world.json") -> World:
    raw = json.loads(path.read_text(encoding="utf-8"))
    ctx = raw["context"]
    return World(
        region=str(ctx["region"]),
        own_area_code=str(ctx["own_area_code"]),
        amtsholung=str(ctx["amtsholung"]),
        priorities={str(k): int(v) for k, v in raw["priorities"].items()},
        companies=tuple(_company(c) for c in raw["companies"]),
        persons=tuple(_person(p) for p in raw["persons"]),
        strangers=tuple(str(s) for s in raw["strangers"]),
    )


CALLS_HEADER = ["direction", "number", "amtsholung", "expected", "why"]


def load_calls(path: Path = HERE / "calls.tsv") -> list[Call]:
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].split("\t") != CALLS_HEADER:
        raise ValueError(f"{path}: header must be {CALLS_HEADER}")
    calls = []
    for n, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        if len(cells) != len(CALLS_HEADER):
            raise ValueError(f"{path}:{n}: {len(cells)} columns, want {len(CALLS_HEADER)}")
        direction, number, amt, expected, why = cells
        calls.append(Call(direction, number, amt, Owner.parse(expected), why))
    return calls
