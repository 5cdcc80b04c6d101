#!/bin/bash
# Association setup rate and latency of two builds of socksgated, in one
# run, interleaved (A B A B ...) so that a noisy machine weighs on both
# alike: the privilege-separation figure (docs/privsep.md).
#   ./bench/compare-setup.sh [OLD_REV] [RUNS]
# OLD_REV (default: the last commit before privilege separation) is built
# from a temporary worktree; the new one is this tree.  Each run: sg_setup
# with 50 concurrent clients, 5000 associations (TCP TRANSPARENT, each
# held until answered, then closed).  Prints one JSON line per run and a
# summary (medians), written to bench/results/privsep-setup.json.
set -uo pipefail
cd "$(dirname "$0")/.."
OLD_REV=${1:-d62417c}
RUNS=${2:-5}
CONC=${CONC:-50}
N=${N:-5000}
OUT=${OUT:-bench/results}
ROOT=$PWD
OLD=$(mktemp -d /tmp/sg-old.XXXXXX)
git worktree add -q --detach "$OLD/src" "$OLD_REV" || exit 1
cleanup_old() { git -C "$ROOT" worktree remove --force "$OLD/src"; rm -rf "$OLD"; }
(cd "$OLD/src" && ./scripts/build.sh build-release -DSG_TESTS=OFF -DSG_BUILD_TOOLS=ON >/dev/null) || { cleanup_old; exit 1; }
./scripts/build.sh build-release -DSG_TESTS=OFF -DSG_BUILD_TOOLS=ON >/dev/null || { cleanup_old; exit 1; }
export SG_BUILD=$PWD/build-release
SETUP=$SG_BUILD/sg_setup
. netns-tests/lib.sh
trap 'cleanup_old; sg_cleanup' EXIT
mkdir -p "$OUT"
sg_topology
sg_config "rule allow from 198.18.0.0/24" "log-level warn" "max-clients 300000" \
	"max-associations 300000" "relay-ports 10000-59999" \
	"max-handshakes-per-source 0" "max-sessions-per-source 0" \
	"max-associations-per-source 0"
inc sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="10000 65000"
bg ip netns exec "$NS_T" $PEER tcp-echo 7000
wait_listen "$NS_T" 7000
json() { $PY -c "import json,sys; print(json.load(sys.stdin)$1)"; }
results=()
run_one() { # label binary
	SG_DAEMON=$2 sg_daemon
	local out
	out=$(inc "$SETUP" $G4 1080 $C4 $T4 7000 $N $CONC 20000) || fail "sg_setup ($1): $out"
	kill -TERM "$DAEMON_PID"
	wait_exit "$DAEMON_PID" 30 || fail "$1 did not stop"
	wait_for 10 '[ -z "$(nft_table)" ]' || fail "$1 left its table"
	local rate p50 p99
	rate=$(echo "$out" | json "['setups_per_s']")
	p50=$(echo "$out" | json "['latency_ms']['median']")
	p99=$(echo "$out" | json "['latency_ms']['p99']")
	echo "{\"build\": \"$1\", \"setups_per_s\": $rate, \"p50_ms\": $p50, \"p99_ms\": $p99}"
	results+=("{\"build\": \"$1\", \"setups_per_s\": $rate, \"p50_ms\": $p50, \"p99_ms\": $p99}")
}
for i in $(seq "$RUNS"); do
	run_one before "$OLD/src/build-release/socksgated"
	run_one after "$SG_BUILD/socksgated"
done
printf '%s\n' "${results[@]}" | $PY -c '
import json, statistics, sys
rows = [json.loads(l) for l in sys.stdin]
out = {"runs": rows, "concurrency": '"$CONC"', "associations": '"$N"'}
for b in ("before", "after"):
    r = [x for x in rows if x["build"] == b]
    out[b] = {k: statistics.median(x[k] for x in r) for k in ("setups_per_s", "p50_ms", "p99_ms")}
out["rate_after_over_before"] = round(out["after"]["setups_per_s"] / out["before"]["setups_per_s"], 3)
out["p99_after_over_before"] = round(out["after"]["p99_ms"] / out["before"]["p99_ms"], 3)
json.dump(out, open("'"$OUT"'/privsep-setup.json", "w"), indent=1)
print(json.dumps({k: out[k] for k in ("before", "after", "rate_after_over_before", "p99_after_over_before")}))
'
