#!/usr/bin/env bash
# Debian packages the stack needs and a fresh machine may lack: PostgreSQL 15, Java 17, Maven.
# Installs only what is missing, so a second run costs a few milliseconds.
set -euo pipefail
missing=()
command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql postgresql-client)
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "system_packages: missing ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "system_packages: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Debian creates the cluster when it installs the server; a machine where it was removed gets one back.
if command -v pg_lsclusters >/dev/null && [[ -z "$(pg_lsclusters --no-header 2>/dev/null)" ]]; then
  pg_createcluster 15 main >/dev/null
fi
