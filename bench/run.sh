#!/bin/bash
# socksgate benchmarks: one command that builds the client / gateway /
# target topology in network namespaces, runs every scenario RUNS times
# (median reported) in the same run so that ratios hold on a noisy machine,
# and writes bench/results/results.json, results.md and charts (PNG).
#   RUNS=3 SECONDS_PER_RUN=5 BIG_ASSOCS=100000 ./bench/run.sh
#   SCENARIOS=connect ./bench/run.sh   only the CONNECT relays (routed,
#                                      splice, sockmap, danted; one stream
#                                      and 100 at once)
# Every live association holds its N1 socket: BIG_ASSOCS is capped by the
# file descriptors this process may open (ulimit -Hn), and reported so.
# Traffic stays inside the namespaces (198.18.0.0/15, 2001:db8::/32);
# every loop is bounded; everything is removed on exit.
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SECS=${SECONDS_PER_RUN:-5}
BIG=${BIG_ASSOCS:-100000}
SCENARIOS=${SCENARIOS:-all}
# The daemon and the two holding clients need one fd per association each.
FDMAX=$(ulimit -Hn)
[ "$FDMAX" = unlimited ] && FDMAX=1048576
if [ "$BIG" -gt $((FDMAX - 2000)) ]; then
	echo "note: fd hard limit $FDMAX caps the many-associations scenario at $((FDMAX - 2000)) (wanted $BIG)"
	BIG=$((FDMAX - 2000))
fi
ulimit -n "$FDMAX"
OUT=${OUT:-bench/results}
./scripts/build.sh build-release -DSG_TESTS=OFF -DSG_BUILD_TOOLS=ON >/dev/null || exit 1
export SG_BUILD=$PWD/build-release
BLAST=$SG_BUILD/sg_blast
SETUP=$SG_BUILD/sg_setup
. netns-tests/lib.sh
mkdir -p "$OUT"
sg_topology
# A second client-side gateway address: BND.PORT is unique per BND.ADDR,
# so 100,000 associations need two of them (N1's local address is BND).
G4B=198.18.0.11
ip -n "$NS_G" addr add $G4B/24 dev g0
sg_config "rule allow from 198.18.0.0/24" "rule allow from 2001:db8::/64" \
	"listen $G4B 1080" "log-level warn" "max-clients 300000" \
	"max-associations 300000" "relay-ports 10000-59999" \
	"max-handshakes-per-source 0" "max-sessions-per-source 0" \
	"max-associations-per-source 0" \
	"close-on-target-fin no" "close-on-flow-end no" `# throughput: one association per protocol` \
	"connect-relay sockmap" # loaded at start; switched by reloads below
sg_daemon
# connect-relay MODE: the next CONNECT sessions use MODE.
relay_mode() {
	sed -i "s/^connect-relay .*/connect-relay $1/" "$SG_TMP/socksgated.conf"
	kill -HUP "$DAEMON_PID" # log-level warn: no line to wait for
	sleep 0.5
}
# Many short N1 connections from one client address: let the client reuse
# TIME_WAIT ports so that its connect() does not become the bottleneck.
inc sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="10000 65000" # data sockets bind 65100+
sg_danted 1081
bg ip netns exec "$NS_G" microsocks -i $G4 -p 1082
wait_listen "$NS_G" 1082

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
json() { $PY -c "import json,sys; print(json.load(sys.stdin)$1)"; }
# Busy CPU time of the whole VM (sender, gateway and sink share it), in
# clock ticks: user+nice+system+irq+softirq+steal.
cpu_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
HZ=$(getconf CLK_TCK)

# One measurement: sink in the target, sender in the client.  Prints the
# sink's JSON with "cpu_s" (busy CPU seconds of the VM) added.
# blast PROTO DST_HOST DST_PORT SINK_PORT [sender args...]
blast() {
	local proto=$1 host=$2 port=$3 sport=$4 c0 c1
	shift 4
	ip netns exec "$NS_T" "$BLAST" sink "$proto" "$sport" $((SECS + 3)) >"$SG_TMP/sink.json" &
	local sp=$!
	sleep 0.3
	c0=$(cpu_ticks)
	inc "${WRAP[@]}" "$BLAST" send "$proto" "$host" "$port" "$SECS" "$@" >/dev/null
	wait $sp
	c1=$(cpu_ticks)
	$PY -c "import json,sys; d=json.load(open('$SG_TMP/sink.json')); d['cpu_s']=($c1-$c0)/$HZ; print(json.dumps(d))"
}

