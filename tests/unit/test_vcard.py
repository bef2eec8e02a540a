"""The vCard reader against the specifications' own examples (RFC 2426, RFC 6350, RFC 3966),
Apple's and old phones' export habits, and malformed or oversized input that must be skipped
and counted without stopping the load."""

from __future__ import annotations

from pathlib import Path

import pytest

from cti_journal.lookup.sources.vcard import VCardReader, tel_uri_text, vcard_rows
from cti_journal.shared.config import ContactSourceSettings

CORPUS = Path(__file__).parents[1] / "corpus" / "sources"

# RFC 6350 section 8, verbatim (CRLF line ends, folded as in the RFC).
RFC6350_EXAMPLE = (
    "BEGIN:VCARD\r\n"
    "VERSION:4.0\r\n"
    "FN:Simon Perreault\r\n"
    "N:Perreault;Simon;;;ing. jr,M.Sc.\r\n"
    "BDAY:--0203\r\n"
    "ANNIVERSARY:20090808T1430-0500\r\n"
    "GENDER:M\r\n"
    "LANG;PREF=1:fr\r\n"
    "LANG;PREF=2:en\r\n"
    "ORG;TYPE=work:Viagenie\r\n"
    "ADR;TYPE=work:;Suite D2-630;2875 Laurier;\r\n"
    " Quebec;QC;G1V 2M2;Canada\r\n"
    'TEL;VALUE=uri;TYPE="work,voice";PREF=1:tel:+1-418-656-9254;ext=102\r\n'
    'TEL;VALUE=uri;TYPE="work,cell,voice,video,text":tel:+1-418-262-6501\r\n'
    "EMAIL;TYPE=work:simon.perreault@viagenie.ca\r\n"
    "GEO;TYPE=work:geo:46.772673,-71.282945\r\n"
    "KEY;TYPE=work;VALUE=uri:\r\n"
    " http://www.viagenie.ca/simon.perreault/simon.asc\r\n"
    "TZ:-0500\r\n"
    "URL;TYPE=home:http://nomis80.org\r\n"
    "END:VCARD\r\n"
)

# RFC 2426 section 7, the second example (vCard 3.0, TYPE lists, folded NOTE-like lines).
RFC2426_EXAMPLE = (
    "BEGIN:vCard\r\n"
    "VERSION:3.0\r\n"
    "FN:Mr. John Q. Public\\, Esq.\r\n"
    "N:Stevenson;John;Philip,Paul;Dr.;Jr.,M.D.,A.C.P.\r\n"
    "NICKNAME:Robbie\r\n"
    "PHOTO;VALUE=uri:http://www.abc.com/pub/photos\r\n"
    " /jqpublic.gif\r\n"
    "BDAY:1996-04-15\r\n"
    "ADR;TYPE=dom,home,postal,parcel:;;123 Main\r\n"
    "  Street;Any Town;CA;91921-1234\r\n"
    "TEL;TYPE=work,voice,pref,msg:+1-213-555-1234\r\n"
    "ORG:ABC\\, Inc.;North American Division;Marketing\r\n"
    "UID:19950401-080045-40000F192713-0052\r\n"
    "END:vCard\r\n"
)


def read(text: str) -> tuple[list, VCardReader]:  # type: ignore[type-arg]
    reader = VCardReader()
    return list(reader.read_text(text)), reader


def test_rfc6350_example() -> None:
    (card,), reader = read(RFC6350_EXAMPLE)
    assert card.fn == "Simon Perreault"
    assert (card.family, card.given) == ("Perreault", "Simon")
    assert card.org == "Viagenie"
    assert [p.value for p in card.phones] == ["+1 418 656 9254-102", "+1 418 262 6501"]
    assert card.phones[0].types == ("work", "voice")
    assert card.phones[1].types == ("work", "cell", "voice", "video", "text")
    assert reader.skipped == 0


def test_rfc2426_example() -> None:
    (card,), _ = read(RFC2426_EXAMPLE)
    assert card.fn == "Mr. John Q. Public, Esq."
    assert card.org == "ABC, Inc."
    assert card.uid == "19950401-080045-40000F192713-0052"
    assert [p.value for p in card.phones] == ["+1-213-555-1234"]
    assert card.phones[0].types == ("work", "voice", "msg")


