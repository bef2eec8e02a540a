"""Write notations.tsv: contact phone fields as people type them, and what each one means.

Standalone, stdlib only; it does not import or run any project code and never parses a field:
every `expected` is built from the parts (country code, area code, subscriber, extension) that
the field was written from, or written by hand for the rows that are not numbers. The rules
for `expected` are in README.md next to this file. Context: the company is in Munich (DE, 089).

    python3 tests/corpus/make_notations.py   # rewrites tests/corpus/notations.tsv
"""

from __future__ import annotations

import collections
import pathlib

OUT = pathlib.Path(__file__).with_name("notations.tsv")

# --- sources (cited in README.md) ---------------------------------------------------------------
DIN = "DIN 5008:2020 Telefonnummern, as summarised at https://din-5008-richtlinien.de/startseite/telefonnummern"
DIN_DW = "DIN 5008 Durchwahl mit Bindestrich, https://www.sekretaria.de/bueroorganisation/korrespondenz/din-5008/telefonnummern/"
DIN_INT = "DIN 5008 Auslandskorrespondenz (+49, 0 entfällt), http://deutsche-rechtschreibung.org/nachschlagen/din-5008-telefonnummern.php"
DIN_SVC = "DIN 5008 Sondernummern (0180 2 123456), https://webdesign-heger.de/telefonnummern-richtig-gliedern/"
DIN_ZENTRALE = "-0 = Zentrale, -99 = Fax, https://www.wp-wissen.de/telefonnummer/"
OLD = "pre-2001 German habit (Klammern, Schrägstrich, Zweiergruppen), https://www.vorwahl-nummern.de/fundgrube/schreibweise_nummern_zahlen.php"
E123_NAT = "ITU-T E.123 (02/2001) national notation with parentheses, https://wiki.munthe.me/content/wikipedia_en_all_maxi_2025-08/E.123"
E123_INT = "ITU-T E.123 (02/2001) international notation, https://wiki.munthe.me/content/wikipedia_en_all_maxi_2025-08/E.123"
E123_ALT = "ITU-T E.123 slash for alternate numbers, http://www.aa-asterisk.org.uk/index.php/E.123"
E123_DID = "ITU-T E.123 DID extension written after the number (+49 69 123456 70), http://www.ferebee.net/2010/07/wie-schreibe-ich-meine-telefonnummer/"
NULL_PAREN = (
    "(0) after the country code, common but not DIN, https://lectorare.de/faq-items/telefonnummer"
)
NULL_PAREN_CH = (
    "(0) after the country code (AT/CH habit), https://fuerstentum.net/blog/die-null-des-grauens"
)
FEREBEE = "common mistakes 0049, ++49, +49 069, http://www.ferebee.net/2010/07/wie-schreibe-ich-meine-telefonnummer/"
LPN_EXT = "libphonenumber PhoneNumberUtilTest.testParseExtensions"
LPN_EXT_LONG = "libphonenumber PhoneNumberUtilTest.testParseHandlesLongExtensionsWithExplicitLabels"
LPN_DE = "libphonenumber PhoneNumberUtilTest.testFormatDENumber (030/1234, +49 30/1234)"
LPN_IT = "libphonenumber PhoneNumberUtilTest.testFormatITNumber (leading 0 kept: +39 02 3661 8300)"
LPN_INTL = "libphonenumber PhoneNumberUtilTest.testParseWithInternationalPrefixes (++1, 1-650-...)"
LPN_NAT = "libphonenumber PhoneNumberUtilTest.testParseNationalNumber (tel: with phone-context)"
RFC3966 = (
    "RFC 3966 §3 tel URI syntax, visual separators and ;ext=, https://rfc-editor.org/rfc/rfc3966"
)
RFC3966_CTX = "RFC 3966 §5.1.5 local numbers with phone-context, https://rfc-editor.org/rfc/rfc3966"
VCARD = "RFC 6350 §6.4.1 TEL value tel:+1-555-555-5555;ext=5555 (seen in https://github.com/bitfireAT/synctools/issues/346)"
FASTMAIL = "Fastmail stores extensions as +15551234567;5678, https://github.com/bitfireAT/synctools/issues/346"
MS_CANON = "Microsoft canonical phone format +49 (89) 1234567, http://www.paraguay-homepage.de/thema/telefonnummern-laendervorwahl"
OUTLOOK = "Outlook contact CSV fields (Business Phone, Company Main Phone), https://www.spstechnical.com/outlook_contacts_schema.htm"
CRM_DE = "German CRM/address data habit (Dw., App., Nst., Durchwahl), https://de.wiki.li/Rufnummer"
LABEL = (
    "labels in German contact fields (Tel.:, Mobil:), https://lectorare.de/faq-items/telefonnummer"
)
LOCAL = "local subscriber number alone = own area code 089 (project context, issue 9)"
RULE = "issue 9 rule: never invent a number (miss is acceptable, wrong number is not)"
NBSP = "DIN 5008 geschütztes Leerzeichen / geschützter Bindestrich, https://www.sekretaria.de/bueroorganisation/korrespondenz/din-5008/telefonnummern/"

