#!/usr/bin/env bash
# One command for a fresh Debian 12 machine (as root): installs what the project needs from its
# own files, starts the services, builds the virtualenv, then runs the demo or the test suite.
#
#   bash deploy/setup.sh demo [demo options]   # simulator → gateway → lookup → writer → SQLite
#   bash deploy/setup.sh test [pytest options] # lint, types, unit + integration + fault tests
#   bash deploy/setup.sh install               # only the set-up
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=${1:-install}
shift || true

log() { printf '\n== %s\n' "$*"; }
die() { printf '\nsetup FAILED: %s\n' "$*" >&2; exit 1; }

DEMO_PACKAGES=(python3 python3-venv python3-pip unixodbc unixodbc-dev libsqliteodbc rabbitmq-server)
# prometheus: promtool for the alert unit tests and a real Prometheus for tests/integration/test_prometheus_alerts.py
# systemd: systemd-analyze verify for the units (tests/unit/test_deploy_files.py)
# openssl: the test CA of the throwaway slapd and Radicale (tests/support/slapd.py)
# podman … debootstrap: the container tier (tests/container/: runc, since crun refuses this kind of
# machine's hybrid cgroups; catatonit for kube play's pods; debootstrap makes the base images, as
# no registry is reachable)
TEST_PACKAGES=(odbc-postgresql odbc-mariadb postgresql mariadb-server mariadb-client iproute2 procps prometheus systemd openssl
    podman runc buildah uidmap slirp4netns fuse-overlayfs containernetworking-plugins
    golang-github-containernetworking-plugin-dnsname iptables catatonit debootstrap)
# The ldap source's tests run Debian's slapd as an ordinary process from the unpacked package, so
# nothing is installed as a system service: the packages are only downloaded into the test cache.
SLAPD_PACKAGES=(slapd libldap-2.5-0)
TEST_CACHE=${CTI_JOURNAL_TEST_CACHE:-/var/tmp/cti-journal-test-cache}

install_packages() {
    local wanted=("${DEMO_PACKAGES[@]}")
    [ "$MODE" = demo ] || wanted+=("${TEST_PACKAGES[@]}")
    local missing=()
    for p in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing Debian packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    odbcinst -q -d | grep -q '^\[SQLite3\]' || die "the SQLite3 ODBC driver is not registered (libsqliteodbc)"
}

# Debian registers psqlODBC with CommLog=1: every process that connects leaves a
# /tmp/psqlodbc_<program>_<user><pid>.log behind (thousands a day on busy hosts: irods/irods#6563),
# and a connection string cannot turn it off. Off in the PostgreSQL drivers' sections only.
quiet_psqlodbc() {
    local ini=/etc/odbcinst.ini tmp
    [ -f "$ini" ] || return 0
    tmp=$(mktemp)
    awk '/^[ \t]*\[/ { pg = ($0 ~ /^[ \t]*\[PostgreSQL/) }
         pg && /^[ \t]*CommLog[ \t]*=[ \t]*1[ \t]*$/ { $0 = "CommLog=0" } { print }' "$ini" > "$tmp" \
        || { rm -f "$tmp"; die "could not read $ini"; }
    # written in place: the file keeps its owner, mode (the services read it) and any symlink
    cmp -s "$tmp" "$ini" || cat "$tmp" > "$ini" || { rm -f "$tmp"; die "could not set CommLog=0 in $ini"; }
    rm -f "$tmp"
}

