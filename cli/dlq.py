"""`cti-journal dlq list|show|replay|purge`: the dead-letter queue for admins.

Every dead letter says where it failed (`x-cti-stage`: gateway, lookup or write), why
(`x-cti-error`, `x-cti-reason`, `x-cti-column`), on which host and when. Entries the broker
dead-lettered itself (a worker crashed on them `broker.delivery_limit` times) carry RabbitMQ's
`x-first-death-*` headers instead. `replay` sends entries back to the stage they failed in,
after the cause is fixed; a line the gateway could not parse is parsed again with the current
config and, if it parses now, enters the pipeline like any other.

Dead letters are at-least-once like everything else: a worker that dies after its dead letter
was confirmed but before it acknowledged the delivery gets the entry again and dead-letters it
again. A lookup or write dead letter whose event id an earlier one of the same stage has is
such a copy (event ids are the same only for the same entry): `list` marks it, `replay` sends
the entry once and drops its copies with it. A gateway dead letter has no event id (the line did
not parse); two identical bad lines may be two calls, so they are never merged.

A letter is addressed by an id made from its content (stage, headers, body: what the broker
keeps unchanged when it requeues a letter), not by its position, which changes whenever a
letter is requeued or another one arrives. Identical letters get `-2`, `-3`, ... after the same
id; being identical, it does not matter which one of them is which.

Phone numbers are personal data: `list`, `show` and `replay` print them masked to their last
digits unless `--reveal`; the letter itself keeps the raw line, so that it can be replayed.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import pika
import pika.adapters.blocking_connection
import pika.exceptions

from cti_journal.gateway.prepare import reparser
from cti_journal.shared.amqp_params import connection_parameters
from cti_journal.shared.arguments import GATEWAY, add_config_argument, load_settings
from cti_journal.shared.config import Settings
from cti_journal.shared.declare import declare_topology_blocking
from cti_journal.shared.errors import BadInputError, ConfigError, describe
from cti_journal.shared.masking import mask_numbers_in
from cti_journal.shared.terminal import safe_text
from cti_journal.shared.topology import DEAD, LOOKUP, STAGES, WRITE, Topology

Channel = Any  # pika's BlockingChannel; pika ships no type hints
Reparse = Callable[[bytes, Mapping[str, Any]], tuple[str, bytes]]
# Headers the broker adds or changes when a letter is requeued; not part of its identity.
_VOLATILE_HEADERS = frozenset({"x-delivery-count"})
_ID_HEX = 10
_UNMASKED_KEYS = frozenset({"event_id", "source", "v", "lookup", "utc", "zeitpunkt"})


@dataclass
class DeadLetter:
    index: int
    tag: int
    headers: dict[str, Any]
    body: bytes
    copy_of: str = ""  # the id of the earlier dead letter this one repeats, "" if none
    id: str = ""  # stable: from the content (see the module's docstring); set by `_take_all`

    def digest(self) -> str:
        stable = {k: v for k, v in self.headers.items() if k not in _VOLATILE_HEADERS}
        head = orjson.dumps(stable, default=str, option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(head + b"\0" + self.body).hexdigest()[:_ID_HEX]

    @property
    def stage(self) -> str:
        stage = self.headers.get("x-cti-stage")
        if isinstance(stage, str):
            return stage
        queue = self.headers.get("x-first-death-queue", "")
        for candidate in STAGES:
            if isinstance(queue, str) and queue.endswith(f".{candidate}"):
                return candidate
        return "?"

    @property
    def reason(self) -> str:
        reason = self.headers.get("x-cti-reason") or self.headers.get("x-first-death-reason")
        return str(reason or "?")

    @property
    def event_id(self) -> str:
        """The entry's event id; "" for a line, a bundle or a body without a string id."""
        try:
            value = orjson.loads(self.body).get("event_id", "")
        except (orjson.JSONDecodeError, AttributeError):
            return ""
        return value if isinstance(value, str) else ""


@contextmanager
def _channel(settings: Settings) -> Iterator[tuple[Channel, Topology]]:
    topology = declare_topology_blocking(settings.broker)
    last: Exception | None = None
    for url in settings.broker.urls:
        try:
            conn = pika.BlockingConnection(connection_parameters(url, settings.broker, "dlq"))
        except (pika.exceptions.AMQPError, OSError) as exc:
            last = exc
            continue
        try:
            channel = conn.channel()
            channel.confirm_delivery()
            yield channel, topology
        finally:
            if conn.is_open:
                conn.close()
        return
    raise ConfigError("broker.urls", f"no broker reachable: {describe(last) if last else 'no URL'}")