rows: list[tuple[str, str, str, str]] = []  # field, expected, source, convention


def add(conv: str, field: str, expected: str, source: str) -> None:
    assert "\t" not in field and field == field.strip(), field
    rows.append((field, expected, source, conv))


def e(cc: str, nsn: str, ext: str | None = None) -> str:
    """Expected item from its parts: +CC NSN [~EXT]."""
    return f"+{cc}{nsn}" + (f"~{ext}" if ext is not None else "")


def groups2(s: str) -> str:
    """Old German habit: groups of two from the right (12 34 56, 1 23 45 67)."""
    out: list[str] = []
    while s:
        out.insert(0, s[-2:])
        s = s[:-2]
    return " ".join(out)


# German geographic numbers: (area code without 0, subscriber)
DE_PLAIN = [
    ("30", "8765432"),
    ("40", "42893100"),
    ("221", "8765048"),
    ("69", "7593810"),
    ("89", "5432170"),
    ("711", "2205470"),
    ("511", "1234567"),
    ("211", "4369220"),
    ("33204", "61234"),
    ("7191", "345678"),
    ("4131", "762345"),
    ("9123", "98765"),
    ("8025", "28731"),
    ("351", "4567890"),
    ("341", "2256780"),
    ("911", "3312456"),
    ("228", "9876543"),
    ("421", "3609710"),
]
# Company bases with DID: (area code, base, extension)
DE_DID = [
    ("30", "3295523", "29"),
    ("30", "12345", "67"),
    ("40", "303980", "115"),
    ("221", "94760", "123"),
    ("89", "61382", "17"),
    ("89", "4711230", "8"),
    ("69", "2722", "4410"),
    ("711", "96610", "32"),
    ("351", "873640", "202"),
    ("33204", "4730", "12"),
    ("7191", "9071", "45"),
    ("911", "54021", "300"),
    ("341", "99580", "71"),
    ("4131", "75090", "19"),
]
MOBILE = [
    ("170", "1234567"),
    ("151", "23456789"),
    ("160", "9876543"),
    ("162", "3456789"),
    ("171", "2345678"),
    ("172", "9876543"),
    ("176", "23456789"),
    ("179", "5551234"),
    ("157", "71234567"),
    ("163", "5678901"),
]


