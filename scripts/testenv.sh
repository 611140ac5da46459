#!/usr/bin/env bash
# testenv.sh start DIR | stop DIR | run -- CMD...
#
# Starts private MariaDB and Redis servers on free loopback ports with their
# state under DIR, and writes DIR/env with the variables the Go tests read
# (BASALT_TEST_MYSQL_DSN, BASALT_TEST_REDIS_ADDR). Installs the Debian
# packages first when they are missing. "run" starts both in a temporary
# directory, runs the command with the variables set, and stops them.
set -euo pipefail

need_pkgs() {
  local missing=()
  command -v mariadbd >/dev/null 2>&1 || command -v mysqld >/dev/null 2>&1 || missing+=(mariadb-server)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  # swaks drives the SMTP interop tests (plain, STARTTLS, AUTH).
  command -v swaks >/dev/null 2>&1 || missing+=(swaks)
  # Postfix's smtp-sink is the smarthost in the outbound queue tests and
  # smtp-source a client in the SMTP interop tests; both are in /usr/sbin.
  command -v smtp-sink >/dev/null 2>&1 || [ -x /usr/sbin/smtp-sink ] || missing+=(postfix)
  # curl and fetchmail are POP3 clients in the POP3 interop tests.
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  command -v fetchmail >/dev/null 2>&1 || missing+=(fetchmail)
  # mbsync (isync) and mutt are IMAP clients in the IMAP interop tests.
  command -v mbsync >/dev/null 2>&1 || missing+=(isync)
  command -v mutt >/dev/null 2>&1 || missing+=(mutt)
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "testenv: installing ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  # The packages' maintainer scripts try to start system services; we start
  # our own private servers instead, so tell invoke-rc.d not to.
  local policy=/usr/sbin/policy-rc.d created=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod +x "$policy" && created=1
  fi
  # Postfix asks what kind of mail server it should be; "No configuration"
  # installs the programs and writes no main.cf, so there is nothing for a
  # system postfix to run with even if something tried to start it.
  if [[ " ${missing[*]} " == *" postfix "* ]]; then
    echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null ||
    { $sudo apt-get update -q >/dev/null && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; }
  [ -n "$created" ] && $sudo rm -f "$policy"
  return 0
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
  local dir=$1
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  need_pkgs

  local rport mport user
  rport=$(free_port)
  redis-server --bind 127.0.0.1 --port "$rport" --save '' --appendonly no \
    --dir "$dir" --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"

  mport=$(free_port)
  user=$(id -un)
  local mysqld
  mysqld=$(command -v mariadbd || command -v mysqld)
  mkdir -p "$dir/mysql"
  mariadb-install-db --no-defaults --datadir="$dir/mysql" --user="$user" \
    --auth-root-authentication-method=normal --skip-test-db >"$dir/mysql-install.log" 2>&1
  "$mysqld" --no-defaults --datadir="$dir/mysql" --user="$user" \
    --bind-address=127.0.0.1 --port="$mport" --socket="$dir/mysql.sock" \
    --pid-file="$dir/mysql.pid" --log-error="$dir/mysql.log" \
    --skip-name-resolve --innodb-buffer-pool-size=256M --max-connections=1000 \
    --innodb-flush-log-at-trx-commit=1 --character-set-server=utf8mb4 \
    --collation-server=utf8mb4_bin >/dev/null 2>&1 &
  echo $! >"$dir/mysql.launcher.pid"

  for _ in $(seq 1 120); do
    if mariadb-admin --no-defaults -uroot -h127.0.0.1 -P"$mport" ping >/dev/null 2>&1 &&
       redis-cli -h 127.0.0.1 -p "$rport" ping >/dev/null 2>&1; then
      cat >"$dir/env" <<ENV
export BASALT_TEST_MYSQL_DSN='root@tcp(127.0.0.1:$mport)/'
export BASALT_TEST_REDIS_ADDR='127.0.0.1:$rport'
ENV
      echo "testenv: MariaDB on 127.0.0.1:$mport, Redis on 127.0.0.1:$rport ($dir)" >&2
      return 0
    fi
    sleep 0.5
  done
  echo "testenv: servers did not come up; logs in $dir" >&2
  tail -20 "$dir/mysql.log" "$dir/redis.log" >&2 || true
  return 1
}

stop() {
  local dir=$1 pid
  for f in redis.pid mysql.pid; do
    if [ -f "$dir/$f" ]; then
      pid=$(cat "$dir/$f")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    fi
  done
}

case "${1:-}" in
  start) start "$2" ;;
  stop) stop "$2" ;;
  run)
    shift; [ "${1:-}" = "--" ] && shift
    dir=$(mktemp -d "${TMPDIR:-/tmp}/basalt-testenv.XXXXXX")
    trap 'stop "$dir"; rm -rf "$dir"' EXIT
    start "$dir"
    # shellcheck disable=SC1091
    . "$dir/env"
    "$@"
    ;;
  *) echo "usage: $0 start DIR | stop DIR | run -- CMD..." >&2; exit 2 ;;
esac