def _take_all(channel: Channel, topology: Topology, limit: int) -> list[DeadLetter]:
    """Fetch up to `limit` dead letters without acknowledging them."""
    letters: list[DeadLetter] = []
    while len(letters) < limit:
        method, props, body = channel.basic_get(topology.queue(DEAD), auto_ack=False)
        if method is None:
            break
        letters.append(DeadLetter(len(letters) + 1, method.delivery_tag, props.headers or {}, body))
    _name(letters)
    _mark_copies(letters)
    return letters


def _name(letters: list[DeadLetter]) -> None:
    seen: dict[str, int] = {}
    for letter in letters:
        digest = letter.digest()
        seen[digest] = seen.get(digest, 0) + 1
        letter.id = digest if seen[digest] == 1 else f"{digest}-{seen[digest]}"


def _mark_copies(letters: list[DeadLetter]) -> None:
    first: dict[tuple[str, str], str] = {}
    for letter in letters:
        if letter.stage not in (LOOKUP, WRITE) or not letter.event_id:
            continue
        earlier = first.setdefault((letter.stage, letter.event_id), letter.id)
        if earlier != letter.id:
            letter.copy_of = earlier


def _masked(value: Any, reveal: bool) -> Any:
    """Strings with their phone numbers masked (recursively through JSON), unless `reveal`."""
    if reveal:
        return value
    if isinstance(value, str):
        return mask_numbers_in(value)
    if isinstance(value, list):
        return [_masked(v, reveal) for v in value]
    if isinstance(value, dict):
        return {k: v if k in _UNMASKED_KEYS else _masked(v, reveal) for k, v in value.items()}
    return value


def _shown(text: str, reveal: bool) -> str:
    """A header or reason as printed: masked unless `reveal`, and with control characters
    escaped always (a letter's headers come from outside; they must not drive the terminal)."""
    return safe_text(_masked(text, reveal))


def _body_text(body: bytes, reveal: bool, indent: bool = False) -> str:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "raw bytes: " + _shown(body.decode("utf-8", "backslashreplace"), reveal)
    option = orjson.OPT_INDENT_2 if indent else 0
    text = orjson.dumps(_masked(data, reveal), option=option).decode()
    # JSON escapes C0 controls itself; C1 controls and bidi overrides it leaves raw.
    return "\n".join(safe_text(line, backslashes=False) for line in text.split("\n"))


def _give_back(channel: Channel, letters: list[DeadLetter]) -> None:
    for letter in letters:
        channel.basic_nack(letter.tag, requeue=True)


def _print_list(letters: list[DeadLetter], reveal: bool) -> None:
    if not letters:
        print("the dead-letter queue is empty")
        return
    print(f"{'id':<13} {'stage':<8} {'error':<22} {'event id':<32}  reason")
    for letter in letters:
        error = str(letter.headers.get("x-cti-error", letter.headers.get("x-first-death-reason")))
        # an id made by this command: nothing to mask in it
        reason = (
            f"copy of {letter.copy_of}" if letter.copy_of else _shown(letter.reason[:100], reveal)
        )
        print(
            f"{letter.id:<13} {safe_text(letter.stage):<8} {safe_text(error[:22]):<22} "
            f"{safe_text(letter.event_id):<32}  {reason}"
        )
    copies = sum(1 for letter in letters if letter.copy_of)
    if copies:
        print(
            f"copies: {copies} of these {len(letters)} letters repeat an earlier one (a worker "
            "died before acknowledging it); replay sends each entry once"
        )
    if not reveal:
        print("(phone numbers masked; --reveal shows them)")


def _print_one(letter: DeadLetter, reveal: bool) -> None:
    print(f"dead letter {letter.id}")
    for key in sorted(letter.headers):
        if key.startswith("x-cti-") or key.startswith("x-first-death"):
            print(f"  {safe_text(key)}: {_shown(str(letter.headers[key]), reveal)}")
    print("body:", _body_text(letter.body, reveal, indent=True))


def _reparse(settings: Settings) -> Reparse:
    """A gateway-stage letter is its raw line: the gateway's own preparation reads it again."""
    return reparser(settings)


