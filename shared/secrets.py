"""Secrets: what may be shown of a connection string or an AMQP URL, and which secret files and
keys are fit to be used.

A connection string is redacted by its *keys*, not by a fixed list of two names: every ODBC
driver has its own keywords that carry a secret (psqlODBC `Password` and libpq options in
`pqopt`, MariaDB `TLSKEYPWD`, the SQL Server driver's `KeystoreSecret` and `ClientKey`), and a
key is written in any case, with spaces around `=` and a `{...}` value that may hold `;`.
tests/unit/test_secrets.py checks the rule against the drivers' documented keyword lists.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Final
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from cti_journal.shared.errors import ConfigError

MASK: Final = "***"
# A key whose name contains one of these can carry a secret; `pqopt` passes libpq options
# (`password=`, `sslpassword=`) through psqlODBC, `auth` covers AccessToken-like extensions.
_SECRET_PARTS: Final = ("pass", "pwd", "secret", "token", "key", "credential", "pqopt")
# In a URL's query also signatures and session or auth parameters (`sig=`, `auth=`, `sessionid=`).
_URL_SECRET_PARTS: Final = ("sig", "auth", "session")
MIN_KEY_CHARS: Final = 32
MIN_KEY_DISTINCT: Final = 8


def is_secret_key(key: str) -> bool:
    name = re.sub(r"[\s_\-.]", "", key).lower()
    return any(part in name for part in _SECRET_PARTS)


def _secret_query_key(key: str) -> bool:
    name = key.lower()
    return is_secret_key(key) or name == "ssl_options" or any(p in name for p in _URL_SECRET_PARTS)


def redact_dsn(dsn: str) -> str:
    """The connection string with the value of every key that can carry a secret replaced by
    `***`; everything else as written."""
    out: list[str] = []
    pos, n = 0, len(dsn)
    while pos < n:
        eq = dsn.find("=", pos)
        semi = dsn.find(";", pos)
        if eq < 0 or (0 <= semi < eq):  # a part without `=`: keep it as it is
            end = n if semi < 0 else semi + 1
            out.append(dsn[pos:end])
            pos = end
            continue
        key = dsn[pos:eq]
        end = _value_end(dsn, eq + 1)
        value = dsn[eq + 1 : end]
        if is_secret_key(key):
            lead = value[: len(value) - len(value.lstrip())]
            value = lead + MASK
        out.append(f"{key}={value}")
        pos = end
    return "".join(out)


def _value_end(dsn: str, start: int) -> int:
    """Where a value ends: at the `;` after it, or after the `}` closing a braced value (ODBC
    writes a `}` inside braces as `}}`). An unclosed brace runs to the end."""
    i = start
    while i < len(dsn) and dsn[i] in " \t":
        i += 1
    if i < len(dsn) and dsn[i] == "{":
        i += 1
        while i < len(dsn):
            if dsn[i] == "}":
                if dsn[i + 1 : i + 2] == "}":
                    i += 2
                    continue
                i += 1
                break
            i += 1
        else:
            return len(dsn)
    semi = dsn.find(";", i)
    return len(dsn) if semi < 0 else semi


def redact_url(url: str) -> str:
    """A URL (AMQP, or a contact source's HTTP, CardDAV or LDAP URL) without its password and
    without the value of any query option that can carry a secret (`api_key`, `access_token`,
    `sig`; pika's `ssl_options` may hold a key file's password), for logs and errors."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return MASK  # not a URL we can take apart: show none of it
    netloc = parts.netloc
    if parts.password is not None or "@" in netloc:
        user = parts.username or ""
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{user}:{MASK}@{host}" + (f":{port}" if port else "")
        if parts.password is None:
            netloc = f"{user}@{host}" + (f":{port}" if port else "")
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        redacted = [(k, MASK if _secret_query_key(k) else v) for k, v in pairs]
        query = urlencode(redacted, safe="*", quote_via=quote)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


# -- secret files and keys ----------------------------------------------------------------------


def check_secret_file(where: str, path: str | Path) -> None:
    """A file holding a secret must not be readable by others, nor writable by anyone but its
    owner. Group read is allowed only for a group the process itself is in (the service's own
    group, Kubernetes' fsGroup with `defaultMode: 0440`): that group is the service."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ConfigError(where, f"cannot read {path}: {exc.strerror}") from exc
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o007:
        who = "others"
    elif mode & 0o030:
        who = "its group (write or execute)"
    elif mode & 0o040 and st.st_gid not in {os.getegid(), *os.getgroups()}:
        who = "a group this process is not in"
    else:
        return
    raise ConfigError(
        where,
        f"{path} holds a secret but has mode {mode:04o}, open to {who}: `chmod 600 {path}` "
        "(or 640 with the service's own group)",
    )


def check_key_strength(where: str, key: str) -> None:
    """A key too short or too uniform to be secret is refused: pseudonyms made with it could
    be reversed by trying every phone number."""
    if not key:
        return
    if len(key) < MIN_KEY_CHARS or len(set(key)) < MIN_KEY_DISTINCT:
        raise ConfigError(
            where,
            f"the key is not secret enough ({len(key)} characters, {len(set(key))} different; "
            f"need at least {MIN_KEY_CHARS} characters of random text): e.g. "
            "`head -c 32 /dev/urandom | base64 > /etc/cti-journal/pseudonym.key`",
        )


__all__ = [
    "MASK",
    "check_key_strength",
    "check_secret_file",
    "is_secret_key",
    "redact_dsn",
    "redact_url",
]
