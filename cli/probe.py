"""`cti-journal probe`: the container's HEALTHCHECK. Asks this host's cti-journal process for
`/healthz` (or `/readyz`) on the metrics port its config names. It imports no driver and no
broker client, so that it starts in a fraction of a second every few seconds."""

from __future__ import annotations

import argparse
import urllib.error
import urllib.request

from cti_journal.shared.arguments import BROKER, add_config_argument, load_settings


def configure(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--ready", action="store_true", help="ask /readyz instead of /healthz")
    parser.add_argument(
        "--port", type=int, action="append", help="metrics port to ask (default: all three)"
    )


def _probe_host(address: str) -> str:
    if address in ("", "0.0.0.0"):
        return "127.0.0.1"
    if address == "::":
        return "[::1]"
    return f"[{address}]" if ":" in address else address


def run(args: argparse.Namespace) -> int:
    """Ask this host's cti-journal process: exit 0 if it answers 200, 1 otherwise. The ports
    come from the config (and its environment overrides), so it works unchanged in every
    container of the image: one process per container, so whichever port answers is it."""
    # Only the metrics address and ports: the cross-checks would load the number reader for
    # privacy rules every few seconds, and a config bad enough to fail them runs no process.
    settings = load_settings(args, BROKER, cross_checks=False)
    ports = args.port or [
        p
        for p in (
            settings.gateway.metrics_port,
            settings.lookup.metrics_port,
            settings.writer.metrics_port,
        )
        if p
    ]
    path = "/readyz" if args.ready else "/healthz"
    host = _probe_host(settings.metrics_address)
    for port in ports:
        url = f"http://{host}:{port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                print(f"{url}: {reply.read().decode().strip()}")
                return 0
        except urllib.error.HTTPError as exc:
            print(f"{url}: {exc.read().decode().strip()}")
            return 1
        except OSError:
            continue
    print(f"no cti-journal process answers on {host} port(s) {', '.join(map(str, ports))}")
    return 1
