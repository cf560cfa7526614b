#!/bin/bash
# Times folder import through a daemon: `peer add` of a folder of 10,000 files of 4 KiB in 100
# folders into a fresh repo, then `peer share` of it into another fresh repo, then `peer share`
# again there. Each repo gets a daemon of its own on free loopback ports.
#
# usage: docs/bench/tree-e2e.sh BIN [LABEL]   (the tree is written once into $TREE, /tmp/e2e/tree)
set -euo pipefail
BIN=$1
LABEL=${2:-$BIN}
TREE=${TREE:-/tmp/e2e/tree}
if [ ! -d "$TREE" ]; then
  for d in $(seq -f %03g 0 99); do
    mkdir -p "$TREE/d$d"
    for f in $(seq -f %03g 0 99); do head -c 4096 /dev/urandom >"$TREE/d$d/f$f.bin"; done
  done
fi
start() {
  R=$(mktemp -d)
  "$BIN" --repo "$R" init >/dev/null 2>&1
  "$BIN" --repo "$R" daemon --listen /ip4/127.0.0.1/tcp/0 --api 127.0.0.1:0 --no-mdns >"$R/daemon.log" 2>&1 &
  DP=$!
  for _ in $(seq 1 300); do
    [ -f "$R/api" ] && "$BIN" --repo "$R" id >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "daemon did not start: $(cat "$R/daemon.log")" >&2
  exit 1
}
stop() { kill "$DP"; wait "$DP" 2>/dev/null || true; rm -rf "$R"; }
now() { date +%s.%N; }
start
t0=$(now); "$BIN" --repo "$R" add --quiet "$TREE" >/dev/null; t1=$(now)
stop
start
t2=$(now); "$BIN" --repo "$R" share "$TREE" >/dev/null; t3=$(now)
"$BIN" --repo "$R" share "$TREE" >/dev/null; t4=$(now)
stop
echo "$LABEL add $(echo "$t1-$t0" | bc) s, share $(echo "$t3-$t2" | bc) s, shared again $(echo "$t4-$t3" | bc) s (load $(cut -d' ' -f1 /proc/loadavg))"
