#!/bin/bash
# Ending associations: N1 closed while a TCP transfer and a UDP stream run
# (both stop within 1 s, no element and no conntrack entry left); UDP sent
# before the association exists does not bypass it; SIGKILL of the daemon
# (the table goes with it, and after a restart no old flow passes).
. "$(dirname "$0")/lib.sh"
sg_topology
# One relay port, so that the port is known before the association.
sg_config "rule allow from 198.18.0.0/24" "rule allow from 2001:db8::/64" \
	"relay-ports 20500-20509"
sg_daemon
bg ip netns exec "$NS_T" $PEER tcp-echo 7000
bg ip netns exec "$NS_T" $PEER udp-echo 7000
wait_listen "$NS_T" 7000
wait_listen "$NS_T" 7000 u

# --- UDP before the association -------------------------------------
# The first free port of the range is 20500.  A datagram to it before the
# association creates an un-NATed conntrack entry (and an ICMP error).
inc $PEER udp-echo-check $G4 20500 --src $C4:43000 --count 1 --timeout 0.3 >/dev/null 2>&1
ing conntrack -L -p udp --orig-src $C4 --sport 43000 2>/dev/null | grep -q 20500 ||
	fail "setup: the early datagram left no conntrack entry"
tp_open udp $C4:43000 $T4:7000 || fail "early UDP: association refused"
[ "$BND_PORT" = 20500 ] || fail "expected BND.PORT 20500, got $BND_PORT"
inc $PEER udp-echo-check "$BND_ADDR" "$BND_PORT" --src $C4:43000 --count 5 ||
	fail "UDP sent before the association: later datagrams are not relayed"
pass "UDP sent before the association: the stale entry is replaced, traffic flows"
kill "$TP_PID"; wait "$TP_PID" 2>/dev/null

# --- N1 closed while flows run ---------------------------------------
for fam in 4 6; do
	if [ $fam = 4 ]; then C=$C4 T=$T4; else C=$C6 T=$T6; fi
	tp_open tcp "$(hp $C 44000)" "$(hp $T 7000)" || fail "IPv$fam tcp refused"
	TB=$BND_ADDR TP=$BND_PORT TPID=$TP_PID
	tp_open udp "$(hp $C 44001)" "$(hp $T 7000)" || fail "IPv$fam udp refused"
	UB=$BND_ADDR UP=$BND_PORT UPID=$TP_PID
	: >"$SG_TMP/tcp.times"
	: >"$SG_TMP/udp.times"
	bg ip netns exec "$NS_C" $PEER tcp-stream "$TB" "$TP" --src "$(hp $C 44000)" --log "$SG_TMP/tcp.times" --interval 0.02 --max-time 20
	SPID1=$LAST_PID
	bg ip netns exec "$NS_C" $PEER udp-stream "$UB" "$UP" --src "$(hp $C 44001)" --log "$SG_TMP/udp.times" --interval 0.02 --max-time 20
	SPID2=$LAST_PID
	sleep 1
	[ -s "$SG_TMP/tcp.times" ] && [ -s "$SG_TMP/udp.times" ] || fail "IPv$fam: streams did not run"
	[ "$(ct_ours)" -ge 2 ] || fail "IPv$fam: no marked conntrack entries while flows run"
	t_close=$(date +%s.%N)
	kill "$TPID" "$UPID"
	wait "$TPID" "$UPID" 2>/dev/null
	sleep 1.5
	last_tcp=$(tail -1 "$SG_TMP/tcp.times")
	last_udp=$(tail -1 "$SG_TMP/udp.times")
	awk -v a="$last_tcp" -v b="$last_udp" -v c="$t_close" 'BEGIN { exit !(a - c < 1.0 && b - c < 1.0) }' ||
		fail "IPv$fam: traffic still passed more than 1 s after N1 closed (tcp $last_tcp udp $last_udp close $t_close)"
	[ "$(relay_elements)" = 0 ] || fail "IPv$fam: relay elements left after N1 closed"
	[ "$(ct_ours)" = 0 ] || fail "IPv$fam: conntrack entries with our mark left: $(ing conntrack -L -m 0x5a000000/0xff000000 2>&1)"
	# The associations' own tuples (client -> BND).  Late packets of the
	# target to the gateway's address may make unrelated entries.
	{ ing conntrack -L -p tcp -s "$C" --sport 44000 2>/dev/null
	  ing conntrack -L -p udp -s "$C" --sport 44001 2>/dev/null; } | grep -q . &&
		fail "IPv$fam: a conntrack entry of the association's tuple is left"
	kill "$SPID1" "$SPID2" 2>/dev/null
	wait "$SPID1" "$SPID2" 2>/dev/null
	pass "IPv$fam: N1 closed -> TCP transfer and UDP stream stopped within 1 s, no element or conntrack entry left"
