"""The listen source against the real broker: TLS, allowed networks, client limits, bad input."""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

from cti_journal.shared.record import LineFormat
from cti_journal.simulator.calls import generate_calls
from tests.support.harness import Pipeline, free_port, wait_for


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
    # the listener's own line: a test named "…listening…" has that word in its paths too
    wait_for(lambda: "listening for CTI clients" in pipeline.log("gateway"), 30, "the listener")
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


def _metric(port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_bad_lines_are_dead_lettered_and_the_gateway_keeps_going(pipeline_factory):
    metrics_port = free_port()
    pipeline, port = start_listener(pipeline_factory, max_line_bytes=512, metrics_port=metrics_port)
    bad = [
        b"i;2026-11-25 10:00:00;CONN\n",  # wrong field count
        b"i;2026-02-30 10:00:00;CONN;089123;;;;;;;1;1;;;\n",  # no such date
        b"i;2026-11-25 10:00:00;CONN;089123;;;;;;;x;1;;;\n",  # non-numeric duration
        b"i;2026-11-25 10:00:00;CONN;089\xff123;;;;;;;1;1;;;\n",  # invalid UTF-8
        b"i;2026-11-25 10:00:00;CONN;089\x00123;;;;;;;1;1;;;\n",  # NUL byte
        b"x" * 5000 + b"\n",  # longer than max_line_bytes
        b"  \t \r\n",  # only whitespace: kept as a dead letter
    ]
    good = [
        b"i;2026-11-25 10:00:01;CONN;089123;M\xc3\xbcller\tHans;;;;;;1;1;;;\n",  # tab in a field
        b"i;2026-11-25 10:00:02;CONN;089123;" + b"N" * 400 + b";;;;;;1;1;;;\n",  # long name
    ]
    unfinished = b"i;2026-11-25 10:00:03;CONN;0891"  # the client closes mid-line
    with socket.create_connection(("127.0.0.1", port)) as client:
        # The same 100 calls twice: identical lines are different calls, so 200 entries.
        client.sendall(lines(100) + b"".join(bad) + b"\n\r\n" + lines(100) + b"".join(good))
        client.sendall(unfinished)
    idle = socket.create_connection(("127.0.0.1", port))  # connects and sends nothing
    wait_for(lambda: pipeline.queue_depth("dead") >= len(bad) + 1, 30, "dead letters")
    wait_for(lambda: pipeline.entry_count("lookup") >= 202, 30, "the good lines")
    idle.close()
    entries = lookup_messages(pipeline)
    assert len({m["event_id"] for m in entries}) == 202
    assert {"Müller Hans", "N" * 400} <= {m["name"] for m in entries}
    dead = pipeline.dead_letters()
    assert len(dead) == len(bad) + 1
    reasons = sorted(str(h["x-cti-reason"]) for h, _ in dead)
    assert any("fields" in r for r in reasons)
    assert any("max_line_bytes" in r for r in reasons)
    assert any("not valid utf-8" in r for r in reasons)
    assert any("control character" in r for r in reasons)
    assert any("only whitespace" in r for r in reasons)
    assert any("in the middle of a line" in r for r in reasons)
    bodies = {body for _, body in dead}
    assert bad[0] in bodies and b"x" * 512 in bodies  # raw bytes kept, oversized cut
    assert bad[-1] in bodies and unfinished in bodies
    assert _metric(metrics_port, 'cti_journal_blank_lines_total{reason="empty"}') == 2
    assert _metric(metrics_port, 'cti_journal_blank_lines_total{reason="whitespace"}') == 1
    assert "089123" not in pipeline.log("gateway")  # rejected lines are logged masked
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
    wait_for(lambda: "not in gateway.allowed_networks" in pipeline.log("gateway"), 10, "the log")
    pipeline.assert_running()


def _admitted(pipeline: Pipeline) -> int:
    return len(re.findall(r"client \S+ connected$", pipeline.log("gateway"), re.MULTILINE))


def test_clients_beyond_max_clients_are_refused_until_one_leaves(pipeline_factory):
    pipeline, port = start_listener(pipeline_factory, max_clients=2)
    first = socket.create_connection(("127.0.0.1", port))
    second = socket.create_connection(("127.0.0.1", port))
    first.sendall(lines(1))  # clients that sent a line keep their place
    second.sendall(lines(1))
    wait_for(lambda: pipeline.entry_count("lookup") >= 2, 30, "two clients' lines")
    assert _refused(port)
    wait_for(lambda: "gateway.max_clients (2) reached" in pipeline.log("gateway"), 10, "the log")
    first.close()
    wait_for(lambda: "disconnected" in pipeline.log("gateway"), 10, "the first to leave")
    with socket.create_connection(("127.0.0.1", port)) as third:
        third.sendall(lines(10))
    second.close()
    wait_for(lambda: pipeline.entry_count("lookup") >= 12, 30, "the third client's lines")
    pipeline.assert_running()


def test_sixteen_idle_connections_do_not_lock_out_a_real_client(pipeline_factory):
    """The defaults (max_clients 16): connections that never send a byte give their place up
    to a client that sends, at once, not only after the handshake timeout."""
    pipeline, port = start_listener(pipeline_factory)
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(16)]
    try:
        wait_for(lambda: _admitted(pipeline) >= 16, 10, "sixteen idle connections")
        with socket.create_connection(("127.0.0.1", port)) as real:
            real.sendall(lines(20))
        wait_for(lambda: pipeline.entry_count("lookup") >= 20, 10, "the real client's lines")
    finally:
        for conn in idle:
            conn.close()
    assert "had sent no line; made room" in pipeline.log("gateway")
    pipeline.assert_running()


