#!/usr/bin/env bash
# Stop the nodes start-local-cluster.sh started in DIR; with --remove, delete DIR afterwards.
#
#   deploy/cluster/stop-local-cluster.sh DIR [--remove]
#
# Touches only what DIR describes: each node is stopped through its own environment
# (DIR/node<i>/env: its name, cookie and ports); a node that does not answer is killed by the
# OS process id start-local-cluster.sh recorded in DIR/node<i>/os.pid. DIR is deleted only if start-local-cluster.sh made it.
set -euo pipefail

DIR=${1:?usage: stop-local-cluster.sh DIR [--remove]}
REMOVE=${2:-}
die() { printf 'stop-local-cluster: %s\n' "$*" >&2; exit 1; }

[ -f "$DIR/.local-cluster" ] || die "$DIR was not made by start-local-cluster.sh; not touching it"
DIR=$(cd "$DIR" && pwd)
BIN=/usr/lib/rabbitmq/bin
[ -x "$BIN/rabbitmqctl" ] || BIN=$(dirname "$(command -v rabbitmqctl || true)")

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# Stop the joined nodes first and node 1 last, so that no node waits for a peer that is gone.
shopt -s nullglob
envfiles=("$DIR"/node*/env)
for ((k = ${#envfiles[@]} - 1; k >= 0; k--)); do
    envfile=${envfiles[k]}
    n=$(dirname "$envfile")
    # shellcheck source=/dev/null
    node=$(. "$envfile" && echo "$RABBITMQ_NODENAME")
    pid=$(cat "$n/os.pid" 2>/dev/null || true)
    # shellcheck source=/dev/null
    if (. "$envfile" && exec "$BIN/rabbitmqctl" -n "$node" stop >/dev/null 2>&1); then
        echo "stopped $node"
    elif alive "$pid"; then
        kill "$pid"
        echo "$node did not answer; sent SIGTERM to its pid $pid"
    else
        echo "$node was not running"
    fi
    for _ in $(seq 1 60); do alive "$pid" || break; sleep 0.5; done
    if alive "$pid"; then
        kill -9 "$pid"
        echo "$node still running after 30 s; killed pid $pid"
    fi
done

if [ "$REMOVE" = --remove ]; then
    rm -rf "$DIR"
    echo "removed $DIR"
fi
