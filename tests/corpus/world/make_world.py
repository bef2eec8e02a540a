"""Write a small contact set and a PBX call list that the project did not generate.

Standalone, stdlib only, no project code. Every contact number is first chosen as parts
(country code, national number, extension), then *written* the ways people type it (DIN 5008,
E.123, the old slash, extension words, (0), tel: URIs, labels, several numbers in one field), and
every call is *delivered* the ways a PBX gives it (national, 00/+ international, local without the
area code, with the outside prefix 0 in front when `amtsholung` is 0). The expected record of a
call comes from the parts, never from reading a written field. Context: company in Munich (089).

    python3 tests/corpus/world/make_world.py   # rewrites the three files next to it
"""

from __future__ import annotations

import csv
import pathlib
import random

HERE = pathlib.Path(__file__).parent
R = random.Random(20261201)

FIRST = [
    "Anna",
    "Ben",
    "Clara",
    "David",
    "Emma",
    "Felix",
    "Greta",
    "Hannes",
    "Ida",
    "Jonas",
    "Katrin",
    "Lukas",
    "Marie",
    "Nico",
    "Olga",
    "Paul",
    "Quirin",
    "Rosa",
    "Stefan",
    "Theresa",
    "Uwe",
    "Vera",
    "Wolfgang",
    "Xaver",
    "Yvonne",
    "Zoe",
    "Andreas",
    "Birgit",
    "Christian",
    "Doris",
    "Erik",
    "Franziska",
    "Georg",
    "Heike",
    "Ingo",
    "Julia",
    "Klaus",
    "Lena",
    "Martin",
    "Nina",
    "Oliver",
    "Petra",
    "Ralf",
    "Sabine",
    "Thomas",
    "Ulrike",
    "Volker",
    "Werner",
    "Sophie",
    "Maximilian",
]
LAST = [
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Schäfer",
    "Koch",
    "Bauer",
    "Richter",
    "Klein",
    "Wolf",
    "Schröder",
    "Neumann",
    "Schwarz",
    "Zimmermann",
    "Braun",
    "Krüger",
    "Hofmann",
    "Hartmann",
    "Lange",
    "Schmitt",
    "Werner",
    "Krause",
    "Meier",
    "Lehmann",
    "Huber",
    "Mayer",
    "Herrmann",
    "König",
    "Walter",
    "Kaiser",
    "Fuchs",
    "Peters",
    "Lang",
    "Scholz",
    "Möller",
    "Weiß",
    "Jung",
    "Hahn",
    "Keller",
    "Vogel",
    "Friedrich",
    "Günther",
    "Roth",
    "Sommer",
]
KIND = [
    "Maschinenbau",
    "Logistik",
    "Elektro",
    "Steuerberatung",
    "Druckerei",
    "Software",
    "Bau",
    "Medizintechnik",
    "Immobilien",
    "Versicherungsmakler",
    "Spedition",
    "Feinmechanik",
    "Werkzeugbau",
    "Kanzlei",
    "Verlag",
]
FORM = ["GmbH", "AG", "GmbH & Co. KG", "KG", "e.K.", "OHG", "GbR"]

# (area code without trunk 0, subscriber base length range) for German geographic numbers
DE_AREAS = [("89", 5, 7)] * 8 + [
    ("30", 5, 7),
    ("40", 5, 7),
    ("221", 5, 7),
    ("69", 5, 7),
    ("711", 5, 7),
    ("511", 5, 7),
    ("211", 5, 7),
    ("351", 5, 7),
    ("341", 5, 7),
    ("911", 5, 7),
    ("228", 5, 7),
    ("421", 5, 7),
    ("201", 5, 7),
    ("231", 5, 7),
    ("621", 5, 7),
    ("721", 5, 7),
    ("761", 5, 7),
    ("821", 5, 7),
    ("841", 5, 7),
    ("941", 5, 7),
    ("8031", 5, 6),
    ("8121", 4, 6),
    ("8161", 5, 6),
    ("8141", 5, 6),
    ("8025", 4, 5),
    ("33204", 4, 5),
    ("7191", 5, 6),
    ("4131", 5, 6),
    ("9123", 4, 5),
]
MOBILE = [
    ("151", 8),
    ("152", 8),
    ("157", 8),
    ("159", 8),
    ("160", 7),
    ("162", 7),
    ("163", 7),
    ("170", 7),
    ("171", 7),
    ("172", 7),
    ("173", 7),
    ("174", 7),
    ("175", 7),
    ("176", 8),
    ("177", 8),
    ("178", 8),
    ("179", 7),
]
# foreign switchboards with direct dials: (cc, area, base length); plain foreign numbers below
# Austria: variable-length numbers, a direct dial is dialable (+43 1 53456-789).
FOREIGN_DID = [("43", "1", 5), ("43", "662", 5), ("43", "316", 5)]
# Switzerland: fixed 9 digits, so "-22" after a full number is an internal extension nobody can
# dial from outside; only the main number arrives in calls.
SWISS = [("31", 7), ("61", 7), ("44", 7)]
FOREIGN_PLAIN = [
    ("44", "20", "7946", 4),
    ("44", "161", "496", 4),
    ("33", "1", "4", 7),
    ("33", "4", "91", 6),
    ("31", "20", "", 7),
    ("39", "06", "", 8),
    ("39", "02", "", 8),
    ("1", "212", "", 7),
    ("1", "617", "", 7),
]

