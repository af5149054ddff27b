#!/bin/bash
# By hand, as root: bench/ovs-rounds.sh N ROUNDS COMMIT...
# Interleaved rounds of `bench/ovs.ts N openflow` on several commits (e.g. before and after an OVS
# driver change), so that a loaded host's drift hits them alike: each commit gets a detached
# worktree (removed afterwards) with this checkout's node_modules and this checkout's bench/ovs.ts.
set -euo pipefail
N=$1; ROUNDS=$2; shift 2
HERE=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d /tmp/vg-ovs-rounds-XXXXXX)
cleanup() { for c in "$@"; do git -C "$HERE" worktree remove --force "$TMP/$c" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap 'cleanup "$@"' EXIT
for c in "$@"; do
  git -C "$HERE" worktree add --detach "$TMP/$c" "$c" >/dev/null
  ln -s "$HERE/node_modules" "$TMP/$c/node_modules"
  cp "$HERE/bench/ovs.ts" "$TMP/$c/bench/ovs.ts"
done
date -u; uptime
for r in $(seq 1 "$ROUNDS"); do
  for c in "$@"; do
    echo "## round $r $c"
    (cd "$TMP/$c" && node --import tsx bench/ovs.ts "$N" openflow 2>&1 | grep -E "^\| $N |n=")
  done
done
date -u; uptime
