#!/usr/bin/env bash
# bench-smtp.sh: Postfix's smtp-source sends 10,000 messages of 4 KB over
# 10 connections into Basalt's MX listener, first on SQLite and then on
# MariaDB, and prints messages per second with durable storage. Run it
# through `make bench-smtp`, which provides MariaDB (testenv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

MESSAGES=${MESSAGES:-10000}
SESSIONS=${SESSIONS:-10}
SIZE=${SIZE:-4096}
SOURCE=$(command -v smtp-source || echo /usr/sbin/smtp-source)
[ -x "$SOURCE" ] || { echo "bench-smtp: smtp-source not found (Debian package postfix)" >&2; exit 1; }

go build -o bin/basalt ./cmd/basalt
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run() {
  local name=$1 dbconf=$2 work pid mx
  work=$(mktemp -d "${TMPDIR:-/tmp}/basalt-bench.XXXXXX")
  mx=$(free_port)
  cat >"$work/basalt.toml" <<CONF
data_dir = "$work/data"
[log]
level = "warn"
$dbconf
[http]
listen = "127.0.0.1:$(free_port)"
[smtp]
hostname = "bench.example.org"
mx_listen = "127.0.0.1:$mx"
submission_listen = "127.0.0.1:$(free_port)"
submissions_listen = "127.0.0.1:$(free_port)"
lmtp_listen = "127.0.0.1:$(free_port)"
max_connections_per_ip = 100
max_messages_per_conn = 100000
[pop3]
listen = "off"
tls_listen = "off"
[imap]
listen = "off"
tls_listen = "off"
CONF
  ./bin/basalt domain add example.org -config "$work/basalt.toml"
  echo "benchmark password" | ./bin/basalt user add bench@example.org --password-stdin -config "$work/basalt.toml"
  ./bin/basalt serve -config "$work/basalt.toml" 2>"$work/serve.log" &
  pid=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$mx") 2>/dev/null && break
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "bench-smtp $name: basalt did not start:" >&2
      cat "$work/serve.log" >&2
      rm -rf "$work"
      return 1
    fi
    sleep 0.1
  done
  local start end
  start=$(date +%s.%N)
  "$SOURCE" -d -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" -f sender@elsewhere.test -t bench@example.org "127.0.0.1:$mx"
  end=$(date +%s.%N)
  kill "$pid"; wait "$pid" || true
  local got
  got=$(./bin/basalt user show bench@example.org -config "$work/basalt.toml" | awk '/^messages:/ {print $2}')
  python3 -c "import sys; n=$MESSAGES; t=$end-$start; print(f'bench-smtp {sys.argv[1]}: {n} messages of $SIZE bytes over $SESSIONS connections in {t:.2f}s = {n/t:.0f} msg/s (stored: {sys.argv[2]})')" "$name" "$got"
  if [ "$got" != "$MESSAGES" ]; then
    echo "bench-smtp $name: $got of $MESSAGES messages stored" >&2
    tail -20 "$work/serve.log" >&2
    rm -rf "$work"
    return 1
  fi
  rm -rf "$work"
}

run sqlite '[database]
driver = "sqlite"'

if [ -n "${BASALT_TEST_MYSQL_DSN:-}" ]; then
  db="bench_$$"
  mariadb --no-defaults -uroot -h127.0.0.1 -P"$(echo "$BASALT_TEST_MYSQL_DSN" | sed 's/.*:\([0-9]*\)).*/\1/')" \
    -e "CREATE DATABASE $db CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
  run mariadb "[database]
driver = \"mysql\"
dsn = \"${BASALT_TEST_MYSQL_DSN}${db}\""
fi