def german_plain() -> None:
    for ac, sub in DE_PLAIN:
        x = e("49", ac + sub)
        add("din_national", f"0{ac} {sub}", x, DIN)
        add("din_international", f"+49 {ac} {sub}", x, DIN_INT)
    for ac, sub in DE_PLAIN[:8]:
        x = e("49", ac + sub)
        add("e123_national_parens", f"(0{ac}) {sub}", x, E123_NAT)
        add("legacy_slash", f"0{ac}/{sub}", x, OLD)
        add("legacy_slash", f"0{ac} / {sub}", x, OLD)
        add("legacy_groups", f"0{ac} {groups2(sub)}", x, OLD)
        add("dash_after_area_code", f"0{ac}-{sub}", x, OLD)
        add("international_00", f"0049 {ac} {sub}", x, FEREBEE)
    for ac, sub in DE_PLAIN[8:14]:
        x = e("49", ac + sub)
        add("e123_national_parens", f"(0{ac}) {groups2(sub)}", x, E123_NAT)
        add("legacy_slash", f"0{ac}/{groups2(sub)}", x, OLD)
        add("international_00", f"0049-{ac}-{sub}", x, FEREBEE)
        add("rfc3966_visual_separators", f"+49-{ac}-{sub}", x, RFC3966)
    for ac, sub in DE_PLAIN[:6]:
        x = e("49", ac + sub)
        add("country_code_paren_0", f"+49 (0){ac} {sub}", x, NULL_PAREN)
        add("country_code_paren_0", f"+49 (0) {ac} {sub}", x, NULL_PAREN)
        add("ms_canonical", f"+49 ({ac}) {sub}", x, MS_CANON)
        add("international_mistakes", f"+49 0{ac} {sub}", x, FEREBEE)
    for ac, sub in DE_PLAIN[6:10]:
        x = e("49", ac + sub)
        add("international_mistakes", f"++49 {ac} {sub}", x, LPN_INTL)
        add("international_mistakes", f"0049 (0){ac} {sub}", x, FEREBEE)
        add("ms_canonical", f"+49 ({ac}) {groups2(sub)}", x, MS_CANON)
        add("country_code_paren_0", f"+49(0){ac}-{sub}", x, NULL_PAREN)


def german_did() -> None:
    for ac, base, ext in DE_DID:
        x = e("49", ac + base, ext)
        add("din_did_hyphen", f"0{ac} {base}-{ext}", x, DIN_DW)
        add("din_did_hyphen", f"+49 {ac} {base}-{ext}", x, DIN)
    for ac, base, ext in DE_DID[:8]:
        x = e("49", ac + base, ext)
        add("did_hyphen_spaced", f"0{ac} {base} - {ext}", x, CRM_DE)
        add("legacy_slash_did", f"0{ac}/{base}-{ext}", x, OLD)
        add("e123_national_parens_did", f"(0{ac}) {base}-{ext}", x, E123_NAT)
        add("country_code_paren_0_did", f"+49 (0){ac} {base}-{ext}", x, NULL_PAREN)
    for ac, base, _ in DE_DID:
        z = e("49", ac + base, "0")
        add("switchboard_-0", f"0{ac} {base}-0", z, DIN_ZENTRALE)
    for ac, base, _ in DE_DID[:8]:
        z = e("49", ac + base, "0")
        add("switchboard_-0", f"+49 {ac} {base}-0", z, DIN_ZENTRALE)
        add("switchboard_-0", f"0{ac} {base} - 0", z, CRM_DE)
    for ac, base, _ in DE_DID[8:12]:
        z = e("49", ac + base, "0")
        add("switchboard_-0", f"0{ac} / {groups2(base)} - 0", z, OLD)
        add("switchboard_-0", f"+49 (0) {ac} {base}-0", z, NULL_PAREN)
        add("switchboard_-0", f"0{ac}-{base}-0", z, OLD)