@pytest.mark.parametrize(
    ("uri", "text"),
    [
        ("tel:+49-89-4711;ext=215", "+49 89 4711-215"),  # RFC 3966 ext → a DIN 5008 direct dial
        ("tel:+1-201-555-0123", "+1 201 555 0123"),  # RFC 3966 section 6
        ("tel:7042;phone-context=example.com", "7042"),  # a local number stays local
        ("tel:863-1234;phone-context=+1-914-555", "+1 914 555 863 1234"),  # RFC 3966 section 6
        ("tel:%2B49%2089%20123456", "+49 89 123456"),  # percent-encoded
        ("sip:alice@example.com", ""),  # not a telephone number
        ("+49 89 123456", "+49 89 123456"),  # no scheme: as written
    ],
)
def test_tel_uri(uri: str, text: str) -> None:
    assert tel_uri_text(uri) == text


def test_unfolding_and_parameters() -> None:
    text = (
        "BEGIN:VCARD\nVERSION:4.0\nUID:u1\nFN:Anna\n  Berg\n"
        'TEL;TYPE="work";X-NOTE="a:b;c":089 1234\n\t5678\nEND:VCARD\n'
    )
    (card,), _ = read(text)
    assert card.fn == "Anna Berg"  # one space removed by unfolding, the other is content
    assert card.phones[0].value == "089 12345678"


def test_vobject_escaped_tel_uri() -> None:
    """Radicale (vobject) writes a uri value's `;` escaped: `tel:+49-89-4711\\;ext=215`."""
    text = "BEGIN:VCARD\nVERSION:4.0\nTEL;VALUE=uri:tel:+49-89-4711\\;ext=215\nEND:VCARD\n"
    (card,), _ = read(text)
    assert card.phones[0].value == "+49 89 4711-215"


def test_apple_group_label() -> None:
    text = (
        "BEGIN:VCARD\nVERSION:3.0\nFN:A\nitem1.TEL;type=pref:+49 89 1111\n"
        "item1.X-ABLabel:_$!<Other>!$_\nitem2.TEL:+49 89 2222\nitem2.X-ABLabel:Werk\n"
        "TEL;TYPE=CELL:0171 333\nEND:VCARD\n"
    )
    (card,), _ = read(text)
    assert [(p.value, p.label) for p in card.phones] == [
        ("+49 89 1111", "Other"),
        ("+49 89 2222", "Werk"),
        ("0171 333", ""),
    ]


def test_vcard21_quoted_printable_and_bare_types() -> None:
    text = (
        "BEGIN:VCARD\r\nVERSION:2.1\r\n"
        "N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:M=C3=BCller;J=C3=B6rg\r\n"
        "FN;ENCODING=QUOTED-PRINTABLE;CHARSET=ISO-8859-1:J=F6rg M=FCller, sehr lange =\r\n"
        "Zeile\r\n"
        "TEL;WORK;VOICE:089/1234-56\r\nTEL;CELL:0151/987\r\nEND:VCARD\r\n"
    )
    (card,), _ = read(text)
    assert (card.family, card.given) == ("Müller", "Jörg")
    assert card.fn == "Jörg Müller, sehr lange Zeile"
    assert [(p.value, p.types) for p in card.phones] == [
        ("089/1234-56", ("work", "voice")),
        ("0151/987", ("cell",)),
    ]


def test_name_from_n_without_fn() -> None:
    (card,), _ = read("BEGIN:VCARD\nVERSION:3.0\nN:Huber;Maria;;;\nEND:VCARD\n")
    assert card.name == "Maria Huber"


