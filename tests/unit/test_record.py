"""The wire format (shared/record.py): every field, both line formats, every rejection."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from cti_journal.shared.errors import BadInputError
from cti_journal.shared.record import FIELDS, MAX_LONG, LineFormat, canonical_field

BERLIN = LineFormat(timezone="Europe/Berlin")
JSON = LineFormat(kind="json", timezone="Europe/Berlin")

LINE = (
    "i;2026-07-15 14:30:00;CONN;+49891234567;Müller;ACME GmbH;100;200;42;Kontakte;"
    "5000;120;010xx;12;0\n"
)
VALUES = {
    "in_out": "i",
    "zeitpunkt": "2026-07-15 14:30:00",
    "verb_zustand": "CONN",
    "rufnummer": "+49891234567",
    "name": "Müller",
    "firma": "ACME GmbH",
    "lokale_rufnummer": "100",
    "weitergeleitet": "200",
    "datensatz_id": "42",
    "datensatz_tabelle": "Kontakte",
    "rufdauer_ms": 5000,
    "verbdauer_sec": 120,
    "lcr": "010xx",
    "gebuehren": 12,
    "amtsholung": "0",
    "utc": "2026-07-15T12:30:00Z",
}
EMPTY_OPTIONALS = {
    "rufnummer": "",
    "name": "",
    "firma": "",
    "lokale_rufnummer": "",
    "weitergeleitet": "",
    "datensatz_id": "",
    "datensatz_tabelle": "",
    "rufdauer_ms": None,
    "verbdauer_sec": None,
    "lcr": "",
    "gebuehren": None,
    "amtsholung": "",
}


def _line(**overrides: str) -> bytes:
    """LINE with some fields (by canonical name) replaced."""
    parts = LINE.rstrip("\n").split(";")
    for name, value in overrides.items():
        parts[FIELDS.index(name)] = value
    return (";".join(parts) + "\n").encode()


def _json(**obj: object) -> bytes:
    return orjson.dumps(obj) + b"\n"


def _reason(fmt: LineFormat, raw: bytes) -> str:
    with pytest.raises(BadInputError) as info:
        fmt.parse(raw)
    return str(info.value)


# -- delimited ---------------------------------------------------------------------------------
def test_delimited_every_field() -> None:
    parsed = BERLIN.parse(LINE.encode())
    assert parsed.values == VALUES
    assert parsed.explicit_id is None


def test_crlf_and_lf_parse_alike() -> None:
    assert BERLIN.parse(LINE.replace("\n", "\r\n").encode()) == BERLIN.parse(LINE.encode())


def test_no_line_terminator_parses_too() -> None:
    assert BERLIN.parse(LINE.rstrip("\n").encode()).values == VALUES


def test_utf8_bom_is_dropped() -> None:
    assert BERLIN.parse(b"\xef\xbb\xbf" + LINE.encode()).values == VALUES


def test_empty_optional_fields() -> None:
    parsed = BERLIN.parse(b"o;2026-01-15 08:00:00;BUSY;;;;;;;;;;;;\n")
    assert parsed.values == {
        "in_out": "o",
        "zeitpunkt": "2026-01-15 08:00:00",
        "verb_zustand": "BUSY",
        "utc": "2026-01-15T07:00:00Z",
        **EMPTY_OPTIONALS,
    }


def test_case_and_surrounding_spaces_are_normalised() -> None:
    parsed = BERLIN.parse(_line(In_Out=" I ", VerbZustand="ring", Name="  Müller  "))
    assert (parsed.values["in_out"], parsed.values["verb_zustand"]) == ("i", "RING")
    assert parsed.values["name"] == "Müller"


def test_csv_quoting_keeps_separator_and_quotes_inside_a_name() -> None:
    raw = _line(Name='"Müller; Meier ""Büro"""')
    assert BERLIN.parse(raw).values["name"] == 'Müller; Meier "Büro"'


def test_malformed_quoting_is_rejected() -> None:
    assert "malformed quoting" in _reason(BERLIN, _line(Name='"Müller"x"'))


def test_line_break_inside_quotes_is_rejected() -> None:
    raw = _line(Name='"Mül\rler"')
    assert _reason(BERLIN, raw) in (
        "a line break inside a quoted field",
        "field Name: control character",
    )


