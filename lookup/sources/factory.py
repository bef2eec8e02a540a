"""Settings → source: one line per `type`. Each type's module is imported only when a source of
that type is configured, so that a site without LDAP never loads an LDAP library."""

from __future__ import annotations

from cti_journal.lookup.sources.base import ContactSource
from cti_journal.shared.config import ContactSourceSettings
from cti_journal.shared.errors import ConfigError


def make_source(settings: ContactSourceSettings) -> ContactSource:
    kind = settings.type
    if kind == "odbc":
        from cti_journal.lookup.sources.odbc import OdbcContactSource

        return OdbcContactSource(settings)
    if kind == "file":
        from cti_journal.lookup.sources.files import FileContactSource

        return FileContactSource(settings)
    if kind == "http":
        from cti_journal.lookup.sources.http import HttpContactSource

        return HttpContactSource(settings)
    if kind == "ldap":
        from cti_journal.lookup.sources.ldap import LdapContactSource

        return LdapContactSource(settings)
    if kind == "carddav":
        from cti_journal.lookup.sources.carddav import CardDavContactSource

        return CardDavContactSource(settings)
    raise ConfigError(
        f"lookup.sources[{settings.name}].type", f"source type {kind!r} is not available"
    )