done
sleep 2.5
[ "$(nft_table | grep -c elements)" = 0 ] || fail "elements left after the quarantine: $(nft_table | grep elements)"
pass "bound endpoints released after the quarantine"

# --- SIGTERM ------------------------------------------------------------
pids=()
# UDP flows with traffic (a closed TCP flow would end its association on
# the target's FIN before the signal), and one TCP association.
for i in 0 1 2; do
	tp_open udp $C4:$((45100 + i)) $T4:7000 || fail "sigterm test: refused"
	inc $PEER udp-echo-check "$BND_ADDR" "$BND_PORT" --src $C4:$((45100 + i)) --count 3 >/dev/null
	pids+=($TP_PID)
done
tp_open tcp $C4:45103 $T4:7000 || fail "sigterm test: refused"
pids+=($TP_PID)
t0=$(date +%s.%N)
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
dt=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN{printf "%.3f", a-b}')
awk -v d="$dt" 'BEGIN { exit !(d < 2.0) }' || fail "SIGTERM took ${dt}s"
n=$(grep -c "reason shutdown" "$SG_LOG")
[ "$n" -ge 4 ] || fail "only $n associations logged reason shutdown"
ing nft list table inet socksgate >/dev/null 2>&1 && fail "table left after SIGTERM"
[ "$(ct_ours)" = 0 ] || fail "conntrack entries left after SIGTERM"
for p in "${pids[@]}"; do
	wait "$p"
	[ $? = 3 ] || fail "a client did not see its N1 closed at shutdown"
done
pass "SIGTERM: 4 associations ended (reason shutdown) in ${dt}s, table and entries gone, clients told"
sg_daemon

# --- SIGKILL -----------------------------------------------------------
tp_open tcp $C4:45000 $T4:7000 || fail "kill test: refused"
: >"$SG_TMP/tcp.times"
bg ip netns exec "$NS_C" $PEER tcp-stream "$BND_ADDR" "$BND_PORT" --src $C4:45000 --log "$SG_TMP/tcp.times" --interval 0.05 --max-time 20
SPID=$LAST_PID
sleep 0.5
[ -s "$SG_TMP/tcp.times" ] || fail "kill test: stream did not run"
kill -9 "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
sleep 0.3
ing nft list table inet socksgate >/dev/null 2>&1 && fail "table still there after SIGKILL"
pass "SIGKILL: the kernel removed the table (owner flag)"
sg_daemon
grep -q "deleted [0-9]* conntrack entries left by an earlier run" "$SG_LOG" ||
	fail "restart did not purge the old conntrack entries"
n=$(wc -l <"$SG_TMP/tcp.times")
sleep 1
[ "$(wc -l <"$SG_TMP/tcp.times")" -le $((n + 1)) ] || fail "old flow still passes after restart"
[ "$(ct_ours)" = 0 ] || fail "entries with our mark remain after restart"
pass "restart after SIGKILL: old entries purged, the old flow no longer passes"
kill "$SPID" 2>/dev/null || true
