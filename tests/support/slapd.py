"""A throwaway OpenLDAP `slapd` for the tests: Debian's package unpacked into a cache folder, run as
an ordinary process (nothing installed, nothing under /etc touched), mdb database, the
inetOrgPerson and AD-like (`msuser`) schemas, TLS with a test CA, a size limit of 1,000 for
ordinary users as Active Directory has, and simple binds only over TLS (`security
simple_bind=128`), as domain controllers refuse plain binds.

`deploy/setup.sh test` downloads the packages into the cache (`apt-get download` needs no
install); a test run on a machine without them tries the same itself.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.harness import free_port

PACKAGES = ("slapd", "libldap-2.5-0")
BASE_DN = "DC=example,DC=local"
ADMIN_DN = f"cn=admin,{BASE_DN}"
ADMIN_PASSWORD = "admin-secret"
READER_DN = f"CN=cti-journal,OU=Service,{BASE_DN}"
READER_PASSWORD = "reader-secret"
# A second reader whose paged searches stop after 1,200 entries (size.prtotal): the load must
# fail with sizeLimitExceeded rather than deliver a short directory.
LIMITED_DN = f"CN=limited,OU=Service,{BASE_DN}"
SCHEMAS = ("core", "cosine", "inetorgperson", "nis", "msuser")
TRIPLET = "x86_64-linux-gnu"


def cache_dir() -> Path:
    base = os.environ.get("CTI_JOURNAL_TEST_CACHE")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg) / "cti-journal-test" if xdg else Path("/var/tmp/cti-journal-test-cache")


class SlapdUnavailableError(RuntimeError):
    pass


def slapd_root() -> Path:
    """The unpacked packages (downloaded once into the cache)."""
    root = cache_dir() / "slapd"
    if (root / "usr/sbin/slapd").exists():
        return root
    debs = cache_dir() / "slapd-debs"
    debs.mkdir(parents=True, exist_ok=True)
    if not list(debs.glob("slapd_*.deb")):
        if shutil.which("apt-get") is None:
            raise SlapdUnavailableError("no apt-get to download slapd")
        done = subprocess.run(
            ["apt-get", "download", *PACKAGES],
            cwd=debs,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise SlapdUnavailableError(f"apt-get download {PACKAGES}: {done.stderr.strip()}")
    staging = root.with_name("slapd.part")
    shutil.rmtree(staging, ignore_errors=True)
    for deb in debs.glob("*.deb"):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(staging)], check=True, timeout=120)
    shutil.rmtree(root, ignore_errors=True)
    staging.rename(root)
    return root


def make_ca(folder: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for 127.0.0.1 / localhost: (ca, cert, key)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key = folder / "ca.pem", folder / "ca.key"
    cert, key, csr = folder / "server.pem", folder / "server.key", folder / "server.csr"
    ext = folder / "san.cnf"
    ext.write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
        "-days", "2", "-subj", "/CN=cti-journal test CA")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", "/CN=127.0.0.1")  # fmt: skip
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))  # fmt: skip
    return ca, cert, key


SERVICE_LDIF = f"""\
dn: OU=Service,{BASE_DN}
objectClass: organizationalUnit
ou: Service

dn: {READER_DN}
objectClass: person
cn: cti-journal
sn: service
userPassword: {READER_PASSWORD}

dn: {LIMITED_DN}
objectClass: person
cn: limited
sn: service
userPassword: {READER_PASSWORD}
"""


def merge_ldif(texts: list[str]) -> str:
    """Several LDIF files as one, each DN once (the generators repeat the base entries)."""
    seen: set[str] = set()
    out: list[str] = []
    for text in texts:
        for block in text.replace("\r\n", "\n").split("\n\n"):
            lines = [ln for ln in block.splitlines() if not ln.startswith("version:")]
            if not lines or not lines[0].lower().startswith("dn:"):
                continue
            dn = lines[0].lower()
            if dn in seen:
                continue
            seen.add(dn)
            out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


@dataclass
class Slapd:
    folder: Path
    process: subprocess.Popen[bytes]
    ldap_port: int
    ldaps_port: int
    ca_file: Path
    reader_password_file: Path

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    @property
    def ldap_url(self) -> str:
        return f"ldap://127.0.0.1:{self.ldap_port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start_slapd(folder: Path, ldif: str) -> Slapd:
    root = slapd_root()
    ca, cert, key = make_ca(folder / "tls")
    db = folder / "db"
    db.mkdir(parents=True)
    schema = root / "etc/ldap/schema"
    includes = "".join(f"include {schema / name}.schema\n" for name in SCHEMAS)
    conf = folder / "slapd.conf"
    conf.write_text(
        f"""{includes}
pidfile {folder / "slapd.pid"}
modulepath {root / "usr/lib/ldap"}
moduleload back_mdb
TLSCACertificateFile {ca}
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
security simple_bind=128
database mdb
maxsize 1073741824
suffix "{BASE_DN}"
rootdn "{ADMIN_DN}"
rootpw {ADMIN_PASSWORD}
directory {db}
index objectClass eq
limits dn.exact="{LIMITED_DN}" size.soft=1000 size.hard=1000 size.pr=500 size.prtotal=1200
limits users size.soft=1000 size.hard=1000 size.pr=1000 size.prtotal=unlimited
access to attrs=userPassword by anonymous auth by * none
access to * by users read by * none
"""
    )
    data = folder / "data.ldif"
    data.write_text(merge_ldif([ldif, SERVICE_LDIF]))
    env = {**os.environ, "LD_LIBRARY_PATH": str(root / "usr/lib" / TRIPLET)}
    done = subprocess.run(
        [str(root / "usr/sbin/slapadd"), "-q", "-f", str(conf), "-l", str(data)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"slapadd failed: {done.stderr[-2000:]}")
    ldap_port, ldaps_port = free_port(), free_port()
    urls = f"ldap://127.0.0.1:{ldap_port}/ ldaps://127.0.0.1:{ldaps_port}/"
    with (folder / "slapd.log").open("wb") as log:
        process = subprocess.Popen(
            [str(root / "usr/sbin/slapd"), "-f", str(conf), "-h", urls, "-d", "0"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    password_file = folder / "reader.password"
    password_file.write_text(READER_PASSWORD + "\n")
    server = Slapd(folder, process, ldap_port, ldaps_port, ca, password_file)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"slapd exited: {(folder / 'slapd.log').read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", ldaps_port), timeout=1):
                return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError("slapd did not listen within 20 s")
