#!/usr/bin/env bash
# A 3-node RabbitMQ cluster of one's own on this machine, for fault tests and trying out
# failover (broker.urls with three URLs) - never the machine's shared node.
#
#   deploy/cluster/start-local-cluster.sh DIR [BASE_PORT]     (BASE_PORT default 5701)
#
# Node i (1..3) is <name>i@<host> with
#   AMQP             BASE_PORT+i-1           (5701, 5702, 5703)
#   distribution     BASE_PORT+i-1+20000     (25701, ...)
#   management       BASE_PORT+i-1+10000     (15701, ...)   http://127.0.0.1:15701, guest/guest
#   prometheus       BASE_PORT+i-1+10100     (15801, ...)   /metrics, /metrics/per-object
# all on 127.0.0.1, with data (RABBITMQ_MNESIA_BASE), logs (RABBITMQ_LOG_BASE), config, enabled
# plugins and an Erlang cookie of their own in DIR. Nodes 2 and 3 join node 1 with
# `rabbitmqctl join_cluster`. Prints the AMQP URLs at the end.
#
# Why its own everything: joining a cluster resets the joining node's data, and a cluster
# member's users and queues change for everyone who uses it. So this script refuses the shared
# node's name (rabbit@...) and ports (5672, 25672, 15672, 15692), ignores /etc/rabbitmq's
# rabbitmq.conf and rabbitmq-env.conf (which configure the shared node), uses its own cookie, and
# checks every port is free before it starts anything. Only epmd (port 4369, a per-machine name
# registry that every Erlang node shares) is common with the shared node.
#
# Environment: CLUSTER_NAME (node name stem, default "ctij"), CLUSTER_HOST (default "localhost"),
# CLUSTER_TIMEOUT (seconds per node start, default 120). Stop with stop-local-cluster.sh DIR.
set -euo pipefail

DIR=${1:?usage: start-local-cluster.sh DIR [BASE_PORT]}
BASE=${2:-5701}
NAME=${CLUSTER_NAME:-ctij}
HOST=${CLUSTER_HOST:-localhost}
TIMEOUT=${CLUSTER_TIMEOUT:-120}
NODES=3

die() { printf 'start-local-cluster: %s\n' "$*" >&2; exit 1; }

# The Debian wrappers in /usr/sbin switch to the rabbitmq user (and its cookie) when run as root;
# the scripts behind them run as whoever calls them, with the environment given here.
BIN=/usr/lib/rabbitmq/bin
[ -x "$BIN/rabbitmq-server" ] || BIN=$(dirname "$(command -v rabbitmq-server || true)")
[ -x "$BIN/rabbitmq-server" ] || die "rabbitmq-server not found"

[ "$NAME" != rabbit ] || die "CLUSTER_NAME=rabbit is the shared node's name; choose another"
if ! [[ "$BASE" =~ ^[0-9]+$ ]] || [ "$BASE" -lt 1024 ] || [ $((BASE + NODES - 1 + 20000)) -gt 65535 ]; then
    die "BASE_PORT must be a number >= 1024 with BASE_PORT+20000+2 <= 65535"
fi

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for ((i = 0; i < NODES; i++)); do
    for port in $((BASE + i)) $((BASE + i + 20000)) $((BASE + i + 10000)) $((BASE + i + 10100)); do
        case $port in 5672 | 25672 | 15672 | 15692 | 4369) die "port $port belongs to the shared node" ;; esac
        port_in_use "$port" && die "port $port is in use (another cluster in the way? stop it first)"
    done
done

if [ -e "$DIR" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ]; then
    die "$DIR exists and is not empty; stop-local-cluster.sh $DIR --remove first"
fi
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
echo "cti-journal local RabbitMQ cluster (remove with stop-local-cluster.sh)" >"$DIR/.local-cluster"

# One cookie for the three nodes and for the CLI calls below; HOME points the CLI at it.
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/.erlang.cookie"
chmod 400 "$DIR/.erlang.cookie"

node_name() { echo "$NAME$1@$HOST"; }

