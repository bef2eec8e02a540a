"""A throwaway Radicale CardDAV server (PyPI `radicale`, a dev dependency) on a temporary folder:
https with a test CA, one user with a password (htpasswd, plain), address books created as
folders (a `.Radicale.props` with `"tag": "VADDRESSBOOK"`), cards added over HTTP or as files."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.support.harness import free_port
from tests.support.slapd import make_ca

USER = "cti"
PASSWORD = "dav-secret"


@dataclass
class Radicale:
    folder: Path
    process: subprocess.Popen[bytes]
    port: int
    ca_file: Path
    password_file: Path

    @property
    def root(self) -> str:
        return f"https://127.0.0.1:{self.port}/"

    def book_url(self, book: str = "contacts") -> str:
        return f"{self.root}{USER}/{book}/"

    def book_folder(self, book: str = "contacts") -> Path:
        return self.folder / "collections" / "collection-root" / USER / book

    def make_book(self, book: str = "contacts", cards: dict[str, str] | None = None) -> str:
        """An address book with `cards` (file name → vCard text) written as files."""
        folder = self.book_folder(book)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ".Radicale.props").write_text(
            json.dumps({"tag": "VADDRESSBOOK", "D:displayname": book})
        )
        for name, text in (cards or {}).items():
            (folder / name).write_text(text, encoding="utf-8")
        return self.book_url(book)

    def request(self, method: str, url: str, body: str = "") -> int:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        req = urllib.request.Request(
            url,
            data=body.encode() if body else None,
            method=method,
            headers={"Authorization": f"Basic {auth}", "Content-Type": "text/vcard"},
        )
        with urllib.request.urlopen(req, context=context, timeout=30) as reply:
            return int(reply.status)

    def put(self, book: str, name: str, card: str) -> int:
        return self.request("PUT", f"{self.book_url(book)}{name}", card)

    def delete(self, book: str, name: str) -> int:
        return self.request("DELETE", f"{self.book_url(book)}{name}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start_radicale(folder: Path) -> Radicale:
    ca, cert, key = make_ca(folder / "tls")
    users = folder / "users"
    users.write_text(f"{USER}:{PASSWORD}\n")
    port = free_port()
    config = folder / "radicale.conf"
    config.write_text(
        f"""[server]
hosts = 127.0.0.1:{port}
ssl = True
certificate = {cert}
key = {key}
max_content_length = 100000000
timeout = 60
[auth]
type = htpasswd
htpasswd_filename = {users}
htpasswd_encryption = plain
delay = 0
[rights]
type = owner_only
[storage]
filesystem_folder = {folder / "collections"}
[logging]
level = warning
[web]
type = none
"""
    )
    (folder / "collections" / "collection-root" / USER).mkdir(parents=True)
    password_file = folder / "password"
    password_file.write_text(PASSWORD + "\n")
    with (folder / "radicale.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "radicale", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Radicale(folder, process, port, ca, password_file)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"radicale exited: {(folder / 'radicale.log').read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError("radicale did not listen within 30 s")
