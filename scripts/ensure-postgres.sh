#!/usr/bin/env bash
# Make sure a PostgreSQL server answers on 127.0.0.1:5432, and print the URL of a database on
# it where the tests and benchmarks may create and drop databases.
#   --install   install Debian's postgresql if it is missing (CI does; needs root)
# Without a server (and without --install) it prints nothing and exits 1: callers then skip
# PostgreSQL, saying so.
set -euo pipefail
default_url="${PQF_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if ! command -v pg_ctlcluster >/dev/null; then
    if [ "${1:-}" != "--install" ]; then
      echo "PostgreSQL is not installed here." >&2
      exit 1
    fi
    echo "Installing PostgreSQL..." >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  version=$(ls /etc/postgresql | sort -V | tail -1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
  for _ in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 0.5
  done
fi
pg_isready -q -h 127.0.0.1 -p 5432 || { echo "PostgreSQL did not start." >&2; exit 1; }

if psql "$default_url" -qAtc 'select 1' >/dev/null 2>&1; then
  echo "$default_url"
  exit 0
fi
# A fresh Debian cluster has no password-less TCP login: let root in over the socket.
if [ "$(id -u)" -eq 0 ] && id postgres >/dev/null 2>&1; then
  su postgres -c "psql -qc 'DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ''root'') THEN CREATE ROLE root SUPERUSER LOGIN; END IF; END\$\$'" >&2
  echo "postgresql://root@/postgres?host=/var/run/postgresql"
  exit 0
fi
echo "PostgreSQL answers but will not let this user in; set PQF_TEST_POSTGRES_URL." >&2
exit 1
