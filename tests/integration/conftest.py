"""Directory servers for the contact-source tests, one each per test session: a throwaway slapd
(the corpus's `ad.ldif` plus 1,500 generated entries: more than the 1,000-entry limit) and a
throwaway Radicale (the corpus's CardDAV cards in the address book `contacts`). Tests that change
data use entries or address books of their own, so that the corpus stays as written."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.radicale import Radicale, start_radicale
from tests.support.slapd import Slapd, SlapdUnavailableError, merge_ldif, start_slapd

CORPUS = Path(__file__).parents[1] / "corpus" / "sources"
VOLUME_ENTRIES = 1500


def _unavailable(what: str, detail: str) -> None:
    message = f"{what} is not available: {detail}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI=true: a missing service fails the run)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def slapd() -> Iterator[Slapd]:
    volume = subprocess.run(
        [sys.executable, str(CORPUS / "make_ldif.py"), str(VOLUME_ENTRIES)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    with tempfile.TemporaryDirectory(prefix="cti-slapd-") as folder:
        try:
            server = start_slapd(
                Path(folder), merge_ldif([(CORPUS / "ad.ldif").read_text("utf-8"), volume])
            )
        except (SlapdUnavailableError, FileNotFoundError) as exc:
            _unavailable("slapd", str(exc))
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def radicale() -> Iterator[Radicale]:
    with tempfile.TemporaryDirectory(prefix="cti-radicale-") as folder:
        server = start_radicale(Path(folder))
        cards = {p.name: p.read_text("utf-8") for p in (CORPUS / "carddav").glob("*.vcf")}
        server.make_book("contacts", cards)
        try:
            yield server
        finally:
            server.stop()
