"""Contact sources: the protocol (base), one module per type (odbc, files, http, ldap, carddav),
the factory that picks one by `type`, and the holder that keeps the index fresh from them."""