def extension_words() -> None:
    words_de = [
        ("Dw.", CRM_DE),
        ("DW", CRM_DE),
        ("Durchwahl", CRM_DE),
        ("Durchwahl:", CRM_DE),
        ("App.", CRM_DE),
        ("Apparat", CRM_DE),
        ("Nst.", CRM_DE),
        ("Nebenstelle", CRM_DE),
        ("Dw", CRM_DE),
        ("Dw.:", CRM_DE),
        ("Durchw.", CRM_DE),
        ("App", CRM_DE),
    ]
    for i, (w, src) in enumerate(words_de):
        ac, base, ext = DE_DID[i % len(DE_DID)]
        x = e("49", ac + base, ext)
        add("ext_word_de", f"0{ac} {base} {w} {ext}", x, src)
        ac, base, ext = DE_DID[(i + 5) % len(DE_DID)]
        x = e("49", ac + base, ext)
        add("ext_word_de", f"+49 {ac} {base} {w} {ext}", x, src)
    words_en = [
        ("ext.", LPN_EXT),
        ("ext", LPN_EXT),
        ("x", LPN_EXT),
        ("X", LPN_EXT),
        ("#", LPN_EXT),
        ("extension", LPN_EXT_LONG),
        ("ext:", LPN_EXT),
        ("int.", LPN_EXT),
    ]
    for i, (w, src) in enumerate(words_en):
        ac, base, ext = DE_DID[(i + 2) % len(DE_DID)]
        x = e("49", ac + base, ext)
        sep = "" if w in ("x", "#") else " "
        add("ext_mark_en", f"+49 {ac} {base} {w}{sep}{ext}", x, src)
        if w in ("x", "X"):
            add("ext_mark_en", f"0{ac} {base}{w}{ext}", x, src)
    add("ext_word_de", "030 3295523 Dw. 29", e("49", "303295523", "29"), CRM_DE)
    add("ext_word_de", "+49 30 3295523 Dw. 29", e("49", "303295523", "29"), CRM_DE)
    add("ext_word_de", "030 3295523 Durchwahl 29", e("49", "303295523", "29"), CRM_DE)
    add("ext_word_de", "0221 94760, Durchwahl 123", e("49", "22194760", "123"), CRM_DE)
    add("ext_word_de", "0221 94760 (Dw. 123)", e("49", "22194760", "123"), CRM_DE)
    add("ext_word_de", "089 61382 App.17", e("49", "8961382", "17"), CRM_DE)
    add("ext_word_de", "089/61382 Nst 17", e("49", "8961382", "17"), CRM_DE)


def rfc_and_vcard() -> None:
    for ac, base, ext in DE_DID[:5]:
        add("rfc3966_tel_uri", f"tel:+49-{ac}-{base};ext={ext}", e("49", ac + base, ext), RFC3966)
        add("rfc3966_ext_no_scheme", f"+49-{ac}-{base};ext={ext}", e("49", ac + base, ext), LPN_EXT)
    for ac, sub in DE_PLAIN[:4]:
        add("rfc3966_tel_uri", f"tel:+49-{ac}-{sub}", e("49", ac + sub), RFC3966)
        add(
            "rfc3966_phone_context",
            f"tel:{sub};phone-context=+49-{ac}",
            e("49", ac + sub),
            RFC3966_CTX,
        )
    add("rfc3966_tel_uri", "tel:+49-30-1234567;ext=22", e("49", "301234567", "22"), RFC3966)
    add("rfc3966_tel_uri", "tel:+41-31-7901242;ext=22", e("41", "317901242", "22"), RFC3966)
    add(
        "rfc3966_phone_context",
        "tel:0221-8765048;phone-context=+49",
        e("49", "2218765048"),
        LPN_NAT,
    )
    add("vcard_tel", "tel:+1-212-555-0123;ext=45", e("1", "2125550123", "45"), VCARD)
    add("vcard_tel", "tel:+49-89-4711230;ext=8", e("49", "894711230", "8"), VCARD)
    add("vcard_tel", "+12125550123;45", e("1", "2125550123", "45"), FASTMAIL)
    add("vcard_tel", "+4930329552329", e("49", "30329552329"), VCARD)
    add("vcard_tel", "tel:+493012345", e("49", "3012345"), VCARD)


def e123_did_space() -> None:
    # E.123: a DID extension written after the number with a space. The field alone cannot tell
    # an extension from a digit group, so it means the whole dialable number, no switchboard base.
    add("e123_did_space", "+49 69 272244 10", e("49", "6927224410"), E123_DID)
    add("e123_did_space", "030 3295523 29", e("49", "30329552329"), E123_DID)
    add("e123_did_space", "+49 30 12345 67", e("49", "301234567"), E123_DID)
    add("e123_did_space", "0221 94760 123", e("49", "22194760123"), E123_DID)
    add("e123_did_space", "+49 711 96610 32", e("49", "7119661032"), E123_DID)


