"""Issue 20, the gateway as real processes: what a sender on the CTI network can do to it.

Each test reproduced its finding on the code before the fix (the numbers are the issue's)."""

from __future__ import annotations

import contextlib
import resource
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_listener import lines, start_listener
from tests.support.harness import Pipeline, free_port, http_get, wait_for

VALID = b"i;2026-11-25 10:00:0%d;CONN;089123456%d;;;200;;;;1;1;;;\n"
# A LokaleRufnummer in superscript digits: `isdigit()` says yes, `int()` raises ValueError.
SUPERSCRIPT = "i;2026-11-25 10:00:05;CONN;0891234567;;;⁴⁷⁹⁵;;;;1;1;;;\n".encode()
RULE = {"name": "team", "stage": "before", "local": ["4700-4799"], "action": "anonymise"}


def _published(pipeline: Pipeline) -> int:
    return pipeline.entry_count("lookup") + pipeline.entry_count("write")


# -- finding 1 + 2: a bad value is one bad entry, in every source -----------------------------
def test_file_source_dead_letters_a_superscript_line_alone_and_survives_restarts(
    pipeline_factory: Any, tmp_path: Path
) -> None:
    day = tmp_path / "day.log"
    day.write_bytes(VALID % (1, 1) + SUPERSCRIPT + VALID % (2, 2))
    settings = {
        "gateway": {"source": "file", "path": str(day), "timezone": "Europe/Berlin"},
        "privacy": {"rules": [RULE]},
    }
    pipeline = pipeline_factory(settings)
    for run in range(2):  # the old code raised on every restart: nothing published, ever
        pipeline.start("gateway", "gateway")
        wait_for(lambda: _published(pipeline) + pipeline.queue_depth("dead") >= 3, 30, "3 lines")
        time.sleep(1.0)
        pipeline.assert_running()
        assert _published(pipeline) + pipeline.queue_depth("dead") == 3, f"run {run}"
        assert _published(pipeline) >= 2  # the valid lines, before and after the bad one
        pipeline.kill("gateway", 15)
        assert pipeline.procs["gateway"].returncode == 0  # a requested stop


@contextlib.contextmanager
def _cti_server(payload: bytes) -> Iterator[int]:
    """A CTI server that sends `payload` to the first gateway that connects, then stays open."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = server.accept()
            held.append(conn)
            conn.sendall(payload)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()
        for conn in held:
            conn.close()


def test_tcp_source_keeps_the_valid_lines_of_a_read_with_a_bad_one(pipeline_factory: Any) -> None:
    with _cti_server(VALID % (1, 1) + SUPERSCRIPT + VALID % (2, 2)) as port:
        pipeline = pipeline_factory(
            {
                "gateway": {"source": "tcp", "port": port, "timezone": "Europe/Berlin"},
                "privacy": {"rules": [RULE]},
            }
        )
        pipeline.start("gateway", "gateway")
        wait_for(lambda: _published(pipeline) + pipeline.queue_depth("dead") >= 3, 30, "3 lines")
        time.sleep(0.5)
        pipeline.assert_running()  # the old gateway stopped here, exit 0
        assert _published(pipeline) >= 2


def test_a_source_that_fails_exits_non_zero(pipeline_factory: Any) -> None:
    """'the CTI source failed' used to exit 0: systemd's Restart=on-failure left it down."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        pipeline = pipeline_factory({"gateway": {"source": "listen", "listen_port": port}})
        pipeline.start("gateway", "gateway")
        code = pipeline.procs["gateway"].wait(timeout=60)
    assert code != 0, pipeline.log("gateway")
    assert "the CTI source failed" in pipeline.log("gateway")


# -- finding 3: the metrics port has a budget ---------------------------------------------------
def test_idle_metrics_connections_cannot_starve_the_listener(pipeline_factory: Any) -> None:
    """248 idle HTTP connections under a 256-descriptor limit used to make accept() fail with
    EMFILE and stop the gateway (exit 0)."""
    metrics_port, listen_port = free_port(), free_port()
    settings = {
        "metrics_idle_timeout_s": 30.0,
        "gateway": {"source": "listen", "listen_port": listen_port, "metrics_port": metrics_port,
                    "timezone": "Europe/Berlin", "preenriched": "lookup"},
    }  # fmt: skip
    pipeline = pipeline_factory(settings)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))  # inherited by the gateway only
    try:
        pipeline.start("gateway", "gateway")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    wait_for(lambda: "listening for CTI clients" in pipeline.log("gateway"), 30, "the listener")
    idle = []
    try:
        for _ in range(260):
            with contextlib.suppress(OSError):
                idle.append(socket.create_connection(("127.0.0.1", metrics_port), timeout=2))
        time.sleep(0.5)
        with socket.create_connection(("127.0.0.1", listen_port)) as client:
            client.sendall(lines(20))
        wait_for(lambda: pipeline.entry_count("lookup") >= 20, 30, "the client's lines")
        pipeline.assert_running()
    finally:
        for conn in idle:
            conn.close()
    wait_for(lambda: http_get(f"http://127.0.0.1:{metrics_port}/healthz")[0] == 200, 30, "health")


