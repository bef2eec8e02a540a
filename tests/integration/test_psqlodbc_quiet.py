"""Debian registers psqlODBC with CommLog=1, and then every process that connects to PostgreSQL
leaves a /tmp/psqlodbc_<program>_<user><pid>.log behind (thousands a day on a busy host:
irods/irods#6563); a connection string cannot turn it off. The set-up (deploy/setup.sh) and the
image (deploy/Dockerfile) switch it off in the PostgreSQL drivers' registration. Here a process
of its own connects through the writer's connect() and closes: no such file may carry its pid.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

_CONNECT = """
import sys
from cti_journal.shared.odbc import connect
connect(sys.argv[1]).close()
"""


def test_a_postgresql_connection_leaves_no_log_in_tmp(pg_dsn: str) -> None:
    started = time.time() - 1  # a file left by an earlier process with the same pid is older
    with subprocess.Popen(
        [sys.executable, "-c", _CONNECT, pg_dsn], stderr=subprocess.PIPE, text=True
    ) as proc:
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    # psqlodbc_<program>_<user><pid>.log: the pid follows a non-digit (a user name ending in
    # digits would not be told apart from the pid)
    own = re.compile(rf"psqlodbc_.*\D{proc.pid}\.log")
    left = [
        p.name
        for p in Path("/tmp").glob("psqlodbc_*.log")
        if own.fullmatch(p.name) and p.stat().st_mtime >= started
    ]
    assert not left, f"{left}: CommLog is on in /etc/odbcinst.ini (bash deploy/setup.sh install)"