def mobiles() -> None:
    for pre, sub in MOBILE:
        x = e("49", pre + sub)
        add("mobile", f"0{pre} {sub}", x, DIN)
        add("mobile", f"+49 {pre} {sub}", x, DIN_INT)
    for pre, sub in MOBILE[:5]:
        x = e("49", pre + sub)
        add("mobile", f"0{pre}/{sub}", x, OLD)
        add("mobile", f"0{pre}-{sub}", x, OLD)
        add("mobile", f"+49 (0){pre} {sub}", x, NULL_PAREN)
    for pre, sub in MOBILE[5:]:
        x = e("49", pre + sub)
        add(
            "mobile",
            f"0{pre} {sub[:3]} {sub[3:5]} {sub[5:]}",
            x,
            "digit groups in mobiles, https://www.wp-wissen.de/telefonnummer/",
        )
        add("mobile", f"(0{pre}) {sub}", x, E123_NAT)
        add("mobile", f"0049{pre}{sub}", x, FEREBEE)


def services() -> None:
    add(
        "service",
        "0800 1234567",
        e("49", "8001234567"),
        "DIN 5008 (0800 123456), http://buerojob-blog.de/2012/10/10/din-5008-die-telefonnummer/",
    )
    add("service", "0800 123 45 67", e("49", "8001234567"), DIN_SVC)
    add("service", "+49 800 1234567", e("49", "8001234567"), DIN_INT)
    add("service", "0180 5 123456", e("49", "1805123456"), DIN_SVC)
    add("service", "01805 123456", e("49", "1805123456"), DIN_SVC)
    add("service", "0180 2 654321", e("49", "1802654321"), DIN_SVC)
    add("service", "01802-654321", e("49", "1802654321"), OLD)
    add(
        "service",
        "0900 1 234567",
        e("49", "9001234567"),
        "DIN 5008 (0900 5 123456), https://www.vorwahl-nummern.de/fundgrube/schreibweise_nummern_zahlen.php",
    )
    add("service", "0800 330 1000", e("49", "8003301000"), DIN_SVC)
    add("service", "0180 6 112233", e("49", "1806112233"), DIN_SVC)


def local_alone() -> None:
    add("local_alone", "123456", e("49", "89123456"), LOCAL)
    add("local_alone", "5432170", e("49", "895432170"), LOCAL)
    add("local_alone", "54 32 170", e("49", "895432170"), LOCAL)
    add("local_alone", "12 34 56", e("49", "89123456"), LOCAL)
    add("local_alone", "Tel. 4711230", e("49", "894711230"), LOCAL)
    add("local_alone", "61382-17", e("49", "8961382", "17"), LOCAL)
    add("local_alone", "4711230-0", e("49", "894711230", "0"), LOCAL)
    add("local_alone", "29080500", e("49", "8929080500"), LOCAL)
    add("local_alone", "2908 0500", e("49", "8929080500"), LOCAL)
    add("local_alone", "61382 Dw. 17", e("49", "8961382", "17"), LOCAL)


def labels() -> None:
    label_rows = [
        ("Tel.: 089 5432170", e("49", "895432170")),
        ("Tel. 089 5432170", e("49", "895432170")),
        ("Telefon: 030 8765432", e("49", "308765432")),
        ("Telefon 0221 8765048", e("49", "2218765048")),
        ("Tel 040 42893100", e("49", "4042893100")),
        ("Fon: +49 69 7593810", e("49", "697593810")),
        ("Phone: +49 711 2205470", e("49", "7112205470")),
        ("Handy: 0171 2345678", e("49", "1712345678")),
        ("Handy 0151 23456789", e("49", "15123456789")),
        ("Mobil: 0176 23456789", e("49", "17623456789")),
        ("mobil 0160 9876543", e("49", "1609876543")),
        ("Mobile: +49 172 9876543", e("49", "1729876543")),
        ("Zentrale: 089 4711230-0", e("49", "894711230", "0")),
        ("Zentrale 030 12345-0", e("49", "3012345", "0")),
        ("privat: 089 29080500", e("49", "8929080500")),
        ("privat 0911 3312456", e("49", "9113312456")),
        ("Fax: 089 4711230-99", e("49", "894711230", "99")),
        ("Fax 0221 94760-199", e("49", "22194760", "199")),
        ("T: +49 351 873640-202", e("49", "351873640", "202")),
        ("Büro: 0341 99580-71", e("49", "34199580", "71")),
        ("geschäftl. 0228 9876543", e("49", "2289876543")),
        ("Tel.: (0421) 3609710", e("49", "4213609710")),
        ("Tel.:089/5432170", e("49", "895432170")),
        ("089 5432170 (Mo-Fr 9-12 Uhr)", e("49", "895432170")),
        ("0171 2345678 (nur abends)", e("49", "1712345678")),
    ]
    for f, x in label_rows:
        add("label", f, x, LABEL)


