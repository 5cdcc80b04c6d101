#!/bin/bash
# UDP ASSOCIATE packet rate, 64-byte datagrams (sg_blast through the SOCKS
# UDP header), for socksgated against danted and, with SG_BASELINE set to
# other socksgated binaries (space-separated, e.g. one built from main),
# against those, in one run: the scenarios alternate RUNS times so that load that comes
# and goes on the machine touches each alike; medians reported.  (The two
# socksgated cannot run at once, each owns the nftables table: they take
# turns on port 1080, each started fresh for its run.)  Routed
# forwarding of the same datagrams (no proxy) is the machine's ceiling.
#   RUNS=5 SECONDS_PER_RUN=4 SG_BASELINE="/old/socksgated ..." ./bench/udp.sh
# Traffic stays inside the namespaces (198.18.0.0/15); everything is
# removed on exit.
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
SECS=${SECONDS_PER_RUN:-4}
BASE=${SG_BASELINE:-}
./scripts/build.sh build-release -DSG_TESTS=OFF -DSG_BUILD_TOOLS=ON >/dev/null || exit 1
export SG_BUILD=$PWD/build-release
BLAST=$SG_BUILD/sg_blast
. netns-tests/lib.sh
sg_topology
sg_config "rule allow from 198.18.0.0/24" "log-level warn"
sg_danted 1081
NEW=$SG_DAEMON
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
rate() { # [sender args]: the sink's packets/s
	case $1 in
	new | base*)
		[ $1 = new ] && SG_DAEMON=$NEW || SG_DAEMON=${bases[${1#base}]}
		sg_daemon
		shift
		;;
	*)
		DAEMON_PID=
		shift
		;;
	esac
	ip netns exec "$NS_T" "$BLAST" sink udp 5001 $((SECS + 3)) >"$SG_TMP/sink.json" &
	local sp=$!
	wait_listen "$NS_T" 5001 u
	inc "$BLAST" send udp $T4 5001 "$SECS" --size 64 "$@" >/dev/null
	wait $sp
	if [ -n "$DAEMON_PID" ]; then
		kill "$DAEMON_PID"
		wait "$DAEMON_PID"
	fi
	$PY -c "import json; print(json.load(open('$SG_TMP/sink.json'))['packets_per_s'])"
}
names=(routed socksgated danted)
args=("-" "new --socks $G4:1080" "- --socks $G4:1081")
read -ra bases <<<"$BASE"
for b in "${!bases[@]}"; do
	names+=("baseline$((b + 1))")
	args+=("base$b --socks $G4:1080")
done
declare -A all
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$RUNS"); do
	for i in "${!names[@]}"; do
		v=$(rate ${args[$i]})
		all[${names[$i]}]+="$v "
		printf '  run %d %-10s %s pkt/s\n' "$r" "${names[$i]}" "$v"
	done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A med
for n in "${names[@]}"; do
	med[$n]=$(printf '%s\n' ${all[$n]} | median)
	printf '%-10s median %10.0f pkt/s  (%s)\n' "$n" "${med[$n]}" "${all[$n]% }"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
echo "socksgated/danted $(ratio "${med[socksgated]}" "${med[danted]}")"
for b in "${!bases[@]}"; do
	echo "socksgated/baseline$((b + 1)) $(ratio "${med[socksgated]}" "${med[baseline$((b + 1))]}")  (baseline$((b + 1)): ${bases[$b]})"
done
echo "socksgated/routed $(ratio "${med[socksgated]}" "${med[routed]}")"
