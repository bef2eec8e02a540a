"""How to reach one broker URL: pika's connection parameters (heartbeat, TLS, a connection name
the management UI shows) and the URL's redacted form for logs and errors."""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

import pika

from cti_journal.shared.config import BrokerSettings
from cti_journal.shared.secrets import redact_url


def redact(url: str) -> str:
    """The URL without its password or any secret query option, for logs and errors."""
    return redact_url(url)


def connection_parameters(url: str, broker: BrokerSettings, name: str) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.heartbeat = broker.heartbeat_s
    params.blocked_connection_timeout = None  # blocked = backpressure, not failure
    params.connection_attempts = 1
    params.socket_timeout = 10
    params.client_properties = {"connection_name": f"cti-journal {name} on {socket.gethostname()}"}
    if url.startswith("amqps://"):
        context = ssl.create_default_context(cafile=broker.tls.ca_file or None)
        if broker.tls.cert_file:
            context.load_cert_chain(broker.tls.cert_file, broker.tls.key_file or None)
        host = broker.tls.server_name or urlsplit(url).hostname
        params.ssl_options = pika.SSLOptions(context, server_hostname=host)
    return params
