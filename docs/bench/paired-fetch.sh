#!/usr/bin/env bash
# paired-fetch.sh: compare builds or settings of peer on 1 GiB daemon-to-daemon fetches over
# loopback TCP, in alternating rounds, so that the machine's drift (large on shared VMs) hits
# every variant alike. Each variant is "BINARY|SEEDER_ENV|FETCHER_ENV"; an empty ENV is none.
#
#   go build -o /tmp/peer-new ./cmd/peer
#   git worktree add /tmp/old HEAD~1 && (cd /tmp/old && go build -o /tmp/peer-old ./cmd/peer)
#   docs/bench/paired-fetch.sh 8 /tmp/peer-old /tmp/peer-new "/tmp/peer-new|GOMAXPROCS=2|GOMAXPROCS=2"
#
# A bare BINARY means "BINARY||". It prints, per variant, the MB/s of every round and the mean.
set -euo pipefail
rounds=$1; shift
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
head -c $((1 << 30)) /dev/urandom > "$work/payload.bin"
sync "$work/payload.bin"

i=0
for v in "$@"; do
  IFS='|' read -r bin senv fenv <<< "$v|||"
  for role in seed fetch; do
    env=$senv; [ $role = fetch ] && env=$fenv
    "$bin" --repo "$work/$role$i" init > /dev/null 2>&1
    env $env "$bin" --repo "$work/$role$i" daemon --listen /ip4/127.0.0.1/tcp/0 --api 127.0.0.1:0 \
      --network paired$i > "$work/$role$i.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do [ -s "$work/$role$i/api" ] && break; sleep 0.05; done
  done
  root=$("$bin" --repo "$work/seed$i" share "$work/payload.bin")
  addr=$("$bin" --repo "$work/seed$i" id | grep /tcp/ | head -1)
  "$bin" --repo "$work/fetch$i" connect "$addr" > /dev/null
  i=$((i + 1))
done

for r in $(seq "$rounds"); do
  i=0
  for v in "$@"; do
    bin=${v%%|*}
    out="$work/out-$i-$r.bin" # a new name each round: no build may skip the fetch
    ns=$("$bin" --repo "$work/fetch$i" fetch "$root" -o "$out" --json |
      tail -1 | grep -o '"duration_ns":[0-9]*' | cut -d: -f2)
    rm -f "$out"
    echo "$i $ns"
    i=$((i + 1))
  done
done > "$work/results"

i=0
for v in "$@"; do
  awk -v i=$i -v name="$v" '$1 == i { r = 1073.741824 / ($2 / 1e9); printf "%.0f ", r; s += $2; n++ }
    END { printf "| %s: mean %.0f MB/s\n", name, n * 1073.741824 / (s / 1e9) }' "$work/results"
  i=$((i + 1))
done
