"""Pure parts of the ldap source: objectGUID's registry form, the change filter and token."""

from __future__ import annotations

import base64

from cti_journal.lookup.sources.ldap import (
    _later,
    _since_filter,
    decode_token,
    encode_token,
    record_id,
)


def test_object_guid_in_the_form_ad_shows_it() -> None:
    # Microsoft's example GUID {00112233-4455-6677-8899-AABBCCDDEEFF} is stored with its first
    # three fields little-endian: 33 22 11 00 55 44 77 66 88 99 AA BB CC DD EE FF.
    raw = bytes.fromhex("33221100554477668899aabbccddeeff")
    assert record_id("CN=x", {"objectguid": [raw]}) == "00112233-4455-6677-8899-aabbccddeeff"
    # The corpus's P01 (ad.ldif): objectGUID:: 1WXxSAB79Ee4HvhvXIzBqw== is her entryUUID.
    p01 = base64.b64decode("1WXxSAB79Ee4HvhvXIzBqw==")
    assert record_id("CN=x", {"objectguid": [p01]}) == "48f165d5-7b00-47f4-b81e-f86f5c8cc1ab"


def test_record_id_falls_back_to_entry_uuid_then_dn() -> None:
    assert record_id("CN=x", {"entryuuid": [b"abc-1"]}) == "abc-1"
    assert record_id("CN=x,DC=y", {}) == "CN=x,DC=y"
    assert record_id("CN=x", {"uid": [b"jdoe"]}, "uid") == "jdoe"


def test_change_filter_and_token() -> None:
    assert _since_filter("(objectClass=person)", "uSNChanged", "4711") == (
        "(&(objectClass=person)(uSNChanged>=4711))"
    )
    assert _since_filter("objectClass=user", "modifyTimestamp", "20261101080000Z") == (
        "(&(objectClass=user)(modifyTimestamp>=20261101080000Z))"
    )
    assert _later("uSNChanged", "999", "1000") == "1000"  # numbers, not text
    assert _later("modifyTimestamp", "20261101080000Z", "20251231235959Z") == "20261101080000Z"
    token = encode_token("uSNChanged", "1000")
    assert decode_token(token) == ("uSNChanged", "1000")
    assert decode_token("garbage") is None and decode_token(None) is None
    assert encode_token("modifyTimestamp", "") is None