def several() -> None:
    several_rows = [
        ("089 123456 / 123457", "+4989123456 +4989123457", E123_ALT),
        ("030 8765432 / 8765433", "+49308765432 +49308765433", E123_ALT),
        ("0221 8765048 / 8765049", "+492218765048 +492218765049", E123_ALT),
        ("0171 2345678 / 2345679", "+491712345678 +491712345679", E123_ALT),
        ("030 8765432, 0170 1234567", "+49308765432 +491701234567", LABEL),
        ("089 5432170; 0151 23456789", "+49895432170 +4915123456789", LABEL),
        ("089 5432170 oder 0171 2345678", "+49895432170 +491712345678", LABEL),
        ("0911 3312456 od. 0160 9876543", "+499113312456 +491609876543", LABEL),
        ("089 5432170 / 0172 9876543", "+49895432170 +491729876543", E123_ALT),
        ("Tel. 040 42893100, Fax 040 42893199", "+494042893100 +494042893199", LABEL),
        ("Tel: 089 61382-17 Fax: 089 61382-99", "+498961382~17 +498961382~99", DIN_ZENTRALE),
        ("089 61382-17 / -18", "+498961382~17 +498961382~18", E123_ALT),
        ("030 12345-67, Zentrale -0", "+493012345~67 +493012345~0", DIN_ZENTRALE),
        ("0351 873640-202 oder -0", "+49351873640~202 +49351873640~0", DIN_ZENTRALE),
        ("Handy 0176 23456789, privat 089 29080500", "+4917623456789 +498929080500", LABEL),
        ("+49 30 8765432 / +49 171 2345678", "+49308765432 +491712345678", E123_ALT),
        ("0711 2205470 u. 0711 2205471", "+497112205470 +497112205471", LABEL),
        ("123456 / 123457", "+4989123456 +4989123457", LOCAL),
        ("089 5432170 und 0176 23456789", "+49895432170 +4917623456789", LABEL),
        ("+41 61 4889673 / +49 89 5432170", "+41614889673 +49895432170", E123_ALT),
        ("0341 2256780 - 0341 2256781", "+493412256780 +493412256781", LABEL),
    ]
    for f, x, s in several_rows:
        add("several_numbers", f, x, s)


