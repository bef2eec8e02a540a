#!/usr/bin/env bash
# A dedicated RabbitMQ vhost and user for cti-journal, allowed to touch only the project's own
# exchange and queues. Run on a broker node as root (or the rabbitmq user); idempotent: run it
# again to reset the permissions or, with --rotate, the password.
#
#   deploy/rabbitmq/setup-user.sh [--vhost cti-journal] [--user cti-journal] [--prefix cti-journal]
#                                 [--node rabbit@host] [--url-host mq1.example.local] [--rotate]
#                                 [--out /etc/cti-journal/amqp-urls]
#
# Permissions: configure, write and read on `^<prefix>(\..*)?$` only - the exchange <prefix> and
# the queues <prefix>.lookup, .write, .dead, .retry.* (shared/topology.py). The user cannot see or
# touch anything else on the broker, has no management-UI tag, and cannot use amq.* exchanges.
# broker.prefix in the config must be the same prefix.
#
# The password is generated (or kept), given to rabbitmqctl on standard input (never on a command
# line, where `ps` would show it), and written only into --out as the ready-made AMQP URL
# (mode 0600), for broker.urls_file or the systemd credential /etc/cti-journal/amqp-urls.
set -euo pipefail

VHOST=cti-journal
USER_NAME=cti-journal
PREFIX=cti-journal
NODE=
URL_HOST=$(hostname -f 2>/dev/null || hostname)
OUT=/etc/cti-journal/amqp-urls
ROTATE=no

die() { printf 'setup-user: %s\n' "$*" >&2; exit 1; }
while [ $# -gt 0 ]; do
    case $1 in
        --vhost) VHOST=$2; shift 2 ;;
        --user) USER_NAME=$2; shift 2 ;;
        --prefix) PREFIX=$2; shift 2 ;;
        --node) NODE=$2; shift 2 ;;
        --url-host) URL_HOST=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --rotate) ROTATE=yes; shift ;;
        -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[[ "$PREFIX" =~ ^[A-Za-z0-9._-]+$ ]] || die "--prefix: letters, digits, '.', '_' and '-' only"

# RABBITMQCTL: another CLI, e.g. /usr/lib/rabbitmq/bin/rabbitmqctl for a node with its own cookie.
RABBITMQCTL=${RABBITMQCTL:-rabbitmqctl}
ctl() { if [ -n "$NODE" ]; then "$RABBITMQCTL" -q -n "$NODE" "$@"; else "$RABBITMQCTL" -q "$@"; fi; }

# Escape the regex metacharacter '.' of the prefix: "cti.journal" must not match "ctiXjournal".
PATTERN="^${PREFIX//./\\.}(\\..*)?\$"

if ! ctl list_vhosts name | grep -qx -- "$VHOST"; then
    ctl add_vhost "$VHOST"
    echo "created vhost $VHOST"
fi

new_password() { head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32; }
PASSWORD=
if ! ctl list_users | awk '{print $1}' | grep -qx -- "$USER_NAME"; then
    PASSWORD=$(new_password)
    printf '%s' "$PASSWORD" | ctl add_user "$USER_NAME" >/dev/null
    echo "created user $USER_NAME"
elif [ "$ROTATE" = yes ]; then
    PASSWORD=$(new_password)
    printf '%s' "$PASSWORD" | ctl change_password "$USER_NAME" >/dev/null
    echo "new password for $USER_NAME"
else
    echo "user $USER_NAME exists; password unchanged (--rotate for a new one)"
fi
ctl set_user_tags "$USER_NAME"   # no tags: no management UI, no policies
ctl set_permissions -p "$VHOST" "$USER_NAME" "$PATTERN" "$PATTERN" "$PATTERN"
# Nothing on the default vhost "/" (the broker's other users live there).
[ "$VHOST" = / ] || ctl clear_permissions -p / "$USER_NAME" >/dev/null 2>&1 || true
echo "permissions of $USER_NAME on vhost $VHOST: configure/write/read $PATTERN"

if [ -n "$PASSWORD" ]; then
    vhost_enc=$(printf '%s' "$VHOST" | sed 's/%/%25/g; s#/#%2F#g')
    mkdir -p "$(dirname "$OUT")"
    (umask 077 && printf 'amqps://%s:%s@%s:5671/%s\n' "$USER_NAME" "$PASSWORD" "$URL_HOST" "$vhost_enc" >"$OUT")
    echo "wrote the AMQP URL to $OUT (mode 0600; amqps on 5671 - edit to amqp://...:5672 without TLS)"
fi
