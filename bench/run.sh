#!/bin/bash
# socksgate benchmarks: one command that builds the client / gateway /
# target topology in network namespaces, runs every scenario RUNS times
# (median reported) in the same run so that ratios hold on a noisy machine,
# and writes bench/results/results.json and bench/results/results.md.
#   RUNS=3 SECONDS_PER_RUN=5 ./bench/run.sh
# Traffic stays inside the namespaces (198.18.0.0/15, 2001:db8::/32);
# every loop is bounded; everything is removed on exit.
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SECS=${SECONDS_PER_RUN:-5}
OUT=${OUT:-bench/results}
./scripts/build.sh build-release -DSG_TESTS=OFF >/dev/null || exit 1
export SG_BUILD=$PWD/build-release
BLAST=$SG_BUILD/sg_blast
SETUP=$SG_BUILD/sg_setup
. netns-tests/lib.sh
mkdir -p "$OUT"
sg_topology
sg_config "rule allow from 198.18.0.0/24" "rule allow from 2001:db8::/64" \
	"log-level warn" "max-clients 20000" "max-associations 200000" "relay-ports 10000-59999" \
	"close-on-target-fin no" "close-on-flow-end no" # throughput: one association per protocol
sg_daemon
# Many short N1 connections from one client address: let the client reuse
# TIME_WAIT ports so that its connect() does not become the bottleneck.
inc sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="10000 65000" # data sockets bind 65100+

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
json() { $PY -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# One measurement: sink in the target, sender in the client.
# blast PROTO DST_HOST DST_PORT SINK_PORT [sender args...] -> prints the sink's JSON
blast() {
	local proto=$1 host=$2 port=$3 sport=$4
	shift 4
	ip netns exec "$NS_T" "$BLAST" sink "$proto" "$sport" $((SECS + 3)) >"$SG_TMP/sink.json" &
	local sp=$!
	sleep 0.3
	inc "$BLAST" send "$proto" "$host" "$port" "$SECS" "$@" >/dev/null
	wait $sp
	cat "$SG_TMP/sink.json"
}

results=()
record() { # name metric value unit
	results+=("{\"scenario\": \"$1\", \"metric\": \"$2\", \"value\": $3, \"unit\": \"$4\"}")
	printf '  %-40s %-22s %14s %s\n' "$1" "$2" "$3" "$4"
}

echo "== throughput (median of $RUNS runs of ${SECS}s)"
for proto in tcp udp; do
	metric=bits_per_s
	[ $proto = udp ] && metric=packets_per_s
	extra=()
	[ $proto = udp ] && extra=(--size 64)
	r=()
	for i in $(seq "$RUNS"); do
		r+=("$(blast $proto $T4 5001 5001 "${extra[@]}" | json "['$metric']")")
	done
	routed=$(printf '%s\n' "${r[@]}" | median)
	record "routed forwarding $proto" "$metric" "$routed" ""
	tp_open $proto $C4:40100 $T4:5001 || fail "association refused"
	r=()
	for i in $(seq "$RUNS"); do
		r+=("$(blast $proto "$BND_ADDR" "$BND_PORT" 5001 --src $C4:40100 "${extra[@]}" | json "['$metric']")")
	done
	kill "$TP_PID"
	wait "$TP_PID" 2>/dev/null
	tp=$(printf '%s\n' "${r[@]}" | median)
	record "transparent $proto" "$metric" "$tp" ""
	record "transparent/routed $proto" ratio "$(awk -v a="$tp" -v b="$routed" 'BEGIN{printf "%.3f", a/b}')" ""
	if [ $proto = tcp ]; then
		r=()
		for i in $(seq "$RUNS"); do
			r+=("$(blast tcp $T4 5001 5001 --socks $G4:1080 | json "['$metric']")")
		done
		c=$(printf '%s\n' "${r[@]}" | median)
		record "socksgated CONNECT (splice) tcp" "$metric" "$c" ""
	fi
done

echo "== UDP ASSOCIATE and the danted anchor"
sg_danted 1081
for srv in "socksgated:1080" "danted:1081"; do
	name=${srv%%:*} port=${srv##*:}
	r=()
	for i in $(seq "$RUNS"); do
		r+=("$(blast udp $T4 5001 5001 --size 64 --socks $G4:$port | json "['packets_per_s']")")
	done
	v=$(printf '%s\n' "${r[@]}" | median)
	record "$name UDP ASSOCIATE udp" packets_per_s "$v" ""
	eval "udp_$name=$v"
	r=()
	for i in $(seq "$RUNS"); do
		r+=("$(blast tcp $T4 5001 5001 --socks $G4:$port | json "['bits_per_s']")")
	done
	record "$name CONNECT tcp" bits_per_s "$(printf '%s\n' "${r[@]}" | median)" ""
done
record "socksgated/danted UDP ASSOCIATE" ratio "$(awk -v a="$udp_socksgated" -v b="$udp_danted" 'BEGIN{printf "%.3f", a/b}')" ""

echo "== association setup"
sleep 3 # let quarantined endpoints go
for conc in 1 10 50 100; do
	n=$((conc == 1 ? 1000 : 5000))
	out=$(inc "$SETUP" $G4 1080 $C4 $T4 7000 $n $conc $((20000 + conc * 100))) || fail "sg_setup: $out"
	record "setup concurrency $conc" setups_per_s "$(echo "$out" | json "['setups_per_s']")" "/s"
	record "setup concurrency $conc" latency_median "$(echo "$out" | json "['latency_ms']['median']")" ms
	record "setup concurrency $conc" latency_p99 "$(echo "$out" | json "['latency_ms']['p99']")" ms
	sleep 3
done

echo "== association end latency (200 associations each)"
# The throughput runs reuse one association; here the defaults apply.
sed -i '/^close-on-target-fin no$/d; /^close-on-flow-end no$/d' "$SG_TMP/socksgated.conf"
kill -HUP "$DAEMON_PID"
sleep 0.5
bg ip netns exec "$NS_T" $PEER tcp-closer 7001
bg ip netns exec "$NS_T" $PEER udp-echo 7002
wait_listen "$NS_T" 7001
out=$(inc $PY bench/assoc_latency.py fin $G4 1080 $C4 $T4:7001 200 65100) || fail "fin latency: $out"
record "target FIN -> N1 closed" latency_median "$(echo "$out" | json "['latency_ms']['median']")" ms
record "target FIN -> N1 closed" latency_p99 "$(echo "$out" | json "['latency_ms']['p99']")" ms
ip netns exec "$NS_G" conntrack -E -e DESTROY -o timestamp >"$SG_TMP/ct-events.txt" 2>/dev/null &
EVP=$!
SG_PIDS+=($EVP)
sleep 0.3
out=$(inc $PY bench/assoc_latency.py teardown $G4 1080 $C4 $T4:7002 200 65300 "$SG_TMP/ct-events.txt") || fail "teardown latency: $out"
kill $EVP 2>/dev/null
record "N1 closed -> conntrack entry gone" latency_median "$(echo "$out" | json "['latency_ms']['median']")" ms
record "N1 closed -> conntrack entry gone" latency_p99 "$(echo "$out" | json "['latency_ms']['p99']")" ms

echo "== daemon memory"
sleep 3
rss() { awk '/VmRSS/ {print $2 * 1024}' /proc/$DAEMON_PID/status; }
r0=$(rss)
record "daemon RSS idle" rss "$r0" bytes
ASSOCS=${BENCH_ASSOCS:-10000}
bg ip netns exec "$NS_C" $PY netns-tests/tools/tp_load.py $G4 1080 --src $C4 --dst $T4:7000 \
	--count "$ASSOCS" --concurrency 100 --first-port 10000 --hold 10
LOADP=$LAST_PID
for _ in $(seq 1 300); do
	[ "$(set_count assoc4)" -ge "$ASSOCS" ] && break
	sleep 0.1
done
n=$(set_count assoc4)
r1=$(rss)
record "daemon RSS with $n associations" rss "$r1" bytes
record "daemon memory per association" bytes "$(((r1 - r0) / (n > 0 ? n : 1)))" bytes
wait $LOADP

echo "== memory per UDP association"
r0=$(rss)
inc $PY - <<PY &
import socket, time
held = []
for i in range(2000):
    s = socket.create_connection(("$G4", 1080), timeout=5)
    s.sendall(b"\x05\x01\x00"); s.recv(2)
    s.sendall(b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00"); s.recv(10)
    held.append(s)
time.sleep(6)
PY
UP=$!
sleep 5
r1=$(rss)
record "daemon memory per UDP association" bytes "$(((r1 - r0) / 2000))" bytes
wait $UP

{
	echo "{\"machine\": \"$(uname -r), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)\","
	echo " \"date\": \"$(date -u +%FT%TZ)\", \"runs\": $RUNS, \"seconds_per_run\": $SECS,"
	echo " \"results\": ["
	(IFS=,; echo "${results[*]}" | sed 's/},{/},\n  {/g')
	echo "]}"
} >"$OUT/results.json"
{
	echo "| scenario | metric | value |"
	echo "| --- | --- | --- |"
	$PY -c "
import json
for r in json.load(open('$OUT/results.json'))['results']:
    v = r['value']
    v = ('%.3g G' % (v / 1e9)) if r['metric'] == 'bits_per_s' else v
    print('| %s | %s | %s %s |' % (r['scenario'], r['metric'], v, r['unit']))"
} >"$OUT/results.md"
echo "== wrote $OUT/results.json and $OUT/results.md"
true