def test_configurable_separator() -> None:
    fmt = LineFormat(separator="|", timezone="Europe/Berlin")
    assert fmt.parse(LINE.replace(";", "|").encode()).values == VALUES
    # the default separator is then just a character of a field
    assert "15 fields separated by '|'" not in _reason(fmt, LINE.encode())
    assert _reason(fmt, LINE.encode()) == "1 fields separated by '|', expected 15"


def test_configurable_field_order_and_subset() -> None:
    fmt = LineFormat(
        fields=("Zeitpunkt", "In_Out", "VerbZustand", "Rufnummer", "Rufdauer_ms"),
        timezone="Europe/Berlin",
    )
    parsed = fmt.parse(b"2026-07-15 14:30:00;o;RING;0891234;4000\n")
    assert parsed.values == {
        **EMPTY_OPTIONALS,
        "in_out": "o",
        "zeitpunkt": "2026-07-15 14:30:00",
        "verb_zustand": "RING",
        "rufnummer": "0891234",
        "rufdauer_ms": 4000,
        "utc": "2026-07-15T12:30:00Z",
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fields": ("In_Out", "Zeitpunkt", "Nope")}, "unknown field names ['Nope']"),
        ({"fields": ("In_Out", "Zeitpunkt")}, "must contain VerbZustand"),
        ({"separator": ";;"}, "the separator must be one character"),
        ({"separator": '"'}, "the separator must be one character"),
        ({"separator": "\n"}, "the separator must be one character"),
    ],
)
def test_bad_format_settings(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        LineFormat(**kwargs)  # type: ignore[arg-type]


# -- json --------------------------------------------------------------------------------------
def test_json_every_field() -> None:
    obj = dict(zip(FIELDS, LINE.rstrip("\n").split(";"), strict=True))
    parsed = JSON.parse(orjson.dumps(obj) + b"\n")
    assert parsed.values == VALUES
    assert parsed.explicit_id is None


def test_json_journal_prefix_gebuehren_and_numbers() -> None:
    obj = {f"Journal_{name}": value for name, value in zip(FIELDS, LINE.split(";"), strict=True)}
    del obj["Journal_Gebühren"]
    obj["Journal_Gebuehren"] = 12
    obj["Journal_Rufdauer_ms"] = 5000
    obj["Journal_VerbDauer_sec"] = 120
    obj["Journal_Amtsholung"] = "0"
    obj["Journal_Something_Else"] = "ignored"
    assert JSON.parse(orjson.dumps(obj)).values == VALUES


def test_json_plain_gebuehren_and_null() -> None:
    parsed = JSON.parse(
        _json(
            In_Out="o", Zeitpunkt="2026-01-15 08:00:00", VerbZustand="CONN", Gebuehren=7, LCR=None
        )
    )
    assert parsed.values["gebuehren"] == 7
    assert parsed.values["lcr"] == ""
    assert parsed.values["utc"] == "2026-01-15T07:00:00Z"


def test_json_explicit_id() -> None:
    raw = _json(id="abc-123", In_Out="i", Zeitpunkt="2026-01-15 08:00:00", VerbZustand="RING")
    assert JSON.parse(raw).explicit_id == "abc-123"


@pytest.mark.parametrize("bad_id", ["", "x" * 65, 5, None, "a\x00b"])
def test_json_bad_explicit_id(bad_id: object) -> None:
    raw = _json(id=bad_id, In_Out="i", Zeitpunkt="2026-01-15 08:00:00", VerbZustand="RING")
    assert _reason(JSON, raw) == "field id: must be a string of 1 to 64 printable characters"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[1, 2]\n", "JSON line is not an object"),
        (b'"x"\n', "JSON line is not an object"),
        (b'{"In_Out": "i",\n', "not a JSON object"),
        (
            _json(In_Out="i", Zeitpunkt="2026-01-15 08:00:00", VerbZustand="RING", Name=5),
            "field Name: expected a string, got int",
        ),
        (
            _json(
                In_Out="i", Zeitpunkt="2026-01-15 08:00:00", VerbZustand="RING", Rufdauer_ms=True
            ),
            "field Rufdauer_ms: expected a string, got bool",
        ),
        (
            _json(In_Out="i", Zeitpunkt="2026-01-15 08:00:00", VerbZustand="RING", Gebuehren=-1),
            "field Gebühren: '-1' is not a whole number",
        ),
        (
            _json(In_Out="i", Zeitpunkt="2026-01-15 08:00:00", VerbZustand="RING", Name=["a"]),
            "field Name: expected a string, got list",
        ),
        (_json(In_Out="i", VerbZustand="RING"), "field Zeitpunkt: '' is not YYYY-MM-DD HH:MM:SS"),
    ],
)
def test_json_rejections(raw: bytes, reason: str) -> None:
    assert _reason(JSON, raw).startswith(reason)