def test_a_client_address_gets_at_most_its_share(pipeline_factory):
    pipeline, port = start_listener(pipeline_factory, max_clients_per_address=2)
    busy = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
    try:
        for conn in busy:
            conn.sendall(lines(1))
        wait_for(lambda: pipeline.entry_count("lookup") >= 2, 10, "two clients' lines")
        assert _refused(port)
        assert _refused(port)
    finally:
        for conn in busy:
            conn.close()
    limit = "gateway.max_clients_per_address (2) reached"
    wait_for(lambda: limit in pipeline.log("gateway"), 10, "the log")
    time.sleep(0.5)
    assert pipeline.log("gateway").count(limit) == 1  # once per address and minute
    pipeline.assert_running()


def test_a_client_that_sends_no_line_is_dropped_after_the_handshake_timeout(pipeline_factory):
    pipeline, port = start_listener(pipeline_factory, handshake_timeout_s=1)
    with socket.create_connection(("127.0.0.1", port)) as talker:
        talker.sendall(lines(1))
        with socket.create_connection(("127.0.0.1", port)) as silent:
            silent.settimeout(10)
            silent.sendall(b"i;2026-11-25 10:00:00;CONN")  # not a complete line
            assert silent.recv(1) == b""  # dropped by the gateway
        time.sleep(1.5)
        talker.sendall(lines(1))  # a client that has sent lines may be idle for longer
        wait_for(lambda: pipeline.entry_count("lookup") >= 2, 10, "the talker's second line")
    wait_for(lambda: "handshake_timeout_s (1 s)" in pipeline.log("gateway"), 10, "the log")
    pipeline.assert_running()


def test_a_line_completed_as_the_handshake_timeout_strikes_is_not_lost(pipeline_factory):
    """A PBX that connects and writes its first line slowly: the timeout ends the connection
    the way a stop does (half-close, then read what still arrives), so the line is kept."""
    pipeline, port = start_listener(pipeline_factory, handshake_timeout_s=1)
    line = lines(1)
    with socket.create_connection(("127.0.0.1", port)) as slow:
        slow.settimeout(10)
        slow.sendall(line[:20])
        assert slow.recv(1) == b""  # the gateway's half-close at the timeout
        slow.sendall(line[20:])  # the rest of the line, after the timeout
    wait_for(lambda: pipeline.entry_count("lookup") == 1, 10, "the slow client's line")
    assert pipeline.queue_depth("dead") == 0
    pipeline.assert_running()


def test_listening_on_a_public_address_needs_allowed_networks_or_client_certificates(
    pipeline_factory,
):
    pipeline = pipeline_factory(
        {"gateway": {"source": "listen", "listen_address": "0.0.0.0", "listen_port": free_port()}}
    )
    pipeline.start("gateway", "gateway")
    assert pipeline.procs["gateway"].wait(timeout=30) == 2
    log = pipeline.log("gateway")
    assert "gateway.allowed_networks / gateway.tls_client_ca_file" in log
    assert "Traceback" not in log
