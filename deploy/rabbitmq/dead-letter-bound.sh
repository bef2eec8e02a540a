#!/usr/bin/env bash
# A bound on cti-journal's dead-letter queue <prefix>.dead, as a RabbitMQ policy. Run on a broker
# node as root (or the rabbitmq user); idempotent: run it again with other limits to change them.
#
#   deploy/rabbitmq/dead-letter-bound.sh [--vhost cti-journal] [--prefix cti-journal]
#                                        [--max-bytes 1073741824] [--max-length 1000000]
#                                        [--node rabbit@host]
#
# Why a policy and not queue arguments: a queue's arguments cannot change once it exists
# (shared/topology.py), a policy applies to the running queue at once and can be changed later.
#
# Why `reject-publish` and not `drop-head`: every dead letter is a call missing from the journal
# (or its raw line), waiting for an admin to replay it. drop-head would delete the oldest ones
# silently, so a flood of garbage lines would erase the real calls that failed before it.
# reject-publish refuses the new letter instead: a worker keeps that entry in its work queue (the
# work queues dead-letter `at-least-once`) and retries, the gateway keeps a refused line and stops
# reading its source until there is room (the CTI server buffers). Nothing is lost; the journal
# stops, and CtiJournalDeadLetterQueueFilling (deploy/prometheus/alerts.yml) fires at 80 % first.
# The work queues are not bounded by this policy (its pattern matches <prefix>.dead only).
# Prometheus learns the bound from cti_journal:dead_queue_max_bytes (recording.yml): keep both
# the same.
set -euo pipefail

VHOST=cti-journal
PREFIX=cti-journal
MAX_BYTES=1073741824
MAX_LENGTH=1000000
NODE=

die() { printf 'dead-letter-bound: %s\n' "$*" >&2; exit 1; }
while [ $# -gt 0 ]; do
    case $1 in
        --vhost) VHOST=$2; shift 2 ;;
        --prefix) PREFIX=$2; shift 2 ;;
        --max-bytes) MAX_BYTES=$2; shift 2 ;;
        --max-length) MAX_LENGTH=$2; shift 2 ;;
        --node) NODE=$2; shift 2 ;;
        -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[[ "$PREFIX" =~ ^[A-Za-z0-9._-]+$ ]] || die "--prefix: letters, digits, '.', '_' and '-' only"
[[ "$MAX_BYTES" =~ ^[1-9][0-9]*$ ]] || die "--max-bytes: a whole number of bytes"
[[ "$MAX_LENGTH" =~ ^[1-9][0-9]*$ ]] || die "--max-length: a whole number of messages"

RABBITMQCTL=${RABBITMQCTL:-rabbitmqctl}
ctl() { if [ -n "$NODE" ]; then "$RABBITMQCTL" -q -n "$NODE" "$@"; else "$RABBITMQCTL" -q "$@"; fi; }

PATTERN="^${PREFIX//./\\.}\\.dead\$"
DEFINITION=$(printf '{"max-length-bytes":%s,"max-length":%s,"overflow":"reject-publish"}' \
    "$MAX_BYTES" "$MAX_LENGTH")
ctl set_policy -p "$VHOST" --apply-to queues --priority 10 \
    "${PREFIX}-dead-letter-bound" "$PATTERN" "$DEFINITION"
echo "policy ${PREFIX}-dead-letter-bound on vhost $VHOST: $PATTERN $DEFINITION"