taken: dict[str, set[str]] = {}  # cc -> national numbers in use (contacts and nobody-numbers)


def free(cc: str, nsn: str) -> bool:
    """No number is a prefix of another: a switchboard base + digits is always its own DID."""
    return all(not (t.startswith(nsn) or nsn.startswith(t)) for t in taken.setdefault(cc, set()))


def claim(cc: str, nsn: str) -> None:
    taken.setdefault(cc, set()).add(nsn)


def digits(n: int) -> str:
    return str(R.randint(2, 9)) + "".join(str(R.randint(0, 9)) for _ in range(n - 1))


def new_de(
    kind: str = "geo", lo: int | None = None, hi: int | None = None, area: str | None = None
) -> tuple[str, str]:
    while True:
        if kind == "mobile":
            ac, n = R.choice(MOBILE)
            sub = str(R.randint(1, 9)) + "".join(str(R.randint(0, 9)) for _ in range(n - 1))
        else:
            ac, a, b = (area, 5, 7) if area else R.choice(DE_AREAS)
            sub = digits(R.randint(lo or a, hi or b))
        if free("49", ac + sub):
            claim("49", ac + sub)
            return ac, sub


def groups2(s: str) -> str:
    out: list[str] = []
    while s:
        out.insert(0, s[-2:])
        s = s[:-2]
    return " ".join(out)


NB, EN = "\u00a0", "\u2013"

# --- how people write numbers (from the parts; see ../README.md for the sources) ----------------


def w_plain_de(ac: str, sub: str) -> str:
    forms = [
        f"0{ac} {sub}",
        f"+49 {ac} {sub}",
        f"(0{ac}) {sub}",
        f"0{ac}/{sub}",
        f"0{ac} / {sub}",
        f"0{ac} {groups2(sub)}",
        f"+49 (0){ac} {sub}",
        f"+49 ({ac}) {sub}",
        f"0049 {ac} {sub}",
        f"0{ac}-{sub}",
        f"++49 {ac} {sub}",
        f"+49 0{ac} {sub}",
        f"Tel. 0{ac} {sub}",
        f"+49-{ac}-{sub}",
        f"0{ac}{NB}{sub}",
        f"Tel.: (0{ac}) {groups2(sub)}",
        f"0{ac}{sub}",
        f"+49{ac}{sub}",
    ]
    if ac == "89":
        forms += [sub, groups2(sub), f"Tel. {sub}"]
    return R.choice(forms)


def w_mobile(ac: str, sub: str) -> str:
    return R.choice(
        [
            f"0{ac} {sub}",
            f"+49 {ac} {sub}",
            f"0{ac}/{sub}",
            f"0{ac}-{sub}",
            f"0{ac} {sub[:3]} {sub[3:]}",
            f"Handy: 0{ac} {sub}",
            f"+49 (0){ac} {sub}",
            f"(0{ac}) {sub}",
            f"mobil 0{ac} {sub}",
            f"0{ac}{sub}",
            f"+49{ac}{sub}",
            f"Mobil: +49 {ac} {sub}",
        ]
    )


