"""The listen source against the real broker: TLS, allowed networks, client limits, bad input."""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from cti_journal.gateway.sim_calls import generate_calls
from cti_journal.shared.record import LineFormat
from tests.harness import Pipeline, free_port, wait_for

pytestmark = pytest.mark.integration


def lookup_messages(pipeline: Pipeline) -> list[dict[str, object]]:
    return pipeline.entries("lookup", remove=True)


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def lines(count: int) -> bytes:
    fmt = LineFormat(timezone="Europe/Berlin")
    return b"".join(fmt.format(v) for v in generate_calls(5, count))


def start_listener(pipeline_factory, **gateway: object) -> tuple[Pipeline, int]:
    port = free_port()
    settings = {"gateway": {"source": "listen", "listen_port": port, "timezone": "Europe/Berlin",
                            "preenriched": "lookup", **gateway}}  # fmt: skip
    pipeline = pipeline_factory(settings)
    pipeline.start("gateway", "gateway")
    wait_for(lambda: "listening" in pipeline.log("gateway"), 30, "the listener")
    return pipeline, port


def test_tls_listener_accepts_tls_and_refuses_plain_tcp(pipeline_factory, tmp_path):
    cert, key = self_signed(tmp_path)
    pipeline, port = start_listener(
        pipeline_factory, tls_cert_file=str(cert), tls_key_file=str(key)
    )
    context = ssl.create_default_context(cafile=str(cert))
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(lines(300))
    with socket.create_connection(("127.0.0.1", port)) as plain:
        plain.sendall(lines(50))  # not TLS: the handshake fails, nothing is accepted
        time.sleep(0.5)
    wait_for(lambda: pipeline.entry_count("lookup") >= 300, 30, "300 entries")
    time.sleep(1.0)
    assert len(lookup_messages(pipeline)) == 300
    assert "TLS handshake failed" in pipeline.log("gateway")
    pipeline.assert_running()


def test_bad_lines_are_dead_lettered_and_the_gateway_keeps_going(pipeline_factory):
    pipeline, port = start_listener(pipeline_factory, max_line_bytes=512)
    bad = [
        b"i;2026-11-25 10:00:00;CONN\n",  # wrong field count
        b"i;2026-02-30 10:00:00;CONN;089123;;;;;;;1;1;;;\n",  # no such date
        b"i;2026-11-25 10:00:00;CONN;089123;;;;;;;x;1;;;\n",  # non-numeric duration
        b"i;2026-11-25 10:00:00;CONN;089\xff123;;;;;;;1;1;;;\n",  # invalid UTF-8
        b"i;2026-11-25 10:00:00;CONN;089\x00123;;;;;;;1;1;;;\n",  # NUL byte
        b"x" * 5000 + b"\n",  # longer than max_line_bytes
    ]
    with socket.create_connection(("127.0.0.1", port)) as client:
        # The same 100 calls twice: identical lines are different calls, so 200 entries.
        client.sendall(lines(100) + b"".join(bad) + lines(100))
    idle = socket.create_connection(("127.0.0.1", port))  # connects and sends nothing
    wait_for(lambda: pipeline.queue_depth("dead") >= len(bad), 30, "dead letters")
    wait_for(lambda: pipeline.entry_count("lookup") >= 200, 30, "the good lines")
    idle.close()
    assert len({m["event_id"] for m in lookup_messages(pipeline)}) == 200
    dead = pipeline.dead_letters()
    assert len(dead) == len(bad)
    reasons = sorted(str(h["x-cti-reason"]) for h, _ in dead)
    assert any("fields" in r for r in reasons)
    assert any("max_line_bytes" in r for r in reasons)
    assert any("not valid utf-8" in r for r in reasons)
    assert any("control character" in r for r in reasons)
    bodies = {body for _, body in dead}
    assert bad[0] in bodies and b"x" * 512 in bodies  # raw bytes kept, oversized cut
    pipeline.assert_running()


def _refused(port: int) -> bool:
    """True if the gateway closes the connection without reading (EOF or reset)."""
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.settimeout(5)
        try:
            return client.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False


def test_clients_outside_allowed_networks_are_refused(pipeline_factory):
    pipeline, port = start_listener(pipeline_factory, allowed_networks=["10.0.0.0/8"])
    assert _refused(port)
    assert "not in gateway.allowed_networks" in pipeline.log("gateway")
    pipeline.assert_running()


def test_clients_beyond_max_clients_are_refused_until_one_leaves(pipeline_factory):
    pipeline, port = start_listener(pipeline_factory, max_clients=2)
    first = socket.create_connection(("127.0.0.1", port))
    second = socket.create_connection(("127.0.0.1", port))
    admitted = re.compile(r"client \S+ connected$", re.MULTILINE)
    wait_for(lambda: len(admitted.findall(pipeline.log("gateway"))) >= 2, 10, "two clients")
    assert _refused(port)
    assert "gateway.max_clients (2) reached" in pipeline.log("gateway")
    first.close()
    wait_for(lambda: "disconnected" in pipeline.log("gateway"), 10, "the first to leave")
    with socket.create_connection(("127.0.0.1", port)) as third:
        third.sendall(lines(10))
    second.close()
    wait_for(lambda: pipeline.entry_count("lookup") >= 10, 30, "the third client's lines")
    pipeline.assert_running()
