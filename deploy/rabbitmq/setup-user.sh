#!/usr/bin/env bash
# A dedicated RabbitMQ vhost for cti-journal and ONE USER PER ROLE, each allowed exactly what its
# process does. Run on a broker node as root (or the rabbitmq user); idempotent: run it again to
# reset the permissions or, with --rotate, the passwords.
#
#   deploy/rabbitmq/setup-user.sh [--vhost cti-journal] [--user cti-journal] [--prefix cti-journal]
#                                 [--node rabbit@host] [--url-host mq1.example.local] [--rotate]
#                                 [--out-dir /etc/cti-journal] [--roles "gateway lookup ..."]
#
# Users (<user>-<role>) and what each may do on the vhost (P = the prefix, regex-escaped):
#   gateway  publish to the exchange P; nothing else
#   lookup   publish to the exchange P; consume P.lookup
#   writer   publish to the exchange P; consume P.write
#   admin    the topology: declare the exchange and queues (configure, which also means delete),
#            dlq list/replay/purge, subject requests (consume P.dead); for operators only
#   keda     nothing but look at queue lengths (tag `monitoring`; an empty permission entry on
#            the vhost lets it declare a queue passively, which is how KEDA reads a length)
# The process roles have no configure permission: their config sets
# `broker.declare_topology = false` and they use the topology the admin declared - run
# `cti-journal check --only broker` once with the admin's URL (and again after an upgrade that
# changes queue arguments). No role can read another role's queue, publish anywhere but P, touch
# a name outside the prefix or use another vhost. No user has a tag but keda's `monitoring`.
#
# Passwords are generated (or kept), given to rabbitmqctl on standard input (never on a command
# line, where `ps` would show it), and written only into <out-dir>/amqp-url-<role> as the
# ready-made AMQP URL (mode 0600), for broker.urls_file of that role's process.
set -euo pipefail

VHOST=cti-journal
USER_NAME=cti-journal
PREFIX=cti-journal
NODE=
URL_HOST=$(hostname -f 2>/dev/null || hostname)
OUT_DIR=/etc/cti-journal
ROTATE=no
ROLES="gateway lookup writer admin keda"
SCHEME=amqps
PORT=5671

die() { printf 'setup-user: %s\n' "$*" >&2; exit 1; }
while [ $# -gt 0 ]; do
    case $1 in
        --vhost) VHOST=$2; shift 2 ;;
        --user) USER_NAME=$2; shift 2 ;;
        --prefix) PREFIX=$2; shift 2 ;;
        --node) NODE=$2; shift 2 ;;
        --url-host) URL_HOST=$2; shift 2 ;;
        --out-dir) OUT_DIR=$2; shift 2 ;;
        --roles) ROLES=$2; shift 2 ;;
        --plain) SCHEME=amqp; PORT=5672; shift ;;  # URLs without TLS (a test broker)
        --rotate) ROTATE=yes; shift ;;
        -h | --help) sed -n '2,26p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[[ "$PREFIX" =~ ^[A-Za-z0-9._-]+$ ]] || die "--prefix: letters, digits, '.', '_' and '-' only"
for role in $ROLES; do
    case $role in gateway | lookup | writer | admin | keda) ;; *) die "unknown role $role" ;; esac
done

# RABBITMQCTL: another CLI, e.g. /usr/lib/rabbitmq/bin/rabbitmqctl for a node with its own cookie.
RABBITMQCTL=${RABBITMQCTL:-rabbitmqctl}
ctl() { if [ -n "$NODE" ]; then "$RABBITMQCTL" -q -n "$NODE" "$@"; else "$RABBITMQCTL" -q "$@"; fi; }

# Escape the regex metacharacter '.' of the prefix: "cti.journal" must not match "ctiXjournal".
P="${PREFIX//./\\.}"
ALL="^${P}(\\..*)?\$"      # the exchange and every queue of the topology
EXCHANGE="^${P}\$"
NOTHING='^$'

# configure / write / read per role. Declaring a queue with a dead-letter exchange needs read
# on the queue and write on the exchange too, so the admin role has all three on every name.
permissions() {
    case $1 in
        gateway) echo "$NOTHING" "$EXCHANGE" "$NOTHING" ;;
        lookup) echo "$NOTHING" "$EXCHANGE" "^${P}\\.lookup\$" ;;
        writer) echo "$NOTHING" "$EXCHANGE" "^${P}\\.write\$" ;;
        admin) echo "$ALL" "$ALL" "$ALL" ;;
        keda) echo "$NOTHING" "$NOTHING" "$NOTHING" ;;
    esac
}

if ! ctl list_vhosts name | grep -qx -- "$VHOST"; then
    ctl add_vhost "$VHOST"
    echo "created vhost $VHOST"
fi

existing_users=$(ctl list_users | awk '{print $1}')
new_password() { head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32; }
vhost_enc=$(printf '%s' "$VHOST" | sed 's/%/%25/g; s#/#%2F#g')
mkdir -p "$OUT_DIR"
for role in $ROLES; do
    user="$USER_NAME-$role"
    password=
    if ! printf '%s\n' "$existing_users" | grep -qx -- "$user"; then
        password=$(new_password)
        printf '%s' "$password" | ctl add_user "$user" >/dev/null
        echo "created user $user"
    elif [ "$ROTATE" = yes ]; then
        password=$(new_password)
        printf '%s' "$password" | ctl change_password "$user" >/dev/null
        echo "new password for $user"
    else
        echo "user $user exists; password unchanged (--rotate for a new one)"
    fi
    if [ "$role" = keda ]; then ctl set_user_tags "$user" monitoring; else ctl set_user_tags "$user"; fi
    read -r configure write read <<<"$(permissions "$role")"
    ctl set_permissions -p "$VHOST" "$user" "$configure" "$write" "$read"
    # Nothing on the default vhost "/" (the broker's other users live there).
    [ "$VHOST" = / ] || ctl clear_permissions -p / "$user" >/dev/null 2>&1 || true
    echo "permissions of $user on vhost $VHOST: configure $configure, write $write, read $read"
    if [ -n "$password" ]; then
        out="$OUT_DIR/amqp-url-$role"
        (umask 077 && printf '%s://%s:%s@%s:%s/%s\n' "$SCHEME" "$user" "$password" "$URL_HOST" \
            "$PORT" "$vhost_enc" >"$out")
        echo "wrote the AMQP URL of $user to $out (mode 0600)"
    fi
done