def w_did_de(ac: str, base: str, ext: str) -> str:
    forms = [
        f"0{ac} {base}-{ext}",
        f"+49 {ac} {base}-{ext}",
        f"0{ac} {base} Dw. {ext}",
        f"+49 {ac} {base} DW {ext}",
        f"0{ac} {base} Durchwahl {ext}",
        f"0{ac}/{base}-{ext}",
        f"(0{ac}) {base}-{ext}",
        f"+49 (0){ac} {base}-{ext}",
        f"0{ac} {base} - {ext}",
        f"0{ac} {base} App. {ext}",
        f"0{ac} {base} Apparat {ext}",
        f"0{ac} {base} Nst. {ext}",
        f"0{ac} {base} Nebenstelle {ext}",
        f"+49 {ac} {base} ext. {ext}",
        f"+49 {ac} {base} x{ext}",
        f"tel:+49-{ac}-{base};ext={ext}",
        f"+49-{ac}-{base};ext={ext}",
        f"+49 ({ac}) {base}-{ext}",
        f"0049 {ac} {base}-{ext}",
        f"Tel.: 0{ac} {base}-{ext}",
        f"0{ac} / {groups2(base)}-{ext}",
        f"+49 {ac} {base}{EN}{ext}",
        f"0{ac} {base}, Durchwahl {ext}",
    ]
    if ac == "89":
        forms += [f"{base}-{ext}", f"{base} Dw. {ext}"]
    return R.choice(forms)


def w_switchboard_de(ac: str, base: str) -> str:
    forms = [
        f"0{ac} {base}-0",
        f"+49 {ac} {base}-0",
        f"0{ac} {base} - 0",
        f"0{ac} / {groups2(base)} - 0",
        f"+49 (0){ac} {base}-0",
        f"(0{ac}) {base}-0",
        f"0{ac}/{base}-0",
        f"Zentrale: 0{ac} {base}-0",
        f"+49 ({ac}) {base}-0",
        f"+49 {ac} {base}{EN}0",
        f"0049 {ac} {base}-0",
        f"0{ac}-{base}-0",
    ]
    if ac == "89":
        forms += [f"{base}-0"]
    return R.choice(forms)


def w_foreign_did(cc: str, ac: str, base: str, ext: str) -> str:
    return R.choice(
        [
            f"+{cc} {ac} {base}-{ext}",
            f"00{cc} {ac} {base} - {ext}",
            f"+{cc} (0){ac} {base}-{ext}",
            f"00{cc} {ac} {base}-{ext}",
        ]
    )


def w_foreign_plain(cc: str, nsn: str) -> str:
    if cc == "1":
        return R.choice(
            [
                f"+1 ({nsn[:3]}) {nsn[3:6]}-{nsn[6:]}",
                f"+1 {nsn[:3]}-{nsn[3:6]}-{nsn[6:]}",
                f"001 {nsn[:3]} {nsn[3:6]} {nsn[6:]}",
            ]
        )
    if cc == "39":
        return R.choice([f"+39 {nsn[:2]} {nsn[2:6]} {nsn[6:]}", f"0039 {nsn[:2]} {nsn[2:]}"])
    if cc == "33":
        g = " ".join(nsn[i : i + 2] for i in range(1, 9, 2))
        return R.choice([f"+33 {nsn[0]} {g}", f"+33 (0){nsn[0]} {g}", f"0033 {nsn[0]} {g}"])
    if cc == "44" and nsn.startswith("20"):
        return R.choice(
            [f"+44 20 {nsn[2:6]} {nsn[6:]}", f"+44 (0)20 {nsn[2:]}", f"0044 20 {nsn[2:]}"]
        )
    if cc == "44":
        return R.choice([f"+44 {nsn[:3]} {nsn[3:6]} {nsn[6:]}", f"+44 (0){nsn[:3]} {nsn[3:]}"])
    if cc == "41":
        return R.choice(
            [
                f"+41 {nsn[:2]} {nsn[2:5]} {nsn[5:7]} {nsn[7:]}",
                f"0041 {nsn[:2]} {nsn[2:]}",
                f"+41 (0){nsn[:2]} {nsn[2:]}",
            ]
        )
    return R.choice([f"+{cc} {nsn[:2]} {nsn[2:]}", f"00{cc} (0){nsn[:2]} {nsn[2:]}"])


# --- how a PBX delivers a number -----------------------------------------------------------------


def deliveries(cc: str, nsn: str) -> list[tuple[str, str]]:
    """(number, amtsholung) pairs; with amtsholung 0 the outside prefix 0 is in front."""
    if cc == "49":
        out = [
            ("0" + nsn, ""),
            ("0049" + nsn, ""),
            ("+49" + nsn, ""),
            ("00" + nsn, "0"),
            ("00049" + nsn, "0"),
        ]
        if nsn.startswith("89") and not nsn.startswith(("800", "801")):
            out += [(nsn[2:], ""), ("0" + nsn[2:], "0")]
        return out
    return [("00" + cc + nsn, ""), ("+" + cc + nsn, ""), ("000" + cc + nsn, "0")]