def foreign() -> None:
    foreign_rows = [
        ("+41 31 7901242-22", e("41", "317901242", "22"), DIN),
        ("0041 61 4889673 - 0", e("41", "614889673", "0"), CRM_DE),
        ("+41 61 4889673", e("41", "614889673"), E123_INT),
        ("0041 61 488 96 73", e("41", "614889673"), E123_INT),
        ("+41 (0)61 4889673", e("41", "614889673"), NULL_PAREN_CH),
        ("+41 (0)44 234 56 78", e("41", "442345678"), NULL_PAREN_CH),
        ("+41 44 234 56 78", e("41", "442345678"), E123_INT),
        ("+41 31 7901242-0", e("41", "317901242", "0"), DIN_ZENTRALE),
        ("+43 1 53456-0", e("43", "153456", "0"), DIN_ZENTRALE),
        ("+43 1 53456-789", e("43", "153456", "789"), DIN),
        ("0043 1 53456 - 0", e("43", "153456", "0"), CRM_DE),
        ("+43 (0)662 874512", e("43", "662874512"), NULL_PAREN_CH),
        ("+43 662 874512", e("43", "662874512"), E123_INT),
        ("+43 664 1234567", e("43", "6641234567"), E123_INT),
        ("+44 20 7946 0958", e("44", "2079460958"), E123_INT),
        ("+44 (0)20 7946 0958", e("44", "2079460958"), NULL_PAREN),
        ("0044 20 7946 0958", e("44", "2079460958"), E123_INT),
        ("+44 20 7946 0958 ext. 123", e("44", "2079460958", "123"), LPN_EXT),
        ("+44 161 496 0123", e("44", "1614960123"), E123_INT),
        ("+1 (212) 555-0123 x45", e("1", "2125550123", "45"), LPN_EXT),
        ("+1 212-555-0123 ext. 45", e("1", "2125550123", "45"), LPN_EXT),
        ("+1 (212) 555-0123", e("1", "2125550123"), LPN_INTL),
        ("001 212 736 5000", e("1", "2127365000"), E123_INT),
        ("+1 212 736 5000 #45", e("1", "2127365000", "45"), LPN_EXT),
        ("+33 1 42 68 53 00", e("33", "142685300"), E123_INT),
        ("+33 (0)1 42 68 53 00", e("33", "142685300"), NULL_PAREN),
        ("0033 4 91 12 34 56", e("33", "491123456"), E123_INT),
        ("+33 6 12 34 56 78", e("33", "612345678"), E123_INT),
        ("+31 20 123 4567", e("31", "201234567"), E123_INT),
        ("+31 (0)20 1234567", e("31", "201234567"), NULL_PAREN),
        ("0031 6 12345678", e("31", "612345678"), E123_INT),
        ("+39 06 1234 5678", e("39", "0612345678"), LPN_IT),
        ("0039 02 1234 5678", e("39", "0212345678"), LPN_IT),
        ("+39 347 123 4567", e("39", "3471234567"), LPN_IT),
        (
            "+39 (0)6 1234 5678",
            "NONE",
            LPN_IT + "; (0) is part of the Italian number, reading ambiguous",
        ),
        ("+41-31-790 12 42", e("41", "317901242"), RFC3966),
    ]
    for f, x, s in foreign_rows:
        add("foreign", f, x, s)


def not_numbers() -> None:
    fields = [
        "12.03.2024",
        "03/2024",
        "2024-03-12",
        "80331 München",
        "D-80331 München",
        "KdNr 4711",
        "Kd.-Nr. 471123",
        "DE89 3704 0044 0532 0130 00",
        "IBAN DE02 1203 0000 0000 2020 51",
        "USt-IdNr. DE123456789",
        "HRB 123456",
        "Mo-Fr 8-17 Uhr",
        "unbekannt",
        "-",
        "n/a",
        "keine",
        "0",
        "000000",
        "?",
        "siehe Zentrale",
        "max.mustermann@example.com",
        "www.example.de",
        "Raum 2.14",
        "Postfach 10 12 34",
        "Dw. 22",
        "App. 212",
        "-22",
        "22",
        "x45",
    ]
    for f in fields:
        add("not_a_number", f, "NONE", RULE)


SHORT_ALT = "slash piece shorter than the number: ambiguous, left out (README rule 12)"


def invalid_or_ambiguous() -> None:
    pieces = [
        ("089 12", "area code with a 2-digit subscriber: not a number"),
        ("+49 30", "area code alone"),
        ("0221", "area code alone"),
        ("030-", "area code alone"),
        ("1234567890123456789", "too long for any reading"),
        ("49 89 5432170", "country code without + or 00: ambiguous"),
        ("01 42 68 53 00", "French national notation without country code: not a German number"),
        ("(212) 555-0123", "NANP national notation without country code: not a German number"),
        ("+49 999 123456", "no such German area code"),
        ("0999 12345", "no such German area code"),
        ("+1 (212) 555", "incomplete"),
        (
            "+49 89 5432170 / 57",
            SHORT_ALT,
        ),
        (
            "089 4711230 / 8",
            SHORT_ALT,
        ),
    ]
    for f, why in pieces:
        exp = "NONE"
        if f == "+49 89 5432170 / 57":
            exp = "+49895432170"
        if f == "089 4711230 / 8":
            exp = "+49894711230"
        add("invalid_or_ambiguous", f, exp, f"{RULE}: {why}")