def _replay_one(
    channel: Channel, topology: Topology, letter: DeadLetter, reparse: Reparse
) -> tuple[str, bytes]:
    if letter.stage == "gateway":
        key, body = reparse(letter.body, letter.headers)
    elif letter.stage in (LOOKUP, WRITE):
        key, body = letter.stage, letter.body
    else:
        raise BadInputError(f"unknown stage {letter.stage!r}")
    headers = {"x-cti-replayed-at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    channel.basic_publish(
        topology.exchange,
        key,
        body,
        pika.BasicProperties(delivery_mode=2, content_type="application/json", headers=headers),
        mandatory=True,
    )
    return key, body


def configure(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("action", choices=("list", "show", "replay", "purge"))
    parser.add_argument("ids", nargs="*", help="dead letters by their id (from list)")
    parser.add_argument("--all", action="store_true", help="replay: every dead letter")
    parser.add_argument("--limit", type=int, default=10_000, help="look at most at N (10000)")
    parser.add_argument("--yes", action="store_true", help="purge: really delete them")
    parser.add_argument(
        "--reveal", action="store_true", help="show phone numbers in full (masked by default)"
    )


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args, GATEWAY)  # replay parses lines with the gateway's settings
    with _channel(settings) as (channel, topology):
        if args.action == "purge" and not args.ids:
            if not args.yes:
                print("purge deletes every dead letter for good; add --yes to do it")
                return 2
            count = channel.queue_purge(topology.queue(DEAD)).method.message_count
            print(f"purged {count} dead letters")
            return 0
        letters = _take_all(channel, topology, args.limit)
        try:
            return _act(args, settings, channel, topology, letters)
        finally:
            _give_back(channel, [lt for lt in letters if lt.tag])


def _act(
    args: argparse.Namespace,
    settings: Settings,
    channel: Channel,
    topology: Topology,
    letters: list[DeadLetter],
) -> int:
    if args.action == "list":
        _print_list(letters, args.reveal)
        return 0
    by_id = {letter.id: letter for letter in letters}
    unknown = [i for i in args.ids if i not in by_id]
    if unknown:
        print(f"no dead letter with the id {', '.join(unknown)} (see `dlq list`)", file=sys.stderr)
        return 2
    chosen = letters if args.all and args.action == "replay" else [by_id[i] for i in args.ids]
    if not chosen:
        print("name dead letters by their id from `dlq list` (or --all with replay)")
        return 2
    if args.action == "show":
        for letter in chosen:
            _print_one(letter, args.reveal)
        return 0
    if args.action == "purge":
        return _purge(channel, chosen, args.yes)
    return _replay(args, settings, channel, topology, letters, chosen)


def _purge(channel: Channel, chosen: list[DeadLetter], yes: bool) -> int:
    if not yes:
        print(f"purge deletes {len(chosen)} dead letters for good; add --yes to do it")
        return 2
    for letter in chosen:
        channel.basic_ack(letter.tag)
        letter.tag = 0
        print(f"{letter.id}: purged")
    return 0


def _replay(
    args: argparse.Namespace,
    settings: Settings,
    channel: Channel,
    topology: Topology,
    letters: list[DeadLetter],
    chosen: list[DeadLetter],
) -> int:
    reparse = _reparse(settings)
    failed = 0
    by_id = {letter.id: letter for letter in letters}
    copies_of: dict[str, list[DeadLetter]] = {}
    for letter in letters:
        if letter.copy_of:
            copies_of.setdefault(letter.copy_of, []).append(letter)
    tried: set[str] = set()
    for chosen_letter in chosen:
        # A copy stands for its original: the entry is sent once, and every copy goes with it.
        letter = by_id[chosen_letter.copy_of] if chosen_letter.copy_of else chosen_letter
        if letter.id in tried:
            continue
        tried.add(letter.id)
        try:
            key, body = _replay_one(channel, topology, letter, reparse)
        except (BadInputError, pika.exceptions.UnroutableError) as exc:
            print(f"{letter.id}: not replayed: {_shown(str(exc), args.reveal)}", file=sys.stderr)
            failed += 1
            continue
        copies = copies_of.get(letter.id, [])
        for done in [letter, *copies]:  # the replayed entry is confirmed: drop the letters
            channel.basic_ack(done.tag)
            done.tag = 0
        also = f" (copies {', '.join(c.id for c in copies)} dropped)" if copies else ""
        print(f"{letter.id}: replayed to {key}{also}: {_body_text(body, args.reveal)}")
    return 1 if failed else 0