calls: list[tuple[str, str, str, str]] = []


def call(cc: str, nsn: str, expected: str, n: int = 1) -> None:
    opts = deliveries(cc, nsn)
    for number, amt in R.sample(opts, min(n, len(opts))):
        calls.append((R.choice(["in", "in", "out"]), number, amt, expected))


companies: list[list[str]] = []
persons: list[list[str]] = []
did_cos: list[tuple[int, str, str, str, set[str], str]] = []  # id, cc, area, base, exts, name
plain_cos: list[tuple[int, str, str, str]] = []  # id, area or cc, number, name ("foreign")


def co_name() -> str:
    return f"{R.choice(LAST)} {R.choice(KIND)} {R.choice(FORM)}"


def person(company: str, phone: str, mobile: str) -> int:
    pid = len(persons) + 1
    persons.append([str(pid), R.choice(FIRST), R.choice(LAST), company, phone, mobile])
    return pid


def maybe_mobile(numbers: list[tuple[str, str]]) -> str:
    if R.random() < 0.35:
        ac, sub = new_de("mobile")
        numbers.append(("49", ac + sub))
        return w_mobile(ac, sub)
    return ""


def new_ext(used: set[str], tries: int = 1_000_000) -> str | None:
    """An extension that is neither a prefix of nor prefixed by one already in use there."""
    for _ in range(tries):
        ext = str(R.randint(1, 9)) + "".join(str(R.randint(0, 9)) for _ in range(R.randint(0, 2)))
        if not any(u.startswith(ext) or ext.startswith(u) for u in used):
            used.add(ext)
            return ext
    return None


def new_foreign(cc: str, ac: str, pre: str, n: int) -> str:
    while True:
        nsn = ac + pre + digits(n) if cc != "1" else ac + str(R.randint(2, 9)) + digits(6)
        if free(cc, nsn):
            claim(cc, nsn)
            return nsn


def switchboard_companies() -> None:
    """German companies with a switchboard (-0) and direct dials; Austrian ones too."""
    for _ in range(55):
        cid = len(companies) + 1
        ac, base = new_de()
        name = co_name()
        fax = R.choice([f"0{ac} {base}-99", f"+49 {ac} {base}-99", "", f"Fax 0{ac} {base}-99"])
        companies.append([str(cid), name, w_switchboard_de(ac, base), fax])
        did_cos.append((cid, "49", ac, base, {"0", "99"}, name))
        call("49", ac + base + "0", f"erp_companies:{cid}", 2)
        if fax:
            call("49", ac + base + "99", f"erp_companies:{cid}", 1)
        if R.random() < 0.3:
            call("49", ac + base, f"erp_companies:{cid}", 1)
    for cc, ac, blen in FOREIGN_DID * 2:
        cid = len(companies) + 1
        while True:
            base = digits(blen)
            if free(cc, ac + base):
                claim(cc, ac + base)
                break
        name = co_name().replace("GmbH", "AG")
        companies.append([str(cid), name, w_foreign_did(cc, ac, base, "0"), ""])
        did_cos.append((cid, cc, ac, base, {"0"}, name))
        call(cc, ac + base + "0", f"erp_companies:{cid}", 2)


def plain_companies() -> None:
    """Companies with one plain main number (no direct dials), German and foreign."""
    for _ in range(40):
        cid = len(companies) + 1
        ac, sub = new_de()
        fax_ac, fax_sub = new_de(area=ac)
        fax = R.choice([w_plain_de(fax_ac, fax_sub), ""])
        name = co_name()
        companies.append([str(cid), name, w_plain_de(ac, sub), fax])
        plain_cos.append((cid, ac, sub, name))
        call("49", ac + sub, f"erp_companies:{cid}", 3)
        if fax:
            call("49", fax_ac + fax_sub, f"erp_companies:{cid}", 1)
    for cc, ac, pre, n in FOREIGN_PLAIN:
        cid = len(companies) + 1
        nsn = new_foreign(cc, ac, pre, n)
        companies.append([str(cid), co_name(), w_foreign_plain(cc, nsn), ""])
        plain_cos.append((cid, cc, nsn, "foreign"))
        call(cc, nsn, f"erp_companies:{cid}", 2)
    # Swiss companies, their main number sometimes written with a switchboard -0
    for ac, n in SWISS * 2:
        cid = len(companies) + 1
        nsn = new_foreign("41", ac, "", n)
        phone = R.choice(
            [f"+41 {ac} {nsn[2:]}-0", f"0041 {ac} {nsn[2:]} - 0", w_foreign_plain("41", nsn)]
        )
        companies.append([str(cid), co_name().replace("GmbH", "AG"), phone, ""])
        plain_cos.append((cid, "41", nsn, "foreign"))
        call("41", nsn, f"erp_companies:{cid}", 2)