def test_malformed_cards_are_skipped_and_counted() -> None:
    good = "BEGIN:VCARD\nVERSION:3.0\nUID:{0}\nFN:{0}\nTEL:089 {0}\nEND:VCARD\n"
    text = (
        good.format(1)
        + "BEGIN:VCARD\nVERSION:3.0\nFN no colon here\nEND:VCARD\n"  # no ':'
        + good.format(2)
        + "BEGIN:VCARD\nVERSION:3.0\nN;CHARSET=nonsense;ENCODING=QUOTED-PRINTABLE:x\nEND:VCARD\n"
        + good.format(3)
        + "BEGIN:VCARD\nVERSION:3.0\nFN:cut off\n"  # no END
    )
    cards, reader = read(text)
    assert [c.uid for c in cards] == ["1", "2", "3"]
    assert reader.skipped == 3
    assert len(reader.problems) == 3
    assert "line 7" in reader.problems[0]


def test_size_bounds() -> None:
    reader = VCardReader(max_card_bytes=2000, max_line_bytes=100)
    photo = "PHOTO;ENCODING=b:" + "A" * 1500 + "\n"  # skipped property: not bounded by line
    big = "BEGIN:VCARD\nVERSION:3.0\nFN:big\n" + "NOTE:" + "x" * 3000 + "\nEND:VCARD\n"
    long_tel = "BEGIN:VCARD\nVERSION:3.0\nFN:t\nTEL:" + "1" * 200 + "\nEND:VCARD\n"
    fine = "BEGIN:VCARD\nVERSION:3.0\nFN:ok\n" + photo + "TEL:089 1\nEND:VCARD\n"
    cards = list(reader.read_text(big + long_tel + fine))
    assert [c.fn for c in cards] == ["ok"]
    assert reader.skipped == 2


def test_agent_card_inside_is_not_merged() -> None:
    text = (
        "BEGIN:VCARD\nVERSION:2.1\nFN:Boss\nTEL:089 1\nAGENT:\nBEGIN:VCARD\nVERSION:2.1\n"
        "FN:Assistant\nTEL:089 2\nEND:VCARD\nEND:VCARD\n"
    )
    (card,), _ = read(text)
    assert (card.fn, [p.value for p in card.phones]) == ("Boss", ["089 1"])


def test_cp1252_file_and_bom() -> None:
    data = "BEGIN:VCARD\r\nVERSION:2.1\r\nFN:Jörg\r\nEND:VCARD\r\n".encode("cp1252")
    reader = VCardReader()
    assert [c.fn for c in reader.read_bytes(data)] == ["Jörg"]
    bom = "\ufeffBEGIN:VCARD\nVERSION:4.0\nFN:Zoë\nEND:VCARD\n".encode()
    assert [c.fn for c in reader.read_bytes(bom)] == ["Zoë"]


def test_rows_and_ids() -> None:
    settings = ContactSourceSettings(name="export", dsn="")
    text = "BEGIN:VCARD\nVERSION:3.0\nFN:a\nEND:VCARD\nBEGIN:VCARD\nUID:x\nFN:b\nEND:VCARD\n"
    rows = list(vcard_rows(text, settings))
    assert [r.record_id for r in rows] == ["card:1", "x"]
    with pytest.raises(ValueError, match="no BEGIN:VCARD"):
        list(vcard_rows("name,phone\nA,089 1\n", settings))


def test_corpus_export_file() -> None:
    """The independent corpus (tests/corpus/sources, written from the specs): every card read,
    the vCard 2.1 one included, the ext= and the item1 label as described in its README."""
    reader = VCardReader()
    cards = list(reader.read_bytes((CORPUS / "export.vcf").read_bytes(), "export.vcf"))
    assert (len(cards), reader.skipped) == (7, 0)
    assert all(c.uid.startswith("urn:uuid:") for c in cards)
    by_name = {c.fn: c for c in cards}
    assert by_name["Valentin Schäfer"].org == "Kessler & Söhne KG"
    nextcloud = [
        card
        for path in sorted((CORPUS / "carddav").glob("*.vcf"))
        for card in reader.read_bytes(path.read_bytes(), path.name)
    ]
    assert reader.skipped == 0
    berger = next(c for c in nextcloud if c.fn == "Johanna Berger")
    assert berger.phones[0].value == "+49 89 4711-215"
    assert [p.label for p in by_name["Matthias Hölzl"].phones] == ["", "", "Other"]
