"""The fake CTI server: a repeatable, realistic call stream, delivered exactly once."""

from __future__ import annotations

import argparse
import itertools
import socket
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from cti_journal.shared.record import ATTR, LineFormat
from cti_journal.simulator import server
from cti_journal.simulator.calls import MSNS, generate_calls
from cti_journal.simulator.server import Simulator

START = datetime(2024, 3, 4, 8, 0, 0)
INT_ATTRS = {"rufdauer_ms", "verbdauer_sec", "gebuehren"}


def calls(count: int = 5000, seed: int = 7, **options):
    return list(generate_calls(seed, count, START, **options))


@pytest.fixture(scope="module")
def run5000():
    return calls(5000, preenriched_ratio=0.1)


# -- the generator ----------------------------------------------------------------------------
def test_same_seed_same_entries_other_seed_other_entries():
    assert calls(500) == calls(500)
    assert calls(500) != calls(500, seed=8)
    # A shorter run is a prefix of a longer one, so a count change does not reshuffle the stream.
    assert calls(200) == calls(500)[:200]


def test_entries_carry_exactly_the_journal_attributes(run5000):
    assert all(set(e) == set(ATTR.values()) for e in run5000)


@pytest.mark.parametrize("kind", ["delimited", "json"])
@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_every_entry_round_trips_through_the_wire_format(run5000, kind, encoding):
    line_format = LineFormat(kind=kind, encoding=encoding)
    for entry in run5000:
        parsed = line_format.parse(line_format.format(entry)).values
        parsed.pop("utc")
        assert parsed == entry


def test_round_trip_with_another_separator_and_field_order(run5000):
    fields = tuple(reversed(LineFormat().fields))
    line_format = LineFormat(separator="|", fields=fields)
    for entry in run5000[:500]:
        parsed = line_format.parse(line_format.format(entry)).values
        parsed.pop("utc")
        assert parsed == entry


def test_the_mix_looks_like_a_real_pbx(run5000):
    states = Counter((e["in_out"], e["verb_zustand"]) for e in run5000)
    assert {s for _, s in states} == {"CONN", "RING", "BUSY"}
    assert {d for d, _ in states} == {"i", "o"}
    numbers = [e["rufnummer"] for e in run5000]
    assert any(n == "" for n in numbers)  # anonymous
    assert any(n.isdigit() and 2 <= len(n) <= 4 for n in numbers)  # internal extension
    assert any(n.isdigit() and len(n) == 7 for n in numbers)  # local, no area code
    assert any(n.startswith(("0043", "0041", "0033", "+43", "+41", "+33")) for n in numbers)
    assert any(n.startswith(("0049", "+49")) for n in numbers)
    assert any(n.startswith(("015", "016", "017")) for n in numbers)  # mobile
    assert any(n.startswith("089") for n in numbers)
    prefixed = [e for e in run5000 if e["amtsholung"] and e["rufnummer"].startswith("00")]
    assert prefixed  # delivered with the outside-line digit in front
    assert {e["lokale_rufnummer"] for e in run5000} >= set(MSNS)
    assert any(e["weitergeleitet"] for e in run5000)
    assert any(e["name"] for e in run5000)
    assert any(not e["name"] and not e["datensatz_id"] for e in run5000)


def test_durations_follow_the_state(run5000):
    for e in run5000:
        if e["verb_zustand"] == "RING":
            assert e["rufdauer_ms"] > 0
            assert e["verbdauer_sec"] in (0, None)
        elif e["verb_zustand"] == "BUSY":
            assert (e["rufdauer_ms"] or 0) < 1000
            assert e["verbdauer_sec"] in (0, None)
        else:
            assert e["rufdauer_ms"] > 0
            assert e["verbdauer_sec"] is not None
    talk = sorted(e["verbdauer_sec"] for e in run5000 if e["verb_zustand"] == "CONN")
    assert talk[-1] > 10 * talk[len(talk) // 2]  # a long tail


def test_lcr_only_outgoing_external_and_charges_only_with_lcr_on_connected_calls(run5000):
    with_lcr = [e for e in run5000 if e["lcr"]]
    assert with_lcr
    assert all(e["in_out"] == "o" and len(e["rufnummer"]) > 4 for e in with_lcr)
    charged = [e for e in run5000 if e["gebuehren"] is not None]
    assert charged
    assert all(e["lcr"] and e["in_out"] == "o" and e["verb_zustand"] == "CONN" for e in charged)
    assert all(e["gebuehren"] is not None for e in with_lcr if e["verb_zustand"] == "CONN")


def test_zeitpunkt_never_decreases_and_repeats_within_a_second(run5000):
    stamps = [e["zeitpunkt"] for e in run5000]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) < len(stamps)
    assert stamps[0] >= START.strftime("%Y-%m-%d %H:%M:%S")


