# Finds or starts a Postgres for the tests and exports DATABASE_URL.
# Sourced by scripts/test.

pg_bin_dir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

can_connect() {
  psql "$1" -qAtc 'SELECT 1' >/dev/null 2>&1
}

ensure_test_postgres() {
  if [ -n "${DATABASE_URL:-}" ] && can_connect "$DATABASE_URL"; then
    return
  fi
  local system_url="postgres://postgres@127.0.0.1:5432/postgres"
  if ! can_connect "$system_url" && command -v pg_ctlcluster >/dev/null 2>&1; then
    # The machine's own cluster may just be stopped.
    for version in $(ls /etc/postgresql 2>/dev/null); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
    done
  fi
  if can_connect "$system_url"; then
    export DATABASE_URL="$system_url"
    return
  fi
  # Fall back to a private cluster with trust auth on its own port.
  local bin dir port=55432 user=""
  bin="$(pg_bin_dir)"
  dir="${TMPDIR:-/tmp}/onair-test-pg"
  [ "$(id -u)" -eq 0 ] && user="postgres"
  run_pg() { if [ -n "$user" ]; then runuser -u "$user" -- "$@"; else "$@"; fi; }
  if [ ! -f "$dir/PG_VERSION" ]; then
    mkdir -p "$dir"
    [ -n "$user" ] && chown "$user" "$dir"
    run_pg "$bin/initdb" -D "$dir" -U postgres -A trust -E UTF8 --locale=C >/dev/null
  fi
  if ! run_pg "$bin/pg_ctl" status -D "$dir" >/dev/null 2>&1; then
    run_pg "$bin/pg_ctl" start -D "$dir" -w -l "$dir/server.log" \
      -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c max_connections=200" >/dev/null
  fi
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  can_connect "$DATABASE_URL" || { echo "test: cannot reach a Postgres" >&2; exit 1; }
}
