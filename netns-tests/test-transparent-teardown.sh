#!/bin/bash
# Ending associations: N1 closed while a TCP transfer and a UDP stream run
# (both stop within 1 s, no element and no conntrack entry left, late
# packets dropped during the quarantine); UDP sent
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
# The streams run on for 1.2 s after N1 closes (a packet still relayed
# would be logged), then stop: from then on no packet of the tuple is
# sent (the TCP stream aborts with one RST, no retransmission later).  If
# they stopped within the quarantine (2 s from the end, which is after the
# daemon saw N1 close), every late packet met the guard and no entry of
# the tuple may exist.  If this machine was too slow for that, late
# packets may have reached the gateway's own stack after the quarantine
# and made ordinary entries (the daemon is right): then only NATed
# entries of the tuple are an error.
tuple_entries() { # family-address port: "orig-dst reply-src" per entry
	{ ing conntrack -L -p tcp -s "$1" --sport "$2" 2>/dev/null
	  ing conntrack -L -p udp -s "$1" --sport "$(($2 + 1))" 2>/dev/null; } |
		awk '{ n = 0; for (i = 1; i <= NF; i++) if ($i ~ /^(src|dst)=/) a[++n] = substr($i, 5);
		       if (n >= 3) print a[2], a[3] }'
}
for fam in 4 6; do
	if [ $fam = 4 ]; then C=$C4 T=$T4; else C=$C6 T=$T6; fi
	tp_open tcp "$(hp $C 44000)" "$(hp $T 7000)" || fail "IPv$fam tcp refused"
	TB=$BND_ADDR TP=$BND_PORT TPID=$TP_PID
	tp_open udp "$(hp $C 44001)" "$(hp $T 7000)" || fail "IPv$fam udp refused"
	UB=$BND_ADDR UP=$BND_PORT UPID=$TP_PID
	: >"$SG_TMP/tcp.times"
	: >"$SG_TMP/udp.times"
	bg ip netns exec "$NS_C" $PEER tcp-stream "$TB" "$TP" --src "$(hp $C 44000)" --log "$SG_TMP/tcp.times" --interval 0.02 --max-time 60
	SPID1=$LAST_PID
	bg ip netns exec "$NS_C" $PEER udp-stream "$UB" "$UP" --src "$(hp $C 44001)" --log "$SG_TMP/udp.times" --interval 0.02 --max-time 60
	SPID2=$LAST_PID
	wait_for 20 '[ "$(wc -l <"$SG_TMP/tcp.times")" -ge 5 ] && [ "$(wc -l <"$SG_TMP/udp.times")" -ge 5 ]' ||
		fail "IPv$fam: streams did not run"
	[ "$(ct_ours)" -ge 2 ] || fail "IPv$fam: no marked conntrack entries while flows run"
	kill -0 "$SPID1" 2>/dev/null && kill -0 "$SPID2" 2>/dev/null || fail "IPv$fam: a stream ended before N1 closed"
	t_close=$(now_us)
	kill "$TPID" "$UPID"
	wait "$TPID" "$UPID" 2>/dev/null
	sleep_until $((t_close + 1200000))
	kill "$SPID1" "$SPID2" 2>/dev/null
	wait "$SPID1" "$SPID2" 2>/dev/null
	t_stop=$(now_us)
	# When the last relayed datagram and segment were sent.
	last_tcp=$(s_us "$(tail -1 "$SG_TMP/tcp.times" | cut -d' ' -f2)")
	last_udp=$(s_us "$(tail -1 "$SG_TMP/udp.times" | cut -d' ' -f2)")
	[ $((last_tcp - t_close)) -lt 1000000 ] && [ $((last_udp - t_close)) -lt 1000000 ] ||
		fail "IPv$fam: traffic still passed more than 1 s after N1 closed (sent after the close: tcp $(us_s $((last_tcp - t_close))) s, udp $(us_s $((last_udp - t_close))) s)"
	wait_for 10 '[ "$(relay_elements)" = 0 ]' || fail "IPv$fam: relay elements left after N1 closed"
	[ "$(ct_ours)" = 0 ] || fail "IPv$fam: conntrack entries with our mark left: $(ing conntrack -L -m 0x5a000000/0xff000000 2>&1)"
	# The quarantine began after the daemon logged the sessions' end.
	q_from=$t_close
	for sp in "$(hp $C 44000)" "$(hp $C 44001)"; do
		sid=$(grep -F "$sp -> " "$SG_LOG" | grep -o "assoc [0-9]* start: session [0-9]*" | tail -1 | awk '{print $5}')
		e=$(log_us "session $sid end: ") || fail "IPv$fam: no end logged for the session of $sp"
		[ "$e" -gt "$q_from" ] && q_from=$e
	done
	# 0.2 s for packets the streams sent just before they stopped.
	if [ $((t_stop + 200000)) -lt $((q_from + 2000000)) ]; then
		[ -z "$(tuple_entries "$C" 44000)" ] ||
			fail "IPv$fam: a conntrack entry of the association's tuple is left (streams stopped $(us_s $((t_stop - q_from))) s after the end, within the quarantine): $(tuple_entries "$C" 44000)"
		how="no entry of the tuple"
	else
		log "IPv$fam: the streams stopped $(us_s $((t_stop - q_from))) s after the end, later than the quarantine: checking only that no entry of the tuple is NATed"
		tuple_entries "$C" 44000 | awk '$1 != $2 { bad = 1 } END { exit bad }' ||
			fail "IPv$fam: a NATed conntrack entry of the association's tuple is left: $(tuple_entries "$C" 44000)"
		how="no NATed entry of the tuple"
	fi
	pass "IPv$fam: N1 closed -> TCP transfer and UDP stream stopped within 1 s, no element, no marked entry, $how left"
