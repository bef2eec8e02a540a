#!/bin/sh
# The official image's environment, as rabbitmq.conf: the default user and vhost are created on
# a node's first start (an empty data volume), as there.
set -eu
{
    echo "loopback_users = none"
    echo "listeners.tcp.default = 5672"
    [ -n "${RABBITMQ_DEFAULT_USER:-}" ] && echo "default_user = $RABBITMQ_DEFAULT_USER"
    [ -n "${RABBITMQ_DEFAULT_PASS:-}" ] && echo "default_pass = $RABBITMQ_DEFAULT_PASS"
    [ -n "${RABBITMQ_DEFAULT_VHOST:-}" ] && echo "default_vhost = $RABBITMQ_DEFAULT_VHOST"
    true
} > /etc/rabbitmq/rabbitmq.conf
chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
export HOME=/var/lib/rabbitmq RABBITMQ_LOGS=-   # the Erlang cookie's home; logs to stdout
# setpriv execs (no parent left behind), so a stop signal reaches the server itself.
exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups /usr/lib/rabbitmq/bin/rabbitmq-server
