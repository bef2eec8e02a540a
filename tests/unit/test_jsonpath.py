"""The http source's path syntax (shared/jsonpath.py) and the URL redaction its messages use."""

from __future__ import annotations

import re

import pytest

from cti_journal.shared.jsonpath import JsonPath, text_of
from cti_journal.shared.secrets import redact_url

REPLY = {
    "value": [
        {"id": 7, "name": {"first": "Anna"}, "phones": [{"n": "089 1"}, {"n": None}, {"n": 42}]},
        {"id": "x8", "name": None, "phones": []},
    ],
    "@odata.nextLink": "https://crm/api?$skip=2",
}


@pytest.mark.parametrize(
    ("path", "values"),
    [
        ("value[*].id", [7, "x8"]),
        ("value[0].name.first", ["Anna"]),
        ("value[-1].id", ["x8"]),
        ("value[5].id", []),
        ("value[*].name.first", ["Anna"]),  # null and a missing name give nothing
        ("value[0].phones[*].n", ["089 1", 42]),
        ('["@odata.nextLink"]', ["https://crm/api?$skip=2"]),
        ("value.id", []),  # a list where an object was expected
        ("", [REPLY]),
    ],
)
def test_paths_reach_what_they_name(path: str, values: list[object]) -> None:
    assert list(JsonPath.parse(path).values(REPLY)) == values


@pytest.mark.parametrize("path", ["a..b", "a[x]", ".a", "a.", "a[*", 'a["b]', "a b[1]x"])
def test_bad_paths_are_refused_with_the_place(path: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(path)) + ".* at "):
        JsonPath.parse(path)


def test_scalars_become_field_text() -> None:
    assert [text_of(v) for v in (" 089 1 ", 4989123, 1.0, 2.5, True, None, {"a": 1})] == [
        "089 1", "4989123", "1", "2.5", "true", "", "",
    ]  # fmt: skip


def test_urls_lose_passwords_and_credential_parameters() -> None:
    assert (
        redact_url("https://u:pw@crm:8443/api?page=2&api_key=k1&access_token=t&sig=s")
        == "https://u:***@crm:8443/api?page=2&api_key=***&access_token=***&sig=***"
    )
    assert redact_url("https://crm/api/contacts") == "https://crm/api/contacts"