def persons_at_switchboards() -> None:
    for cidx, cc, ac, base, used, name in did_cos:
        for _ in range(R.randint(1, 3)):
            ext = new_ext(used)
            assert ext is not None
            numbers: list[tuple[str, str]] = [(cc, ac + base + ext)]
            phone = w_did_de(ac, base, ext) if cc == "49" else w_foreign_did(cc, ac, base, ext)
            mobile = maybe_mobile(numbers)
            p = person(name, phone, mobile)
            for ncc, nsn in numbers:
                call(ncc, nsn, f"crm_persons:{p}", R.randint(1, 3))
        # a direct dial nobody in the CRM has: the company's switchboard must answer for it
        for _ in range(R.randint(2, 4)):
            ext = new_ext(used, tries=50)
            if ext is not None:
                call(cc, ac + base + ext, f"switchboard:erp_companies:{cidx}", 1)
        # a person whose only number is the switchboard: the company keeps its calls
        if R.random() < 0.35:
            sw = w_switchboard_de(ac, base) if cc == "49" else w_foreign_did(cc, ac, base, "0")
            person(name, sw, "")
            call(cc, ac + base + "0", f"erp_companies:{cidx}", 1)


def persons_at_plain_companies() -> None:
    """Some share the main number, some have their own line; abroad, non-dialable extensions."""
    names = {int(c[0]): c[1] for c in companies}
    for cidx, ac_or_cc, sub_or_nsn, name in plain_cos:
        if name == "foreign":
            cc, nsn = ac_or_cc, sub_or_nsn
            if cc in ("44", "1", "41"):  # the person never owns the main number
                ext = str(R.randint(10, 99))
                field = {
                    "44": f"+44 {nsn[:2]} {nsn[2:]} ext. {ext}",
                    "1": f"+1 ({nsn[:3]}) {nsn[3:6]}-{nsn[6:]} x{ext}",
                    "41": f"+41 {nsn[:2]} {nsn[2:]}-{ext}",
                }[cc]
                person(names[cidx], field, "")
                call(cc, nsn, f"erp_companies:{cidx}", 1)
            continue
        ac, sub = ac_or_cc, sub_or_nsn
        if R.random() < 0.5:
            person(name, w_plain_de(ac, sub), "")
            call("49", ac + sub, f"erp_companies:{cidx}", 1)
        for _ in range(R.randint(0, 2)):
            own_ac, own = new_de(area=ac)
            numbers = [("49", own_ac + own)]
            mobile = maybe_mobile(numbers)
            p = person(name, w_plain_de(own_ac, own), mobile)
            for ncc, nsn in numbers:
                call(ncc, nsn, f"crm_persons:{p}", R.randint(1, 3))


def two_numbers(numbers: list[tuple[str, str]]) -> str:
    ac, sub = new_de()
    mac, msub = new_de("mobile")
    numbers += [("49", ac + sub), ("49", mac + msub)]
    sep = R.choice([", ", " / ", " oder ", "; "])
    return f"0{ac} {sub}{sep}0{mac} {msub}"


def e123_alternate(numbers: list[tuple[str, str]]) -> str:
    """E.123 alternate number: the second shares the first one's area code."""
    ac, sub = new_de(lo=6, hi=7)
    while True:
        alt = sub[:-1] + str((int(sub[-1]) + 1) % 10)
        if free("49", ac + alt):
            claim("49", ac + alt)
            break
        ac, sub = new_de(lo=6, hi=7)
    numbers += [("49", ac + sub), ("49", ac + alt)]
    return f"0{ac} {sub} / {alt}"


def did_unknown_company(numbers: list[tuple[str, str]]) -> str:
    """A direct dial at a company the ERP does not know: its switchboard belongs to nobody."""
    ac, base = new_de()
    ext = str(R.randint(10, 99))
    numbers.append(("49", ac + base + ext))
    calls.append(("in", "0" + ac + base + "0", "", "NONE"))
    other = str((int(ext) + 1) % 90 + 10)
    calls.append(("in", "0" + ac + base + other, "", "NONE"))
    return w_did_de(ac, base, ext)


