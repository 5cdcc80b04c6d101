#!/bin/bash
# Flow tracking without events and by time: with nf_conntrack_events = 0
# the daemon says so and polls, and a target's FIN still ends the
# association (within the 1 s poll); `timeout association-idle` keeps a
# busy association and ends a quiet one (reason idle).
. "$(dirname "$0")/lib.sh"
sg_topology
ing sysctl -qw net.netfilter.nf_conntrack_events=0 ||
	skip "cannot turn conntrack events off in a namespace here"
# association-idle comes with a reload below: the TCP association here
# must not end idle while the helpers start.
sg_config "rule allow from 198.18.0.0/24" "close-on-flow-end no"
sg_daemon
bg ip netns exec "$NS_T" $PEER tcp-closer 7001 --log "$SG_TMP/closes.log"
bg ip netns exec "$NS_T" $PEER udp-echo 7000
wait_listen "$NS_T" 7001
wait_listen "$NS_T" 7000 u
grep -q "nf_conntrack_events is 0: no conntrack events; polling" "$SG_LOG" ||
	fail "the daemon did not say it falls back to polling"
pass "nf_conntrack_events = 0: the daemon says it polls instead"

sess_of() { # "address:port" of S -> id of the latest session relaying it
	grep -F "$1 -> " "$SG_LOG" | grep -o "assoc [0-9]* start: session [0-9]*" | tail -1 | awk '{print $5}'
}
tp_open tcp $C4:46500 $T4:7001 || fail "refused"
: >"$SG_TMP/closes.log"
inc $PEER tcp-echo-check "$BND_ADDR" "$BND_PORT" --src $C4:46500 --bytes 100 >/dev/null
wait_exit "$TP_PID" 20 || fail "the association did not end within 20 s of the target's FIN"
[ $EXIT_RC = 3 ] || fail "target FIN did not end the association without events (rc $EXIT_RC)"
sid=$(sess_of "$C4:46500")
wait_log "session $sid end: .*reason target-fin" || fail "no target-fin reason"
# From the target's close to the daemon closing N1 (its log line).
d=$(($(log_us "session $sid end: ") - $(s_us "$(cut -d' ' -f1 "$SG_TMP/closes.log" | head -1)")))
[ $d -lt 2500000 ] || fail "ended $(us_s $d) s after the target's FIN, want within the 1 s poll"
pass "polling: target FIN ended the association $(us_s $d) s after the FIN"

sed -i '$a timeout association-idle 2' "$SG_TMP/socksgated.conf"
sg_reload
# association-idle: busy for 3.5 s (one process sends a datagram every
# 0.3 s) it stays.  That needs the sender to have run: the check counts
# only if the association can have gone 1.9 s without a packet nowhere
# between its start and the check (from the datagrams' send and answer
# times); if this machine starved the sender, it is tried again.
longest_gap() { # from_us to_us times-file: the longest possible quiet time (µs)
	awk -v a="$1" -v b="$2" 'BEGIN { prev = a; m = 0 }
		{ snd = $2 * 1e6; if (snd > b) next; g = $1 * 1e6 - prev; if (g > m) m = g; prev = snd }
		END { g = b - prev; if (g > m) m = g; printf "%.0f", m }' "$3"
}
for attempt in 1 2 3; do
	port=$((46600 + attempt))
	t_open=$(now_us)
	tp_open udp $C4:$port $T4:7000 || fail "refused"
	: >"$SG_TMP/idle.times"
	bg ip netns exec "$NS_C" $PEER udp-stream "$BND_ADDR" "$BND_PORT" --src $C4:$port \
		--log "$SG_TMP/idle.times" --interval 0.3 --max-time 5
	SP=$LAST_PID
	sleep_until $((t_open + 3500000))
	alive=no
	kill -0 "$TP_PID" 2>/dev/null && alive=yes
	t_check=$(now_us)
	gap=$(longest_gap "$t_open" "$t_check" "$SG_TMP/idle.times")
	[ "$gap" -ge 1900000 ] || break
	log "attempt $attempt: up to $(us_s "$gap") s without a datagram (sender starved): not a test of idle, again"
	[ $attempt -lt 3 ] || fail "could not keep an association busy in 3 attempts"
	kill "$TP_PID" "$SP" 2>/dev/null
	wait "$TP_PID" "$SP" 2>/dev/null
done
[ $alive = yes ] || fail "a busy association ended (association-idle 2; at most $(us_s "$gap") s without a datagram)"
# ...quiet, it ends: at least 2 s after its last packet, at most about
# 2 s + two polls (the poll that sees the last packet, the one that finds
# 2 s passed).
wait_exit "$SP" 20 || fail "the stream did not stop"
last=$(s_us "$(tail -1 "$SG_TMP/idle.times" | cut -d' ' -f2)")
wait_exit "$TP_PID" 20 || fail "the quiet association did not end within 20 s"
[ $EXIT_RC = 3 ] || fail "the quiet association did not end (rc $EXIT_RC)"
sid=$(sess_of "$C4:$port")
wait_log "session $sid end: .*reason idle" || fail "no idle reason logged"
d=$(($(log_us "session $sid end: ") - last))
[ $d -ge 1900000 ] && [ $d -lt 5000000 ] || fail "idle end $(us_s $d) s after the last datagram, want 2-4 s"
pass "timeout association-idle 2: busy association kept for 3.5 s, quiet one ended $(us_s $d) s after its last datagram"
true