node_env() {  # i: node i's environment as a sourceable file, for the server and the CLI alike
    local i=$1 n="$DIR/node$1"
    cat <<ENV
export HOME='$DIR'
export RABBITMQ_NODENAME='$(node_name "$i")'
export RABBITMQ_USE_LONGNAME=false
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT=$((BASE + i - 1))
export RABBITMQ_DIST_PORT=$((BASE + i - 1 + 20000))
export RABBITMQ_MNESIA_BASE='$n/mnesia'
export RABBITMQ_LOG_BASE='$n/log'
export RABBITMQ_CONFIG_FILE='$n/rabbitmq.conf'
export RABBITMQ_CONF_ENV_FILE='$n/rabbitmq-env.conf'
export RABBITMQ_ADVANCED_CONFIG_FILE='$n/advanced.config'
export RABBITMQ_ENABLED_PLUGINS_FILE='$n/enabled_plugins'
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}'
ENV
}

write_node_files() {
    local i=$1 n="$DIR/node$1"
    mkdir -p "$n/mnesia" "$n/log"
    node_env "$i" >"$n/env"
    cat >"$n/rabbitmq.conf" <<CONF
listeners.tcp.1 = 127.0.0.1:$((BASE + i - 1))
management.tcp.ip = 127.0.0.1
management.tcp.port = $((BASE + i - 1 + 10000))
prometheus.tcp.ip = 127.0.0.1
prometheus.tcp.port = $((BASE + i - 1 + 10100))
# guest may log in over 127.0.0.1 only (the default); these nodes listen nowhere else.
loopback_users.guest = true
# A node cut off from the other two stops serving (and closes its client connections), so that
# clients fail over to the majority instead of waiting on a node that can commit nothing.
cluster_partition_handling = pause_minority
CONF
    : >"$n/rabbitmq-env.conf"
    echo "[]." >"$n/advanced.config"
    echo "[rabbitmq_management,rabbitmq_prometheus]." >"$n/enabled_plugins"
}

on_node() {  # i command args...: run a RabbitMQ CLI or the server in node i's environment
    local i=$1 cmd=$2
    shift 2
    # shellcheck source=/dev/null
    (. "$DIR/node$i/env" && exec "$BIN/$cmd" "$@")
}

ctl() { local i=$1; shift; on_node "$i" rabbitmqctl -n "$(node_name "$i")" "$@"; }

wait_for_node() {  # i: until the node answers (it registers with epmd a few seconds after -detached)
    local i=$1 deadline=$((SECONDS + TIMEOUT))
    until ctl "$i" ping >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || die "node $(node_name "$i") not up within ${TIMEOUT}s; see $DIR/node$i/log"
        sleep 1
    done
    ctl "$i" await_startup --timeout "$TIMEOUT" >/dev/null \
        || die "node $(node_name "$i") did not finish booting; see $DIR/node$i/log"
}

start_node() {
    local i=$1
    write_node_files "$i"
    # -detached returns at once; the node runs on in the background under this user. From the
    # node's folder, so that a crash dump lands there.
    (cd "$DIR/node$i" && on_node "$i" rabbitmq-server -detached) >"$DIR/node$i/log/start.out" 2>&1 \
        || die "node $i did not start; see $DIR/node$i/log"
    wait_for_node "$i"
    # The VM's OS pid, for stop-local-cluster.sh's last resort when the node stops answering.
    ctl "$i" eval 'list_to_integer(os:getpid()).' >"$DIR/node$i/os.pid"
    echo "started $(node_name "$i") (amqp $((BASE + i - 1)), pid $(cat "$DIR/node$i/os.pid"))"
}

for ((i = 1; i <= NODES; i++)); do start_node "$i"; done

for ((i = 2; i <= NODES; i++)); do
    ctl "$i" stop_app >/dev/null
    ctl "$i" join_cluster "$(node_name 1)" >/dev/null || die "$(node_name "$i") could not join"
    ctl "$i" start_app >/dev/null
    echo "joined $(node_name "$i") to $(node_name 1)"
done
ctl 1 await_online_nodes "$NODES" --timeout "$TIMEOUT" >/dev/null \
    || die "the cluster did not reach $NODES running nodes"

urls=""
for ((i = 0; i < NODES; i++)); do urls+="${urls:+,}amqp://guest:guest@127.0.0.1:$((BASE + i))/%2F"; done
echo "$urls" >"$DIR/amqp-urls"
echo "cluster of $NODES nodes running; CTI_JOURNAL_BROKER__URLS=$urls"
echo "CLI: (. $DIR/node1/env && $BIN/rabbitmqctl -n $(node_name 1) cluster_status)"