def other_persons() -> None:
    """Persons at companies that are not in the ERP, and private persons."""
    while len(persons) < 270:
        numbers: list[tuple[str, str]] = []
        kind = R.random()
        if kind < 0.45:
            ac, sub = new_de()
            numbers.append(("49", ac + sub))
            phone = R.choice([w_plain_de(ac, sub), "privat: " + w_plain_de(ac, sub)])
        elif kind < 0.6:
            phone = ""
        elif kind < 0.72:
            phone = two_numbers(numbers)
        elif kind < 0.8:
            phone = e123_alternate(numbers)
        elif kind < 0.9:
            phone = did_unknown_company(numbers)
        else:
            cc, ac, pre, n = R.choice(FOREIGN_PLAIN)
            nsn = new_foreign(cc, ac, pre, n)
            numbers.append((cc, nsn))
            phone = w_foreign_plain(cc, nsn)
        mobile = maybe_mobile(numbers)
        company = "" if R.random() < 0.5 else co_name()
        p = person(company, phone, mobile)
        for ncc, nsn in numbers:
            call(ncc, nsn, f"crm_persons:{p}", R.randint(1, 3))


TRAPS = [  # fields that are not phone numbers, and the number a careless reader would make
    ("Kd.-Nr. 471123", "89471123"),
    ("HRB 234567", "89234567"),
    ("80331 München", "8980331"),
    ("12.03.2024", "89120324"),
    ("Postfach 10 12 34", "89101234"),
    ("USt-IdNr. DE234567891", "89234567891"),
    ("unbekannt", None),
    ("-", None),
    ("?", None),
    ("siehe Zentrale", None),
    ("n/a", None),
    ("Dw. 22", "8922"),
    ("0221 / 8765048", None),
    ("Raum 2.14", None),
    ("keine", None),
]


def trap_persons() -> None:
    for field, bad in TRAPS:
        if field == "0221 / 8765048":
            if free("49", "2218765048"):
                claim("49", "2218765048")
                p = person("", field, "")
                call("49", "2218765048", f"crm_persons:{p}", 2)
                calls.append(("in", "08765048", "", "NONE"))  # the number the slash must not invent
                calls.append(("in", "098765048", "0", "NONE"))  # (0 = outside prefix)
            continue
        person(R.choice(["", co_name()]), field, "")
        if bad and free("49", bad):
            calls.append(("in", "0" + bad, "", "NONE"))
            if bad.startswith("89"):
                calls.append(("in", bad[2:], "", "NONE"))
    while len(persons) < 300:
        person(co_name(), "", R.choice(["", "-", "0"]))


def nobody_calls() -> None:
    foreign = [*FOREIGN_PLAIN, ("41", "31", "", 7), ("43", "1", "", 7)]
    while sum(1 for c in calls if c[3] == "NONE") < 330:
        kind = R.random()
        if kind < 0.5:
            ac, sub = new_de()
            cc, nsn = "49", ac + sub
        elif kind < 0.75:
            ac, sub = new_de("mobile")
            cc, nsn = "49", ac + sub
        else:
            cc, ac, pre, n = R.choice(foreign)
            nsn = ac + pre + digits(n) if cc != "1" else ac + str(R.randint(2, 9)) + digits(6)
            if not free(cc, nsn):
                continue
            claim(cc, nsn)
        call(cc, nsn, "NONE", 1)


def write() -> None:
    with (HERE / "crm_persons.csv").open("w", encoding="utf-8", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["id", "first_name", "last_name", "company", "phone", "mobile"])
        wr.writerows(persons)
    with (HERE / "erp_companies.csv").open("w", encoding="utf-8", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["id", "name", "phone", "fax"])
        wr.writerows(companies)
    with (HERE / "calls.tsv").open("w", encoding="utf-8", newline="") as f:
        f.write("direction\tnumber\tamtsholung\texpected\n")
        for c in calls:
            f.write("\t".join(c) + "\n")


def main() -> None:
    switchboard_companies()
    plain_companies()
    persons_at_switchboards()
    persons_at_plain_companies()
    other_persons()
    trap_persons()
    nobody_calls()
    R.shuffle(calls)
    write()
    kinds: dict[str, int] = {}
    for c in calls:
        k = "switchboard" if c[3].startswith("switchboard") else c[3].split(":")[0]
        kinds[k] = kinds.get(k, 0) + 1
    print(f"{len(persons)} persons, {len(companies)} companies, {len(calls)} calls: {kinds}")


if __name__ == "__main__":
    main()