def test_canonical_field() -> None:
    assert canonical_field("journal_gebuehren") == "Gebühren"
    assert canonical_field("JOURNAL_RUFNUMMER") == "Rufnummer"
    assert canonical_field(" Gebühren ") == "Gebühren"
    assert canonical_field("ZeitpunktNumerisch") is None


# -- rejections --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"i;2026-07-15 14:30:00;CONN\n", "3 fields separated by ';', expected 15"),
        (LINE.replace("\n", ";\n").encode(), "16 fields separated by ';', expected 15"),
        (_line(Zeitpunkt="2026-02-30 10:00:00"), "field Zeitpunkt: '2026-02-30 10:00:00': "),
        (_line(Zeitpunkt="2026-07-15 24:00:00"), "field Zeitpunkt: '2026-07-15 24:00:00': "),
        (_line(Zeitpunkt="15.07.2026 14:30"), "field Zeitpunkt: '15.07.2026 14:30' is not"),
        (_line(Zeitpunkt="2026-07-15T14:30:00"), "field Zeitpunkt: '2026-07-15T14:30:00' is not"),
        (_line(Rufdauer_ms="12a"), "field Rufdauer_ms: '12a' is not a whole number"),
        (_line(VerbDauer_sec="-5"), "field VerbDauer_sec: '-5' is not a whole number"),
        (_line(Gebühren="1.5"), "field Gebühren: '1.5' is not a whole number"),
        (_line(Gebühren="١٢"), "field Gebühren: '١٢' is not a whole number"),  # Arabic digits
        (_line(Rufdauer_ms=str(MAX_LONG + 1)), f"field Rufdauer_ms: {MAX_LONG + 1} exceeds"),
        (_line(In_Out="x"), "field In_Out: 'x', expected one of ['i', 'o']"),
        (_line(VerbZustand="HOLD"), "field VerbZustand: 'HOLD', expected one of"),
        (_line(Name="Mül\x00ler"), "field Name: control character"),
        (_line(Firma="A\x07B"), "field Firma: control character"),
        (_line(Rufnummer="089\x7f1"), "field Rufnummer: control character"),
        (_line(Zeitpunkt="0001-01-01 00:30:00"), "field Zeitpunkt: '0001-01-01 00:30:00' is out"),
        (b"\n", "empty line"),
        (b"\r\n", "empty line"),
        (b"   \r\n", "empty line"),
        (b"\xef\xbb\xbf\n", "empty line"),
        (b"", "empty line"),
        (LINE.encode()[:20] + b"\xff\xfe" + LINE.encode()[20:], "not valid utf-8 at byte 20: "),
        (LINE.encode("cp1252"), "not valid utf-8 at byte "),
    ],
)
def test_rejections(raw: bytes, reason: str) -> None:
    assert _reason(BERLIN, raw).startswith(reason)


def test_huge_number_is_bad_input_not_a_crash() -> None:
    # int() refuses strings of more than 4300 digits with ValueError
    assert _reason(BERLIN, _line(Rufdauer_ms="9" * 5000)).endswith(f"exceeds {MAX_LONG}")
    assert _reason(BERLIN, _line(Gebühren="1" + "0" * 10)).endswith(f"exceeds {MAX_LONG}")


def test_largest_long_is_accepted() -> None:
    values = BERLIN.parse(_line(Rufdauer_ms=str(MAX_LONG), Gebühren="0")).values
    assert (values["rufdauer_ms"], values["gebuehren"]) == (MAX_LONG, 0)


def test_leading_zeros_are_a_number() -> None:
    assert BERLIN.parse(_line(Rufdauer_ms="0" * 20 + "7")).values["rufdauer_ms"] == 7


def test_exact_size_limits_are_accepted() -> None:
    values = BERLIN.parse(_line(Name="N" * 255, Rufnummer="1" * 64, Amtsholung="0" * 8)).values
    assert (len(values["name"]), len(values["rufnummer"]), values["amtsholung"]) == (
        255,
        64,
        "00000000",
    )