def test_an_idle_metrics_connection_is_closed(pipeline_factory: Any) -> None:
    metrics_port = free_port()
    pipeline = pipeline_factory(
        {"metrics_idle_timeout_s": 1.0, "gateway": {"metrics_port": metrics_port}}
    )
    pipeline.start("gateway", "gateway")
    wait_for(lambda: http_get(f"http://127.0.0.1:{metrics_port}/healthz")[0] != 0, 30, "health")
    with socket.create_connection(("127.0.0.1", metrics_port)) as idle:
        idle.settimeout(10)
        began = time.monotonic()
        assert idle.recv(1) == b""
        assert time.monotonic() - began < 5


# -- finding 4: squatting and slowloris --------------------------------------------------------
def test_connections_that_send_garbage_lines_do_not_lock_out_a_real_client(
    pipeline_factory: Any,
) -> None:
    """16 connections that send `x\\n` and wait used to hold every place for good."""
    pipeline, port = start_listener(pipeline_factory)
    squatters = [socket.create_connection(("127.0.0.1", port)) for _ in range(16)]
    try:
        for conn in squatters:
            conn.sendall(b"x\n")
        wait_for(lambda: pipeline.queue_depth("dead") >= 16, 30, "16 dead letters")
        with socket.create_connection(("127.0.0.1", port)) as real:
            real.sendall(lines(20))
        wait_for(lambda: pipeline.entry_count("lookup") >= 20, 15, "the real client's lines")
    finally:
        for conn in squatters:
            conn.close()
    pipeline.assert_running()


def test_a_client_trickling_one_byte_every_two_seconds_loses_its_place(
    pipeline_factory: Any,
) -> None:
    """With idle_timeout_s = 5 one byte every 2 s used to hold a place for ever: the deadlines
    count complete lines now."""
    pipeline, port = start_listener(pipeline_factory, idle_timeout_s=5, line_timeout_s=3)
    with socket.create_connection(("127.0.0.1", port)) as slow:
        slow.sendall(lines(1))  # a valid line first: established, not evictable
        wait_for(lambda: pipeline.entry_count("lookup") >= 1, 10, "its first line")
        began = time.monotonic()
        closed = False
        while time.monotonic() - began < 20 and not closed:
            try:
                slow.sendall(b"i")
                slow.settimeout(2.0)
                closed = slow.recv(1) == b""
            except TimeoutError:
                continue
            except OSError:
                closed = True
        took = time.monotonic() - began
    assert closed, "the trickling client kept its place for 20 s"
    assert took < 10, took
    wait_for(lambda: "line_timeout_s (3 s)" in pipeline.log("gateway"), 10, "the refusal")
    pipeline.assert_running()


# -- finding 5 + 12: certificate holders keep their place; ids are per sender ------------------
def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _pki(tmp: Path) -> dict[str, Path]:
    """A CA, a server certificate and two client certificates it signed."""
    p = {
        n: tmp / f"{n}.pem" for n in ("ca", "ca_key", "srv", "srv_key", "a", "a_key", "b", "b_key")
    }
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
             "-keyout", str(p["ca_key"]), "-out", str(p["ca"]))  # fmt: skip
    for name, cn in (("srv", "localhost"), ("a", "pbx-a"), ("b", "pbx-b")):
        csr = tmp / f"{name}.csr"
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
                 "-keyout", str(p[f"{name}_key"]), "-out", str(csr))  # fmt: skip
        ext = tmp / f"{name}.ext"
        ext.write_text("subjectAltName=DNS:localhost\n" if name == "srv" else "")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(p["ca"]),
                 "-CAkey", str(p["ca_key"]), "-CAcreateserial", "-days", "1",
                 "-out", str(p[name]), "-extfile", str(ext))  # fmt: skip
    return p


def _tls_client(pki: dict[str, Path], who: str, port: int) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    context.load_cert_chain(str(pki[who]), str(pki[f"{who}_key"]))
    raw = socket.create_connection(("127.0.0.1", port))
    return context.wrap_socket(raw, server_hostname="localhost")