def test_identical_back_to_back_pairs_occur_and_can_be_switched_off(run5000):
    assert any(a == b for a, b in itertools.pairwise(run5000))
    plain = calls(5000, duplicate_ratio=0.0)
    assert not any(a == b for a, b in itertools.pairwise(plain))
    assert len(plain) == 5000


def test_contact_numbers_are_hit_at_the_ratio_and_missed_otherwise():
    contacts = ["+49 89 1234567", "030 5551234", "0171 2345678", "+43 1 5551234"]
    digits = {"891234567", "305551234", "1712345678", "15551234"}
    entries = calls(4000, numbers=contacts, hit_ratio=0.6, duplicate_ratio=0.0)
    hits = [e for e in entries if any(e["rufnummer"].endswith(d) for d in digits)]
    local = [e for e in entries if e["rufnummer"].lstrip("0") == "1234567"]
    assert 0.55 < (len(hits) + len(local)) / len(entries) < 0.65
    verbatim = calls(1000, numbers=contacts, hit_ratio=1.0, contact_forms="verbatim")
    assert {e["rufnummer"] for e in verbatim} == set(contacts)


def test_preenriched_entries_have_a_name_and_a_record():
    entries = calls(2000, preenriched_ratio=1.0)
    filled = [e for e in entries if e["name"]]
    assert filled
    assert all(e["datensatz_id"] and e["datensatz_tabelle"] for e in filled)
    assert all(e["rufnummer"] for e in filled)
    assert not any(e["name"] for e in calls(2000))


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="duplicate_ratio"):
        generate_calls(1, 10, duplicate_ratio=2.0)
    with pytest.raises(ValueError, match="count"):
        generate_calls(1, -1)


# -- serving ----------------------------------------------------------------------------------
def _lines(entries, line_format=None):
    line_format = line_format or LineFormat()
    return [line_format.format(e) for e in entries]


def _start(target, *args):
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def _read_lines(sock: socket.socket, at_least: int | None = None) -> list[bytes]:
    """Complete lines until at least `at_least` or end of stream; a partial last line is dropped."""
    buf = b""
    while at_least is None or buf.count(b"\n") < at_least:
        data = sock.recv(65536)
        if not data:
            break
        buf += data
    return buf[: buf.rfind(b"\n") + 1].splitlines(keepends=True)


def test_listen_a_client_that_leaves_while_idle_loses_nothing():
    entries = calls(1000)
    half = threading.Event()
    go_on = threading.Event()

    def gated():
        for i, entry in enumerate(entries):
            if i == 500:
                half.set()
                go_on.wait(10)
            yield entry

    sim = Simulator(gated())
    thread = _start(sim.serve, "127.0.0.1", 0)
    host, port = sim.wait_ready(5)
    with socket.create_connection((host, port)) as first:
        received = _read_lines(first, 500)
        assert half.wait(5)
    go_on.set()
    with socket.create_connection((host, port)) as second:
        received += _read_lines(second)
    thread.join(10)
    assert received == _lines(entries)
    assert sim.sent == 1000
    assert sim.connections == [500, 500]


def test_listen_a_client_that_drops_mid_stream_gets_the_rest_on_reconnect():
    entries = calls(2000)
    expected = _lines(entries)
    sim = Simulator(entries, rate=2000)
    thread = _start(sim.serve, "127.0.0.1", 0)
    host, port = sim.wait_ready(5)
    first = socket.create_connection((host, port))
    got_first = _read_lines(first, 1000)
    # Closing with unread input resets the connection: the simulator's next sendall fails.
    first.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    first.close()
    with socket.create_connection((host, port)) as second:
        got_second = _read_lines(second)
    thread.join(10)
    assert not thread.is_alive()
    assert sim.sent == 2000
    assert len(sim.connections) == 2
    sent_first = sim.connections[0]
    # What the first client read is a prefix of what it was sent; the second connection starts
    # exactly after the last line counted as sent, so no entry is sent twice.
    assert len(got_first) <= sent_first < 2000
    assert got_first == expected[: len(got_first)]
    assert got_second == expected[sent_first:]