def test_cp1252_source() -> None:
    fmt = LineFormat(encoding="cp1252", timezone="Europe/Berlin")
    raw = LINE.encode("cp1252")
    assert b"M\xfcller" in raw
    assert fmt.parse(raw).values == VALUES
    # the utf-8 bytes of Müller are valid cp1252 too, and decode to mojibake
    assert fmt.parse(LINE.encode()).values["name"] == "MÃ¼ller"
    # 0x81 is undefined in cp1252
    assert _reason(fmt, _line(Name="X").replace(b"X", b"\x81")).startswith(
        "not valid cp1252 at byte "
    )


# -- time zone ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("zeitpunkt", "utc"),
    [
        ("2026-07-15 14:30:00", "2026-07-15T12:30:00Z"),  # CEST, UTC+2
        ("2026-01-15 14:30:00", "2026-01-15T13:30:00Z"),  # CET, UTC+1
        ("2026-01-01 00:30:00", "2025-12-31T23:30:00Z"),  # across the year boundary
        ("2026-03-29 01:59:59", "2026-03-29T00:59:59Z"),  # last second of CET
        ("2026-03-29 03:00:00", "2026-03-29T01:00:00Z"),  # first second of CEST
        # the gap: 02:30 does not exist; read with the offset before the change (CET)
        ("2026-03-29 02:30:00", "2026-03-29T01:30:00Z"),
        # the fold: 02:30 exists twice; the first occurrence (CEST) is taken
        ("2026-10-25 02:30:00", "2026-10-25T00:30:00Z"),
        ("2026-10-25 03:00:00", "2026-10-25T02:00:00Z"),  # after the fold: CET
        ("2028-02-29 12:00:00", "2028-02-29T11:00:00Z"),  # leap day
    ],
)
def test_berlin_to_utc(zeitpunkt: str, utc: str) -> None:
    parsed = BERLIN.parse(_line(Zeitpunkt=zeitpunkt))
    assert parsed.values["zeitpunkt"] == zeitpunkt
    assert parsed.values["utc"] == utc


def test_other_zones() -> None:
    assert LineFormat(timezone="UTC").parse(LINE.encode()).values["utc"] == "2026-07-15T14:30:00Z"
    ny = LineFormat(timezone="America/New_York")
    assert ny.parse(LINE.encode()).values["utc"] == "2026-07-15T18:30:00Z"