def unicode_separators() -> None:
    nb, nbh, en = "\u00a0", "\u2011", "\u2013"
    add("unicode_separators", f"089{nb}5432170", e("49", "895432170"), NBSP)
    add("unicode_separators", f"+49{nb}30{nb}8765432", e("49", "308765432"), NBSP)
    add("unicode_separators", f"030{nb}12345{nbh}67", e("49", "3012345", "67"), NBSP)
    add("unicode_separators", f"+49 89 4711230{en}0", e("49", "894711230", "0"), DIN_ZENTRALE)
    add("unicode_separators", f"+49 89 61382{en}17", e("49", "8961382", "17"), DIN_ZENTRALE)
    add("unicode_separators", f"0221{nb}/{nb}8765048", e("49", "2218765048"), OLD)
    add(
        "unicode_separators",
        "＋49 89 5432170",
        e("49", "895432170"),
        "libphonenumber PhoneNumberUtilTest.testParseNonAscii (full-width plus)",
    )
    add(
        "unicode_separators",
        "０８９ ５４３２１７０",
        e("49", "895432170"),
        "libphonenumber PhoneNumberUtilTest.testParseNonAscii (full-width digits)",
    )


def issue_examples() -> None:
    add("legacy_slash", "0221 / 8765048", e("49", "2218765048"), OLD)
    add("legacy_slash", "089 / 12 34 56 - 0", e("49", "89123456", "0"), OLD)
    add("legacy_slash", "030/1234567", e("49", "301234567"), LPN_DE)
    add("legacy_slash", "+49 30/1234567", e("49", "301234567"), LPN_DE)
    add("din_did_hyphen", "030 12345-67", e("49", "3012345", "67"), DIN_DW)
    add("din_did_hyphen", "+49 30 12345-67", e("49", "3012345", "67"), DIN)
    add("e123_national_parens", "(030) 1234567", e("49", "301234567"), E123_NAT)
    add("e123_national_parens", "(0 89) 54 32 170", e("49", "895432170"), OLD)
    add("legacy_groups", "(05 11) 1 23 45 67", e("49", "5111234567"), OLD)
    add("legacy_groups", "05 11/1 23 45-67", e("49", "51112345", "67"), OLD)
    add("legacy_groups", "0 511.1 234 567", e("49", "5111234567"), OLD)
    add("legacy_groups", "0511.1234567", e("49", "5111234567"), OLD)
    add("country_code_paren_0", "+49 (0)30 1234567", e("49", "301234567"), NULL_PAREN)
    add("ms_canonical", "+49 (89) 1234567", e("49", "891234567"), MS_CANON)
    add("outlook_csv", "+49 (30) 12345-67", e("49", "3012345", "67"), OUTLOOK)
    add("outlook_csv", "+49 (89) 61382-0", e("49", "8961382", "0"), OUTLOOK)
    add("outlook_csv", "+49 (171) 2345678", e("49", "1712345678"), OUTLOOK)
    add("outlook_csv", "+49 (8025) 28731", e("49", "802528731"), OUTLOOK)
    add("outlook_csv", "+41 (61) 4889673", e("41", "614889673"), OUTLOOK)


def main() -> None:
    for f in (
        german_plain,
        german_did,
        extension_words,
        rfc_and_vcard,
        e123_did_space,
        mobiles,
        services,
        local_alone,
        labels,
        several,
        foreign,
        not_numbers,
        invalid_or_ambiguous,
        unicode_separators,
        issue_examples,
    ):
        f()
    seen: dict[str, str] = {}
    kept = []
    for field, exp, src, conv in rows:
        if field in seen:  # the same field from two conventions: keep the first, same meaning
            assert seen[field] == exp, f"{field!r} means {seen[field]} and {exp}"
            continue
        seen[field] = exp
        kept.append((field, exp, src, conv))
    rows[:] = kept
    lines = ["field\texpected\tsource"]
    for field, exp, src, _ in rows:
        lines.append(f"{field}\t{exp}\t{src}")
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    counts = collections.Counter(conv for *_, conv in rows)
    for conv, n in sorted(counts.items()):
        print(f"{n:4d}  {conv}")
    print(f"{len(rows):4d}  total")


if __name__ == "__main__":
    main()