WRAP=() # a command the sender runs under (socksgate run, proxychains4...)
results=()
record() { # name metric value unit
	results+=("{\"scenario\": \"$1\", \"metric\": \"$2\", \"value\": $3, \"unit\": \"$4\"}")
	printf '  %-44s %-20s %14s %s\n' "$1" "$2" "$3" "$4"
}

# measure NAME PROTO HOST PORT [sender args]: RUNS runs; records the
# median rate, and for TCP the VM's CPU seconds per GB moved.
measure() {
	local name=$1 proto=$2 host=$3 port=$4 metric=bits_per_s out rates=() cpg=()
	shift 4
	[ "$proto" = udp ] && metric=packets_per_s
	for _ in $(seq "$RUNS"); do
		out=$(blast "$proto" "$host" "$port" 5001 "$@")
		rates+=("$(echo "$out" | json "['$metric']")")
		cpg+=("$(echo "$out" | $PY -c "import json,sys; d=json.load(sys.stdin); print(round(d['cpu_s'] / max(d['bytes'], 1) * 1e9, 3))")")
	done
	LAST=$(printf '%s\n' "${rates[@]}" | median)
	record "$name" "$metric" "$LAST" ""
	if [ "$proto" = tcp ]; then
		LAST_CPU=$(printf '%s\n' "${cpg[@]}" | median)
		record "$name" cpu_s_per_GB "$LAST_CPU" s
	fi
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", a/b}'; }
write_results() {
	{
		echo "{\"machine\": \"$(uname -r), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)\","
		echo " \"date\": \"$(date -u +%FT%TZ)\", \"runs\": $RUNS, \"seconds_per_run\": $SECS,"
		echo " \"load\": \"$(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min at the end)\","
		echo " \"results\": ["
		(IFS=,; echo "${results[*]}" | sed 's/},{/},\n  {/g')
		echo "]}"
	} >"$OUT/results.json"
	$PY bench/report.py "$OUT/results.json" "$OUT"
	echo "== wrote $OUT/results.json, results.md and charts"
}

echo "== throughput (median of $RUNS runs of ${SECS}s)"
measure "routed forwarding tcp" tcp $T4 5001
routed_tcp=$LAST
routed_cpu=$LAST_CPU
if [ "$SCENARIOS" != connect ]; then
	tp_open tcp $C4:65001 $T4:5001 || fail "association refused"
	measure "transparent tcp" tcp "$BND_ADDR" "$BND_PORT" --src $C4:65001
	tp_tcp=$LAST
	TCP_BND=$BND_ADDR TCP_PORT=$BND_PORT TCP_PID=$TP_PID
	record "transparent/routed tcp" ratio "$(ratio "$tp_tcp" "$routed_tcp")" ""
fi
relay_mode splice
measure "socksgated CONNECT (splice) tcp" tcp $T4 5001 --socks $G4:1080
sg_connect=$LAST
sg_connect_cpu=$LAST_CPU
relay_mode sockmap
measure "socksgated CONNECT (sockmap) tcp" tcp $T4 5001 --socks $G4:1080
sg_sockmap=$LAST
sg_sockmap_cpu=$LAST_CPU
measure "danted CONNECT tcp" tcp $T4 5001 --socks $G4:1081
danted_connect=$LAST
danted_cpu=$LAST_CPU
for m in "splice $sg_connect $sg_connect_cpu" "sockmap $sg_sockmap $sg_sockmap_cpu" \
	"danted $danted_connect $danted_cpu"; do
	set -- $m
	record "CONNECT $1/routed tcp" ratio "$(ratio "$2" "$routed_tcp")" ""
	record "CONNECT $1/routed tcp" cpu_per_GB_ratio "$(ratio "$3" "$routed_cpu")" ""
done
record "CONNECT sockmap/splice tcp" ratio "$(ratio "$sg_sockmap" "$sg_connect")" ""
record "CONNECT sockmap/danted tcp" ratio "$(ratio "$sg_sockmap" "$danted_connect")" ""
[ "$SCENARIOS" = connect ] ||
	measure "microsocks CONNECT tcp" tcp $T4 5001 --socks $G4:1082
[ "$SCENARIOS" = connect ] ||
	record "transparent/danted CONNECT tcp" ratio "$(ratio "$tp_tcp" "$danted_connect")" ""

# 100 streams at once (iperf3 -P 100; through the proxies with
# proxychains4): routed, socksgated splice and sockmap, danted.
ip netns exec "$NS_T" iperf3 -s -B $T4 -p 5202 >/dev/null 2>&1 &
SG_PIDS+=($!)
wait_listen "$NS_T" 5202
cat >"$SG_TMP/pc-sg.conf" <<CONF
strict_chain
quiet_mode
[ProxyList]
socks5 $G4 1080
CONF
sed 's/ 1080$/ 1081/' "$SG_TMP/pc-sg.conf" >"$SG_TMP/pc-danted.conf"
many() { # NAME [wrapper...]: median bits/s of 100 streams, CPU s per GB
	local name=$1 rates=() cpg=() c0 c1 out
	shift
	for _ in $(seq "$RUNS"); do
		c0=$(cpu_ticks)
		inc "$@" iperf3 -c $T4 -p 5202 -P 100 -t "$SECS" -J >"$SG_TMP/iperf.json" 2>/dev/null
		c1=$(cpu_ticks)
		out=$($PY -c "import json; e=json.load(open('$SG_TMP/iperf.json'))['end']['sum_received']; print(e['bits_per_second'], round(($c1-$c0)/$HZ / max(e['bytes'],1) * 1e9, 3))" 2>/dev/null || echo "0 0")
		rates+=("${out% *}")
		cpg+=("${out#* }")
	done
	LAST=$(printf '%s\n' "${rates[@]}" | median)
	record "$name" bits_per_s "$LAST" ""
	record "$name" cpu_s_per_GB "$(printf '%s\n' "${cpg[@]}" | median)" s
}
many "100 streams routed"
many_routed=$LAST
relay_mode splice
many "100 streams socksgated CONNECT (splice)" proxychains4 -q -f "$SG_TMP/pc-sg.conf"
record "100 streams splice/routed" ratio "$(ratio "$LAST" "$many_routed")" ""
relay_mode sockmap
many "100 streams socksgated CONNECT (sockmap)" proxychains4 -q -f "$SG_TMP/pc-sg.conf"
record "100 streams sockmap/routed" ratio "$(ratio "$LAST" "$many_routed")" ""
many_sockmap=$LAST
many "100 streams danted CONNECT" proxychains4 -q -f "$SG_TMP/pc-danted.conf"
record "100 streams danted/routed" ratio "$(ratio "$LAST" "$many_routed")" ""
record "100 streams sockmap/danted" ratio "$(ratio "$many_sockmap" "$LAST")" ""
if [ "$SCENARIOS" = connect ]; then
	write_results
	exit 0
fi
measure "routed forwarding udp" udp $T4 5001 --size 64
routed_udp=$LAST
tp_open udp $C4:65002 $T4:5001 || fail "association refused"
measure "transparent udp" udp "$BND_ADDR" "$BND_PORT" --src $C4:65002 --size 64
tp_udp=$LAST
UDP_BND=$BND_ADDR UDP_PORT=$BND_PORT UDP_PID=$TP_PID
record "transparent/routed udp" ratio "$(ratio "$tp_udp" "$routed_udp")" ""
measure "socksgated UDP ASSOCIATE udp" udp $T4 5001 --size 64 --socks $G4:1080
sg_udp=$LAST
measure "danted UDP ASSOCIATE udp" udp $T4 5001 --size 64 --socks $G4:1081
danted_udp=$LAST

echo "== unmodified programs: socksgate run vs proxychains4 and socksify (median of $RUNS runs of ${SECS}s)"
# iperf3 (TCP, unmodified) routed, under `socksgate run` (kernel relay),
# and under proxychains4 through socksgated's and danted's CONNECT.
ip netns exec "$NS_T" iperf3 -s -B $T4 -p 5201 >/dev/null 2>&1 &
SG_PIDS+=($!)
wait_listen "$NS_T" 5201
cat >"$SG_TMP/pc-sg.conf" <<CONF
strict_chain
quiet_mode
[ProxyList]
socks5 $G4 1080
CONF
sed 's/ 1080$/ 1081/' "$SG_TMP/pc-sg.conf" >"$SG_TMP/pc-danted.conf"
iperf() { # NAME [wrapper...]: records iperf3's median bits/s
	local name=$1 rates=()
	shift
	for _ in $(seq "$RUNS"); do
		inc "$@" iperf3 -c $T4 -p 5201 -t "$SECS" -J >"$SG_TMP/iperf.json" 2>/dev/null
		rates+=("$($PY -c "import json; print(json.load(open('$SG_TMP/iperf.json'))['end']['sum_received']['bits_per_second'])" 2>/dev/null || echo 0)")
	done
	LAST=$(printf '%s\n' "${rates[@]}" | median)
	record "$name" bits_per_s "$LAST" ""
}
iperf "iperf3 routed"
ip_routed=$LAST
iperf "iperf3 under socksgate run" "$SG_BUILD/socksgate" run --proxy $G4 --
record "iperf3 socksgate run/routed" ratio "$(ratio "$LAST" "$ip_routed")" ""
iperf "iperf3 under proxychains4 + socksgated CONNECT" proxychains4 -q -f "$SG_TMP/pc-sg.conf"
record "iperf3 proxychains4+socksgated/routed" ratio "$(ratio "$LAST" "$ip_routed")" ""
iperf "iperf3 under proxychains4 + danted CONNECT" proxychains4 -q -f "$SG_TMP/pc-danted.conf"
record "iperf3 proxychains4+danted/routed" ratio "$(ratio "$LAST" "$ip_routed")" ""
# UDP 64-byte datagrams from an unmodified sender (sg_blast without its
# own SOCKS client): under `socksgate run`, and under Dante's socksify
# through danted's UDP ASSOCIATE.
cat >"$SG_TMP/socks.conf" <<CONF
route {
  from: 0.0.0.0/0 to: 0.0.0.0/0 via: $G4 port = 1081
  proxyprotocol: socks_v5
  method: none
  command: connect bind udpassociate bindreply udpreply
}
CONF
WRAP=("$SG_BUILD/socksgate" run --proxy $G4 --)
measure "udp under socksgate run" udp $T4 5001 --size 64
record "udp socksgate run/routed" ratio "$(ratio "$LAST" "$routed_udp")" ""
run_udp=$LAST
WRAP=(env SOCKS_CONF="$SG_TMP/socks.conf" socksify)
measure "udp under socksify + danted UDP ASSOCIATE" udp $T4 5001 --size 64
record "udp socksify+danted/routed" ratio "$(ratio "$LAST" "$routed_udp")" ""
record "udp socksgate run/socksify+danted" ratio "$(ratio "$run_udp" "$LAST")" ""
WRAP=()
record "transparent/danted UDP ASSOCIATE udp" ratio "$(ratio "$tp_udp" "$danted_udp")" ""
record "socksgated/danted UDP ASSOCIATE udp" ratio "$(ratio "$sg_udp" "$danted_udp")" ""

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
# hold N VIA: N TRANSPARENT associations over N1 connections to VIA,
# held until told (the file $SG_TMP/release appears) or 300 s.
hold() {
	rm -f "$SG_TMP/release"
	ip netns exec "$NS_C" $PY netns-tests/tools/tp_load.py "$2" 1080 \
		--src $C4 --dst $T4:7000 --count "$1" --concurrency 100 --first-port 10000 \
		--hold 300 --release-file "$SG_TMP/release" >/dev/null &
	SG_PIDS+=($!)
	HOLD_PIDS+=($!)
}
# Associations in the daemon's table (its control socket: cheap, unlike
# listing 100,000 set elements).
in_table() {
	ing "$SG_BUILD/socksgate" stats --json --control "$SG_TMP/control.sock" |
		json "['associations']['in_table']"
}
# Waits until $1 associations are up, or until the count stops growing.
wait_assocs() {
	local n last=-1 still=0
	for _ in $(seq 1 600); do
		n=$(in_table)
		[ "$n" -ge "$1" ] && return 0
		if [ "$n" = "$last" ]; then
			still=$((still + 1))
			[ $still -ge 20 ] && return 1
		else
			still=0
		fi
		last=$n
		sleep 0.25
	done
	return 1
}
release() {
	touch "$SG_TMP/release"
	for p in "${HOLD_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	HOLD_PIDS=()
	sleep 3
}
HOLD_PIDS=()
hold 10000 $G4
wait_assocs 10002 || log "only $(in_table) associations came up"
n=$(in_table)
r1=$(rss)
record "daemon RSS with $n associations" rss "$r1" bytes
record "daemon memory per association" bytes "$(((r1 - r0) / n))" bytes
release
inc $PY - <<PY &
import socket, time, os
held = []
for i in range(2000):
    s = socket.create_connection(("$G4", 1080), timeout=5)
    s.sendall(b"\x05\x01\x00"); s.recv(2)
    s.sendall(b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00"); s.recv(10)
    held.append(s)
open("$SG_TMP/udp-held", "w").close()
time.sleep(30)
PY
UP=$!
SG_PIDS+=($UP)
for _ in $(seq 1 200); do [ -e "$SG_TMP/udp-held" ] && break; sleep 0.1; done
r1=$(rss)
record "daemon memory per UDP association" bytes "$(((r1 - r0) / 2000))" bytes
kill $UP 2>/dev/null
wait $UP 2>/dev/null
sleep 1
# 10,000 idle CONNECT sessions (two fds each in the daemon, pipes are made
# only when data flows; a low fd limit allows fewer).
NCONN=$(((FDMAX - 1000) / 2 < 5000 ? (FDMAX - 1000) / 2 : 5000))
bg ip netns exec "$NS_T" $PEER tcp-echo 7005
wait_listen "$NS_T" 7005
r0=$(rss)
inc $PY - <<PY &
import socket, time
held = []
try:
    for i in range($NCONN):
        s = socket.create_connection(("$G4", 1080), timeout=5)
        s.sendall(b"\x05\x01\x00"); s.recv(2)
        s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("$T4") + (7005).to_bytes(2, "big")); s.recv(10)
        held.append(s)
except OSError:
    pass
open("$SG_TMP/connect-held", "w").write(str(len(held)))
time.sleep(60)
PY
CPID=$!
SG_PIDS+=($CPID)
for _ in $(seq 1 600); do [ -s "$SG_TMP/connect-held" ] && break; sleep 0.1; done
r1=$(rss)
nc=$(cat "$SG_TMP/connect-held" 2>/dev/null)
nc=${nc:-0}
record "daemon RSS with $nc idle CONNECT sessions" rss "$r1" bytes
[ "$nc" -gt 0 ] && record "daemon memory per idle CONNECT session" bytes "$(((r1 - r0) / nc))" bytes
kill $CPID 2>/dev/null
wait $CPID 2>/dev/null
sleep 2

echo "== per-packet cost with $BIG other associations installed"
# The throughput associations (still open) are measured again once BIG
# others are in the sets: the cost per packet must not grow.
r0=$(rss)
hold $((BIG / 2)) $G4
hold $((BIG / 2)) $G4B
wait_assocs $((BIG + 2)) || log "$(in_table) of $((BIG + 2)) associations came up"
n=$(in_table)
if [ "$n" -ge $((BIG / 2)) ]; then
	record "daemon RSS with $n associations" rss "$(rss)" bytes
	sed -i 's/^log-level warn$/log-level warn\nclose-on-target-fin no\nclose-on-flow-end no/' "$SG_TMP/socksgated.conf"
	kill -HUP "$DAEMON_PID"
	sleep 0.5
	measure "transparent tcp, $n associations" tcp "$TCP_BND" "$TCP_PORT" --src $C4:65001
	record "transparent tcp $n/1 associations" ratio "$(ratio "$LAST" "$tp_tcp")" ""
	measure "transparent udp, $n associations" udp "$UDP_BND" "$UDP_PORT" --src $C4:65002 --size 64
	record "transparent udp $n/1 associations" ratio "$(ratio "$LAST" "$tp_udp")" ""
else
	log "only $n of $BIG associations came up: scenario skipped"
fi
release
kill "$TCP_PID" "$UDP_PID" 2>/dev/null

write_results
true
