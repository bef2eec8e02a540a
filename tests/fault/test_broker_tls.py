"""AMQP over TLS against a RabbitMQ node of the test's own: CA, client certificate, refusal."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.faults import BrokerNode
from tests.support.harness import free_port, to_toml


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d: Path) -> None:
    """A CA, a server certificate for localhost and a client certificate, all signed by the CA."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for who in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={who}",
                 "-keyout", f"{who}.key", "-out", f"{who}.csr", cwd=d)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", f"{who}.pem",
                 cwd=d)  # fmt: skip
    for f in d.iterdir():
        # The node runs as this user too. Keys as an operator must keep them (the client's is
        # refused when open to others: shared/secrets.py), the rest readable.
        f.chmod(0o600 if f.suffix == ".key" else 0o644)


@pytest.fixture(scope="module")
def tls_node() -> Iterator[tuple[BrokerNode, int, Path]]:
    base = Path(tempfile.mkdtemp(prefix="cti-tls-"))
    pki = base / "pki"
    pki.mkdir()
    make_pki(pki)
    node = BrokerNode(base / "node", name="cti-tls-test@localhost")
    tls_port = free_port()
    with open(node.base / "rabbitmq.conf", "a") as conf:
        conf.write(
            f"listeners.ssl.default = 127.0.0.1:{tls_port}\n"
            f"ssl_options.cacertfile = {pki / 'ca.pem'}\n"
            f"ssl_options.certfile = {pki / 'server.pem'}\n"
            f"ssl_options.keyfile = {pki / 'server.key'}\n"
            "ssl_options.verify = verify_peer\n"
            "ssl_options.fail_if_no_peer_cert = true\n"
        )
    try:
        node.start()
        yield node, tls_port, pki
    finally:
        node.remove()


def check(tmp_path: Path, broker: dict[str, object]) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "tls.toml"
    config.write_text(to_toml({"broker": broker}))
    return subprocess.run(
        [sys.executable, "-m", "cti_journal.cli", "check", "-c", str(config),
         "--only", "broker"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_amqps_with_ca_and_client_certificate(tls_node, tmp_path):
    _node, port, pki = tls_node
    result = check(tmp_path, {
        "urls": [f"amqps://guest:guest@localhost:{port}/%2F"], "prefix": "tls-test",
        "tls": {"ca_file": str(pki / "ca.pem"), "cert_file": str(pki / "client.pem"),
                "key_file": str(pki / "client.key")},
    })  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "topology declared" in result.stdout
    assert "guest:guest" not in result.stdout + result.stderr  # the password is redacted


def test_amqps_without_client_certificate_or_with_another_ca_is_refused(tls_node, tmp_path):
    _node, port, pki = tls_node
    url = f"amqps://guest:guest@localhost:{port}/%2F"
    no_cert = check(tmp_path, {"urls": [url], "tls": {"ca_file": str(pki / "ca.pem")}})
    assert no_cert.returncode == 2 and "FAILED" in no_cert.stdout
    other = tmp_path / "other"
    other.mkdir()
    make_pki(other)
    wrong_ca = check(tmp_path, {"urls": [url], "tls": {
        "ca_file": str(other / "ca.pem"), "cert_file": str(pki / "client.pem"),
        "key_file": str(pki / "client.key")}})  # fmt: skip
    assert wrong_ca.returncode == 2 and "FAILED" in wrong_ca.stdout
    assert "guest:guest" not in no_cert.stdout + wrong_ca.stdout