fetch_slapd() {
    local debs="$TEST_CACHE/slapd-debs"
    ls "$debs"/slapd_*.deb >/dev/null 2>&1 && return 0
    log "downloading ${SLAPD_PACKAGES[*]} into $debs (for the ldap tests; not installed)"
    mkdir -p "$debs"
    # apt-get download needs package lists; on a fresh machine there are none yet.
    (cd "$debs" && apt-get download -qq "${SLAPD_PACKAGES[@]}" >/dev/null 2>&1) \
        || { apt-get update -qq && (cd "$debs" && apt-get download -qq "${SLAPD_PACKAGES[@]}" >/dev/null); } \
        || die "apt-get download ${SLAPD_PACKAGES[*]} failed"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {  # port seconds name
    local i
    for ((i = 0; i < $2 * 2; i++)); do port_open "$1" && return 0; sleep 0.5; done
    die "$3 did not start listening on 127.0.0.1:$1 within $2 s"
}

start_rabbitmq() {
    port_open 5672 && return 0
    log "starting RabbitMQ"
    rabbitmq-server -detached || die "rabbitmq-server -detached failed"
    wait_port 5672 90 RabbitMQ
    rabbitmqctl await_startup >/dev/null 2>&1 || true
}

start_postgresql() {
    if ! port_open 5432; then
        log "starting PostgreSQL"
        local version
        version=$(ls /etc/postgresql | sort -V | tail -1)
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || die "PostgreSQL $version did not start"
        wait_port 5432 60 PostgreSQL
    fi
    # The tests connect as root over TCP to database "test" (trust, as on the development machines).
    if ! psql -h 127.0.0.1 -U root -d test -Atc 'select 1' >/dev/null 2>&1; then
        log "preparing PostgreSQL role root and database test"
        su postgres -c "psql -Atc \"select 1 from pg_roles where rolname='root'\"" | grep -q 1 \
            || su postgres -c "createuser --superuser root"
        su postgres -c "psql -Atc \"select 1 from pg_database where datname='test'\"" | grep -q 1 \
            || su postgres -c "createdb -O root test"
        if ! psql -h 127.0.0.1 -U root -d test -Atc 'select 1' >/dev/null 2>&1; then
            local hba
            hba=$(su postgres -c "psql -Atc 'show hba_file'")
            sed -i '1i host test root 127.0.0.1/32 trust' "$hba"
            su postgres -c "psql -Atc 'select pg_reload_conf()'" >/dev/null
        fi
        psql -h 127.0.0.1 -U root -d test -Atc 'select 1' >/dev/null || die "cannot connect to PostgreSQL as root@127.0.0.1/test"
    fi
}

start_mariadb() {
    if ! port_open 3306; then
        log "starting MariaDB"
        # A fresh Debian machine may lack /run/mysqld (shared/measurements.md).
        mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
        start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql \
            || die "mariadbd did not start"
        wait_port 3306 60 MariaDB
    fi
    if ! mariadb -h 127.0.0.1 -u root -e 'select 1' test >/dev/null 2>&1; then
        log "preparing MariaDB database test and root over TCP"
        mariadb -u root -e "CREATE DATABASE IF NOT EXISTS test" || die "cannot reach MariaDB as root"
        mariadb -u root -e "ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket" || true
        mariadb -h 127.0.0.1 -u root -e 'select 1' test >/dev/null || die "cannot connect to MariaDB as root@127.0.0.1/test"
    fi
}

build_venv() {
    local stamp=.venv/.cti-journal-installed
    if [ ! -x .venv/bin/python ]; then
        log "creating the virtualenv .venv"
        python3 -m venv .venv || die "python3 -m venv failed (is python3-venv installed?)"
    fi
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        log "installing the project and its Python dependencies from pyproject.toml"
        .venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
        .venv/bin/pip install -q -e '.[dev]' || die "pip install failed"
        touch "$stamp"
    fi
}

install_packages
quiet_psqlodbc
start_rabbitmq
if [ "$MODE" != demo ]; then
    start_postgresql
    start_mariadb
    fetch_slapd
fi
build_venv

case "$MODE" in
    install) log "set-up done" ;;
    demo)
        log "running the demo"
        exec .venv/bin/cti-journal demo "$@"
        ;;
    test)
        log "lint and types"
        bash deploy/check-code.sh
        log "tests (unit, integration against the real services, faults)"
        set +e
        .venv/bin/pytest "$@"
        code=$?
        set -e
        [ $code -eq 5 ] && die "pytest collected no tests"
        exit $code
        ;;
    *) die "unknown mode $MODE (demo, test or install)" ;;
esac
