"""Settings of the ldap and carddav source types: safe by default (TLS unless plain is asked for),
and every refusal names the source and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from cti_journal.shared.errors import ConfigError
from cti_journal.shared.loader import load_settings

AD = '[[lookup.sources]]\nname = "ad"\ntype = "ldap"\nbase_dn = "DC=example,DC=local"\n'
DAV = '[[lookup.sources]]\nname = "nc"\ntype = "carddav"\nusername = "cti"\n'


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "cti-journal.toml"
    path.write_text(text, encoding="utf-8")
    (tmp_path / "pw").write_text("secret\n")
    return load_settings(path, {})


@pytest.mark.parametrize(
    ("toml", "setting", "problem"),
    [
        (
            AD + 'url = "ldap://dc1"',
            "lookup.sources[ad].url",
            "ldap:// without start_tls is refused (the bind password would cross the network in "
            "the clear); use ldaps:// or start_tls = true, or allow_plain = true",
        ),
        (
            AD + 'url = "ldaps://dc1"\nstart_tls = true',
            "lookup.sources[ad].start_tls",
            "TLS already",
        ),
        (
            '[[lookup.sources]]\nname = "ad"\ntype = "ldap"\nurl = "ldaps://dc1"',
            "lookup.sources[ad].base_dn",
            "give the DN to search under",
        ),
        (
            AD + 'url = "ldaps://dc1"\nfilter = "objectClass=person"',
            "lookup.sources[ad].filter",
            "in parentheses",
        ),
        (AD + 'url = "ldaps://dc1"\nfilter = "(&(a=b)"', "lookup.sources[ad].filter", "unbalanced"),
        (
            AD + 'url = "ldaps://dc1"\nbind_dn = "CN=x"',
            "lookup.sources[ad].password_file",
            "give its password in a file",
        ),
        (
            AD + 'url = "ldaps://dc1"\nldap_page_size = 5000',
            "lookup.sources[ad].ldap_page_size",
            "1..1000",
        ),
        (
            AD + 'url = "ldaps://dc1"\nphone_attributes = ["tel phone"]',
            "lookup.sources[ad].phone_attributes",
            "no LDAP attribute name",
        ),
        (
            AD + 'url = "ldaps://dc1"\nusername = "x"',
            "lookup.sources[ad].username",
            "does not apply to type 'ldap'",
        ),
        (
            DAV + 'url = "http://cloud/dav/"',
            "lookup.sources[nc].url",
            "http:// is refused (the password would cross the network in the clear); use "
            "https://, or allow_plain = true",
        ),
        (
            DAV + 'url = "https://cloud/dav/"\nbase_dn = "x"',
            "lookup.sources[nc].base_dn",
            "does not apply to type 'carddav'",
        ),
    ],
)
def test_refused(tmp_path: Path, toml: str, setting: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, toml)
    assert info.value.setting == setting
    assert problem in info.value.problem


@pytest.mark.parametrize(
    "toml",
    [
        AD + 'url = "ldaps://dc1.example.local"',
        AD + 'url = "ldap://dc1"\nstart_tls = true',
        AD + 'url = "ldap://dc1"\nallow_plain = true',
        AD + 'url = "ldaps://dc1"\nbind_dn = "CN=r"\npassword_file = "{pw}"\n'
        'phone_attributes = ["telephoneNumber", "1.2.840.113556.1.4.721"]\nid_attribute = "uid"',
        DAV + 'url = "https://cloud/remote.php/dav/"\npassword_file = "{pw}"',
        DAV + 'url = "http://127.0.0.1:5232/"\nallow_plain = true',
    ],
)
def test_accepted(tmp_path: Path, toml: str) -> None:
    _load(tmp_path, toml.replace("{pw}", str(tmp_path / "pw")))
