"""Issue 20, finding 16: what admins' commands print and bind. `dlq list`/`show` escape the
control characters of dead-letter headers; a gateway told to listen on `::` listens (and takes
IPv4 clients through it, matched against IPv4 allowed_networks)."""

from __future__ import annotations

import socket

import pika

from cti_journal.shared.declare import declare_topology_blocking
from cti_journal.shared.loader import load_settings
from tests.integration.test_dlq import dlq
from tests.integration.test_listener import lines, start_listener
from tests.support.harness import wait_for

# Clear the screen, set the window title, move the cursor up and rewrite, a C1 CSI, a bidi
# override: each would let a sender's header rewrite what the admin reads.
HOSTILE = "\x1b[2J\x1b]0;owned\x07\r\x1b[1Aall clear\x9b31m\u202egnp.exe"


def test_dlq_list_and_show_escape_control_characters(pipeline_factory):
    pipeline = pipeline_factory({})
    declare_topology_blocking(load_settings(pipeline.config).broker)
    headers = {"x-cti-stage": "gateway", "x-cti-error": HOSTILE, "x-cti-reason": HOSTILE,
               HOSTILE: "key"}  # fmt: skip
    with pipeline.channel() as ch:
        ch.basic_publish(
            pipeline.topology.exchange, "dead", f"line {HOSTILE}".encode(),
            pika.BasicProperties(delivery_mode=2, headers=headers),
        )  # fmt: skip
    listed = dlq(pipeline, "list")
    assert listed.returncode == 0, listed.stderr
    letter = next(ln.split()[0] for ln in listed.stdout.splitlines() if "gateway" in ln)
    shown = dlq(pipeline, "show", letter)
    revealed = dlq(pipeline, "show", letter, "--reveal")
    for out in (listed.stdout, shown.stdout, revealed.stdout):
        assert not any(c in out for c in "\x1b\x07\r\x9b\u202e"), repr(out)
        assert "\\x1b[2J" in out and "\\u202e" in out
    assert len(listed.stdout.splitlines()) == 3  # header, the letter, the masking note


def test_a_gateway_listening_on_all_ipv6_addresses_takes_ipv4_clients(pipeline_factory):
    pipeline, port = start_listener(
        pipeline_factory, listen_address="::", allowed_networks=["127.0.0.0/8", "::1/128"]
    )
    with socket.create_connection(("127.0.0.1", port)) as v4:
        v4.sendall(lines(20))
    with socket.create_connection(("::1", port)) as v6:
        v6.sendall(lines(5))
    wait_for(lambda: pipeline.entry_count("lookup") >= 25, 30, "25 entries")
    assert pipeline.queue_depth("dead") == 0
    pipeline.assert_running()