def test_listen_waits_for_a_client_and_stop_ends_it():
    sim = Simulator(calls(10))
    thread = _start(sim.serve, "127.0.0.1", 0)
    sim.wait_ready(5)
    assert sim.address is not None
    assert sim.address[1] > 0
    time.sleep(0.3)
    sim.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert sim.sent == 0


def test_push_reconnects_until_the_gateway_listens():
    entries = calls(300)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sim = Simulator(entries)
    thread = _start(sim.push, "127.0.0.1", port)
    time.sleep(0.3)  # refused a few times meanwhile
    with socket.create_server(("127.0.0.1", port)) as server:
        server.settimeout(10)
        conn, _ = server.accept()
        with conn:
            received = _read_lines(conn)
    thread.join(10)
    assert received == _lines(entries)
    assert sim.sent == 300


@pytest.mark.parametrize("kind", ["delimited", "json"])
def test_file_with_rotation_holds_every_entry_once(tmp_path: Path, kind):
    entries = calls(1000)
    line_format = LineFormat(kind=kind, encoding="cp1252")
    day = tmp_path / "day.log"
    sim = Simulator(entries, line_format)
    assert sim.write_file(day, rotate_every=300) == 1000
    journal = (tmp_path / "journal.log").read_bytes().splitlines(keepends=True)
    today = day.read_bytes().splitlines(keepends=True)
    assert len(journal) == 900
    assert journal + today == _lines(entries, line_format)


# -- the command ------------------------------------------------------------------------------
def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    server.configure(parser)
    return parser.parse_args(argv)


def test_command_writes_the_expected_entries(tmp_path: Path, capsys):
    day, expect = tmp_path / "day.log", tmp_path / "expect.jsonl"
    args = _args(
        "--file", str(day), "--count", "200", "--seed", "3", "--start", "2024-03-04 08:00:00",
        "--preenriched-ratio", "0.2", "--expect-out", str(expect),
    )  # fmt: skip
    assert server.run(args) == 0
    sent = [orjson.loads(line) for line in expect.read_bytes().splitlines()]
    assert sent == calls(200, seed=3, preenriched_ratio=0.2)
    assert day.read_bytes().splitlines(keepends=True) == _lines(sent)
    assert "sent 200 of 200" in capsys.readouterr().err


def test_command_refuses_bad_options():
    with pytest.raises(SystemExit):
        _args("--duplicate-ratio", "1.5")
    with pytest.raises(SystemExit):
        _args("--listen", "nohostport")
    with pytest.raises(SystemExit):
        _args("--file", "x", "--connect", "127.0.0.1:1")


def test_listen_with_several_clients_sends_every_line_to_each_connected_one():
    """A gateway pair: both clients get every line; one that leaves loses only its own copy,
    one that comes (back) gets the lines from then on; each line counts as sent once."""
    entries = calls(3000)
    expected = _lines(entries)
    sim = Simulator(entries, rate=3000)
    thread = threading.Thread(target=sim.serve, args=("127.0.0.1", 0), kwargs={"clients": 2})
    thread.start()
    host, port = sim.wait_ready(5)
    stayer = socket.create_connection((host, port))
    leaver = socket.create_connection((host, port))
    got_leaver = _read_lines(leaver, 500)
    leaver.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    leaver.close()
    with socket.create_connection((host, port)) as comer:
        got_comer = _read_lines(comer)
        got_stayer = _read_lines(stayer)
    stayer.close()
    thread.join(10)
    assert sim.sent == 3000
    assert got_stayer == expected
    # the leaver may have connected a line or two after the stayer: a run from where it joined
    at = expected.index(got_leaver[0])
    assert got_leaver == expected[at : at + len(got_leaver)]
    assert got_comer and got_comer == expected[-len(got_comer) :]
    assert len(sim.connections) == 3


def test_the_schedule_counts_lines_sent_behind_it():
    """A sender that did not get the CPU in time sends the lines that fell due at once; the
    schedule counts them, so that a latency measured meanwhile can say the rate came in bursts."""
    schedule = server._Schedule(rate=1000.0)
    stop = threading.Event()
    schedule.start()
    assert schedule.wait(5, stop)  # due in 5 ms: waited for, not late
    assert (schedule.late, schedule.most_late_s) == (0, 0.0)
    time.sleep(0.05)
    for index in range(6, 10):  # due 6–9 ms after the start, sent ~50 ms after it
        assert schedule.wait(index, stop)
    assert schedule.late == 4
    assert schedule.most_late_s >= 0.04
    unpaced = server._Schedule(rate=0.0)
    unpaced.start()
    assert unpaced.wait(10**6, stop) and unpaced.late == 0  # as fast as possible: never late
