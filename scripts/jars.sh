#!/usr/bin/env bash
# Fetch the pinned JVM jars of pom.xml into $PATTERNALARM_CACHE/jars/<pom hash>/{kafka,flink}.
#
# Why a hash folder outside the repo: jars never enter git, clones (CI) share one download, and a
# changed pin lands in a new folder instead of mixing versions. A folder is complete only when its
# .complete marker exists; it is built under a temporary name and renamed, so an interrupted fetch
# leaves nothing that looks usable. When the folder is already complete this prints and exits at once.
#
# It also builds the job's own table function through scripts/udf.sh (same caching rules).
#
# Output (eval-friendly):  KAFKA_JARS=/abs/path   FLINK_JARS=/abs/path   UDF_JAR=/abs/path
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${PATTERNALARM_CACHE:-$HOME/.cache/patternalarm}"
cache="${cache/#\~/$HOME}"
hash="$(sha256sum "$repo/pom.xml" | cut -c1-16)"
dest="$cache/jars/$hash"

print_paths() {
  echo "KAFKA_JARS=$dest/kafka"
  echo "FLINK_JARS=$dest/flink"
  bash "$repo/scripts/udf.sh"
}

if [[ -f "$dest/.complete" ]]; then
  print_paths
  exit 0
fi

command -v mvn >/dev/null || { echo "jars.sh: mvn not found; install Maven (apt-get install maven)" >&2; exit 1; }
mkdir -p "$cache/jars" "$cache/logs"
tmp="$(mktemp -d "$cache/jars/.$hash.XXXXXX")"
log="$cache/logs/jars-$hash.log"
trap 'rm -rf "$tmp"' EXIT
echo "jars.sh: fetching jars for pom $hash (log: $log)" >&2
: >"$log"
for profile in kafka flink; do
  # -Djars.out sends the copies to the temporary folder; the Maven repo lives in the cache too, so
  # nothing is written to the repo or to ~/.m2.
  if ! mvn -q -B -f "$repo/pom.xml" -P "$profile" -Dmaven.repo.local="$cache/m2" \
      -Djars.out="$tmp" package >>"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "jars.sh: maven failed for profile '$profile'; full log: $log" >&2
    exit 1
  fi
done
for profile in kafka flink; do
  compgen -G "$tmp/$profile/*.jar" >/dev/null || { echo "jars.sh: no jars copied for $profile; see $log" >&2; exit 1; }
done
touch "$tmp/.complete"
# Another run may have finished first: keep its folder, drop ours.
if ! mv -T "$tmp" "$dest" 2>/dev/null; then
  [[ -f "$dest/.complete" ]] || { rm -rf "$dest"; mv -T "$tmp" "$dest"; }
fi
trap - EXIT
rm -rf "$tmp"
print_paths
