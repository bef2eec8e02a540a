#!/bin/sh
# The official image's environment, as a conf.d file: the default user and vhost are created on
# a node's first start (an empty data volume), as there. Without RABBITMQ_DEFAULT_USER the node
# has only `guest`.
set -eu
{
    [ -n "${RABBITMQ_DEFAULT_USER:-}" ] && echo "default_user = $RABBITMQ_DEFAULT_USER"
    [ -n "${RABBITMQ_DEFAULT_PASS:-}" ] && echo "default_pass = $RABBITMQ_DEFAULT_PASS"
    [ -n "${RABBITMQ_DEFAULT_VHOST:-}" ] && echo "default_vhost = $RABBITMQ_DEFAULT_VHOST"
    true
} > /etc/rabbitmq/conf.d/11-environment.conf
chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
export RABBITMQ_LOGS=-   # logs to stdout
# setpriv execs (no parent left behind), so a stop signal reaches the server itself.
exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups /usr/lib/rabbitmq/bin/rabbitmq-server