def test_plain_connections_never_evict_certificate_holders(
    pipeline_factory: Any, tmp_path: Path
) -> None:
    """~58 plain connections a second used to push out every client that had a certificate
    but had not yet sent a line: 0 of 5 got a line through."""
    pki = _pki(tmp_path)
    pipeline, port = start_listener(
        pipeline_factory, listen_address="127.0.0.1", max_clients=4, max_clients_per_address=8,
        tls_cert_file=str(pki["srv"]), tls_key_file=str(pki["srv_key"]),
        tls_client_ca_file=str(pki["ca"]), handshake_timeout_s=20,
    )  # fmt: skip
    holders = [_tls_client(pki, "a", port) for _ in range(3)]
    wait_for(lambda: pipeline.log("gateway").count("(TLS)") >= 3, 15, "3 TLS clients")
    flood = []
    try:
        for _ in range(60):
            with contextlib.suppress(OSError):
                flood.append(socket.create_connection(("127.0.0.1", port), timeout=2))
            time.sleep(0.01)
        for i, conn in enumerate(holders):
            conn.sendall(lines(1 + i))
        wait_for(lambda: pipeline.entry_count("lookup") >= 6, 15, "the certificate holders' lines")
    finally:
        for conn in flood + holders:
            conn.close()
    pipeline.assert_running()


def test_an_explicit_id_is_scoped_to_the_client_that_sent_it(
    pipeline_factory: Any, tmp_path: Path
) -> None:
    """One client's {"id": "pbx1-000123"} used to make the real call with that id a duplicate."""
    pki = _pki(tmp_path)
    pipeline, port = start_listener(
        pipeline_factory, format="json", tls_cert_file=str(pki["srv"]),
        tls_key_file=str(pki["srv_key"]), tls_client_ca_file=str(pki["ca"]),
    )  # fmt: skip
    line = (b'{"id": "pbx1-000123", "In_Out": "i", "Zeitpunkt": "2026-11-25 10:00:00", '
            b'"VerbZustand": "CONN", "Rufnummer": "%s"}\n')  # fmt: skip
    for who, number in (("a", b"0891111111"), ("b", b"0892222222"), ("a", b"0891111111")):
        with _tls_client(pki, who, port) as client:
            client.sendall(line % number)
        time.sleep(0.3)
    wait_for(lambda: pipeline.entry_count("lookup") >= 3, 15, "three entries")
    ids = [m["event_id"] for m in pipeline.entries("lookup")]
    assert len(ids) == 3 and len(set(ids)) == 2  # a's resend keeps its id; b's is its own


# -- finding 13: a flood costs a bounded amount --------------------------------------------------
DEAD_LETTER_BOUND = Path(__file__).resolve().parents[2] / "deploy/rabbitmq/dead-letter-bound.sh"


def test_the_dead_letter_bound_refuses_a_flood_and_loses_nothing(pipeline_factory: Any) -> None:
    """5,000 garbage lines used to be 5,000 dead letters kept 30 days, without a bound. With the
    policy (reject-publish), the queue stops at its bound and the rest waits at the gateway."""
    status = subprocess.run(["rabbitmqctl", "-q", "status"], check=False, capture_output=True)
    if status.returncode != 0:
        pytest.skip("rabbitmqctl cannot reach the broker")
    pipeline, port = start_listener(pipeline_factory, window=10)
    wait_for(lambda: pipeline.queue_depth("dead") == 0 and "ready" in pipeline.log("gateway"),
             30, "the topology")  # fmt: skip
    bound = [str(DEAD_LETTER_BOUND), "--vhost", "/", "--prefix", pipeline.prefix,
             "--max-length", "20"]  # fmt: skip
    subprocess.run(bound, check=True, capture_output=True)
    flood = 200
    try:
        time.sleep(1.0)
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(b"".join(b"garbage %d\n" % i for i in range(flood)))
        wait_for(lambda: pipeline.queue_depth("dead") >= 20, 30, "20 dead letters")
        time.sleep(3.0)
        # Quorum queues refuse once they are over the bound, so what was in flight (at most the
        # publisher's window, gateway.window = 10 here) gets past it.
        assert (
            20 <= pipeline.queue_depth("dead") <= 20 + 10 + 1
        )  # bounded: the broker refused the rest
        pipeline.assert_running()
        purged = 0  # the admin makes room, again and again: every line arrives, none twice
        deadline = time.monotonic() + 120
        while purged < flood and time.monotonic() < deadline:
            with pipeline.channel() as ch:
                purged += ch.queue_purge(pipeline.topology.queue("dead")).method.message_count
            time.sleep(1.0)
        assert purged == flood
    finally:
        clear = [
            "rabbitmqctl",
            "-q",
            "clear_policy",
            "-p",
            "/",
            f"{pipeline.prefix}-dead-letter-bound",
        ]
        subprocess.run(clear, check=False, capture_output=True)
    log = pipeline.log("gateway")
    assert log.count("rejected a line from") == 1  # one warning for the flood, not 200
