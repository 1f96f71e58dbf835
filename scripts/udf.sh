#!/usr/bin/env bash
# Build the detection job's table function (streaming/udf) into
# $PATTERNALARM_CACHE/jars/<hash of streaming/udf/**>/udf/patternalarm-udf.jar.
#
# Same rules as jars.sh: outside the repo (Maven's build directory and repository are in the cache,
# so the work tree stays clean), keyed by a hash of the module's files so an edit builds a new jar
# and an unchanged module is never built twice, made under a temporary name and renamed with a
# .complete marker. When the jar exists this prints and exits in milliseconds.
#
# Output (eval-friendly):  UDF_JAR=/abs/path/patternalarm-udf.jar
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${PATTERNALARM_CACHE:-$HOME/.cache/patternalarm}"
cache="${cache/#\~/$HOME}"
module="streaming/udf"
# Paths relative to the repo, sorted bytewise, so every clone of the same sources gets the same hash.
hash="$(cd "$repo" && find "$module" -type f -not -path '*/target/*' -print0 | LC_ALL=C sort -z \
  | xargs -0 sha256sum | sha256sum | cut -c1-16)"
dest="$cache/jars/$hash/udf"
jar="$dest/patternalarm-udf.jar"

if [[ -f "$dest/.complete" ]]; then
  echo "UDF_JAR=$jar"
  exit 0
fi

command -v mvn >/dev/null || { echo "udf.sh: mvn not found; install Maven (apt-get install maven)" >&2; exit 1; }
mkdir -p "$cache/jars/$hash" "$cache/logs"
tmp="$(mktemp -d "$cache/jars/$hash/.udf.XXXXXX")"
log="$cache/logs/udf-$hash.log"
trap 'rm -rf "$tmp"' EXIT
echo "udf.sh: building $module ($hash, log: $log)" >&2
if ! mvn -q -B -f "$repo/$module/pom.xml" -Dmaven.repo.local="$cache/m2" -Dudf.build.dir="$tmp/build" \
    package >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  echo "udf.sh: maven failed for $module; full log: $log" >&2
  exit 1
fi
mkdir -p "$tmp/out"
cp "$tmp/build/patternalarm-udf.jar" "$tmp/out/"
touch "$tmp/out/.complete"
# Another run may have finished first: keep its folder, drop ours.
if ! mv -T "$tmp/out" "$dest" 2>/dev/null; then
  [[ -f "$dest/.complete" ]] || { rm -rf "$dest"; mv -T "$tmp/out" "$dest"; }
fi
echo "UDF_JAR=$jar"