def test_default_zone_is_the_machines(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        assert LineFormat().parse(LINE.encode()).values["utc"] == "2026-07-15T05:30:00Z"
    finally:
        monkeypatch.undo()
        time.tzset()


# -- formatting --------------------------------------------------------------------------------
def test_format_delimited_quotes_the_separator() -> None:
    values = {**VALUES, "name": "Müller; Meier", "rufdauer_ms": None}
    raw = BERLIN.format(values)
    assert raw == (
        b'i;2026-07-15 14:30:00;CONN;+49891234567;"M\xc3\xbcller; Meier";ACME GmbH;100;200;42;'
        b"Kontakte;;120;010xx;12;0\n"
    )
    assert BERLIN.parse(raw).values == values


def test_format_json_with_id() -> None:
    raw = JSON.format(VALUES, explicit_id="E-1")
    assert raw.endswith(b"\n")
    obj = orjson.loads(raw)
    assert obj["id"] == "E-1"
    assert obj["Gebühren"] == "12"
    parsed = JSON.parse(raw)
    assert (parsed.values, parsed.explicit_id) == (VALUES, "E-1")


@pytest.mark.parametrize(
    "fmt",
    [
        BERLIN,
        JSON,
        LineFormat(separator="\t", timezone="Europe/Berlin"),
        LineFormat(separator=",", encoding="cp1252", timezone="Europe/Berlin"),
        LineFormat(fields=tuple(reversed(FIELDS)), timezone="Europe/Berlin"),
    ],
    ids=["delimited", "json", "tab", "cp1252-comma", "reversed"],
)
def test_format_parse_round_trip(fmt: LineFormat) -> None:
    values = {**VALUES, "name": 'Ölbaum, "Der"; Süd', "verbdauer_sec": None}
    assert fmt.parse(fmt.format(values)).values == values


@pytest.mark.parametrize("value", ["M\x1f", "\x0bMüller", "A\x85B", "Firma\x0c", "M\r", "M\x00"])
def test_control_characters_that_strip_would_hide_are_rejected(value: str) -> None:
    fmt = LineFormat(timezone="Europe/Berlin")
    line = fmt.format({"in_out": "i", "zeitpunkt": "2026-11-25 10:00:00", "verb_zustand": "CONN",
                       "name": value})  # fmt: skip
    with pytest.raises(BadInputError, match="field Name: control character"):
        fmt.parse(line)


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe"])
def test_utc_is_right_on_every_minute_around_the_offset_changes(zone: str) -> None:
    """The UTC offset is looked up once per local minute and reused: it must still give what a
    direct conversion gives for every second around both changes of the year, in zones that
    change by an hour and by half an hour (Lord Howe), the repeated autumn hour included."""
    fmt = LineFormat(timezone=zone)
    tz = ZoneInfo(zone)
    changes = _transitions(tz, 2026)
    assert len(changes) == 2
    for change in changes:
        moment = change - timedelta(hours=2)
        while moment < change + timedelta(hours=2):
            text = moment.strftime("%Y-%m-%d %H:%M:%S")
            expected = moment.replace(tzinfo=tz).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            assert fmt._utc(text) == expected, text
            moment += timedelta(seconds=37)


def _transitions(tz: ZoneInfo, year: int) -> list[datetime]:
    """Local wall-clock times (naive) just after each offset change of `year`."""
    out: list[datetime] = []
    moment = datetime(year, 1, 1, tzinfo=UTC)
    offset = moment.astimezone(tz).utcoffset()
    while moment.year == year:
        moment += timedelta(minutes=30)
        now = moment.astimezone(tz).utcoffset()
        if now != offset:
            out.append(moment.astimezone(tz).replace(tzinfo=None))
            offset = now
    return out


@pytest.fixture
def machine_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """This process's local zone set to Europe/Berlin (TZ + tzset), and back afterwards; the
    per-minute offsets of the machine's zone are forgotten on both sides."""
    from cti_journal.shared import record

    zone = "Europe/Berlin"
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    record._OFFSETS.pop("", None)
    yield zone
    monkeypatch.undo()
    time.tzset()
    record._OFFSETS.pop("", None)


def test_the_machines_zone_gives_what_the_same_configured_zone_gives(machine_zone: str) -> None:
    """timezone = "" (the default) uses the machine's zone: the same instants as naming it,
    around both changes of the year, the spring-forward gap included (the offset from before the
    change), and a year-1 time is bad input, not a crash."""
    local, named = LineFormat(), LineFormat(timezone=machine_zone)
    for change in _transitions(ZoneInfo(machine_zone), 2026):
        moment = change - timedelta(hours=2)
        while moment < change + timedelta(hours=2):
            text = moment.strftime("%Y-%m-%d %H:%M:%S")
            assert local._utc(text) == named._utc(text), text
            moment += timedelta(seconds=53)
    for text in ("0001-01-01 00:30:00", "0001-01-01 23:59:59"):
        with pytest.raises(BadInputError, match="is out of range"):
            local.parse(_line(Zeitpunkt=text))


def test_long_text_fields_pass_the_gateway_the_writer_cuts_them_to_the_column() -> None:
    """No limit per field: only the line's length (gateway.max_line_bytes) is limited."""
    raw = _line(Name="N" * 3000, Firma="F" * 1000, Rufnummer="1" * 65, LCR="1" * 21,
                Amtsholung="0" * 9)  # fmt: skip
    values = BERLIN.parse(raw).values
    assert len(values["name"]) == 3000 and len(values["firma"]) == 1000
    assert values["rufnummer"] == "1" * 65 and values["amtsholung"] == "0" * 9


@pytest.mark.parametrize("fmt", [BERLIN, JSON])
def test_a_tab_inside_a_text_field_is_kept_as_a_space(fmt: LineFormat) -> None:
    values = {**VALUES, "name": "Müller\tHans", "firma": "\tACME\tGmbH\t"}
    parsed = fmt.parse(fmt.format(values)).values
    assert parsed["name"] == "Müller Hans"
    assert parsed["firma"] == "ACME GmbH"  # leading/trailing spaces stripped as always