done
wait_for 10 '[ "$(nft_table | grep -c elements)" = 0 ]' ||
	fail "elements left after the quarantine: $(nft_table | grep elements)"
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
t0=$(now_us)
kill -TERM "$DAEMON_PID"
wait_exit "$DAEMON_PID" 30 || fail "the daemon did not exit within 30 s of SIGTERM"
# The daemon's own shutdown (to its last line; not the sanitizer's exit).
t1=$(log_us "socksgated stopped") || fail "no 'socksgated stopped' logged"
dt=$(us_s $((t1 - t0)))
[ $((t1 - t0)) -lt 2000000 ] || fail "SIGTERM took ${dt}s"
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
bg ip netns exec "$NS_C" $PEER tcp-stream "$BND_ADDR" "$BND_PORT" --src $C4:45000 --log "$SG_TMP/tcp.times" --interval 0.05 --max-time 60
SPID=$LAST_PID
wait_for 20 '[ -s "$SG_TMP/tcp.times" ]' || fail "kill test: stream did not run"
# A crash of everything: the supervisor stopped (so that it cannot clean
# up, as after a power cut of its own), the kernel agent, which owns the
# table, killed, then the supervisor (the session process follows it).
# The agent alone killed is test-privsep.sh's: the supervisor cleans up.
AGENT=$(sg_agent_pid)
kill -STOP "$DAEMON_PID"
kill -9 "$AGENT"
# The kernel drops an owned table when its owner's socket closes (the
# agent stays a zombie until its stopped parent goes).
wait_for 10 '! ing nft list table inet socksgate >/dev/null 2>&1' || fail "table still there after SIGKILL"
kill -9 "$DAEMON_PID"
wait_exit "$DAEMON_PID" 30 || fail "the supervisor outlived SIGKILL"
pass "SIGKILL of the kernel agent and the supervisor: the kernel removed the table (owner flag)"
log_lines=$(wc -l <"$SG_LOG")
sg_daemon
tail -n +$((log_lines + 1)) "$SG_LOG" | grep -q "deleted [0-9]* conntrack entries left by an earlier run" ||
	fail "restart did not purge the old conntrack entries"
n=$(wc -l <"$SG_TMP/tcp.times")
sleep 1
[ "$(wc -l <"$SG_TMP/tcp.times")" -le $((n + 1)) ] || fail "old flow still passes after restart"
[ "$(ct_ours)" = 0 ] || fail "entries with our mark remain after restart"
pass "restart after SIGKILL: old entries purged, the old flow no longer passes"
kill "$SPID" 2>/dev/null || true
