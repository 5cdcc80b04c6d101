#!/bin/bash
# Flow tracking without events and by time: with nf_conntrack_events = 0
# the daemon says so and polls, and a target's FIN still ends the
# association (within the 1 s poll); `timeout association-idle` keeps a
# busy association and ends a quiet one (reason idle).
. "$(dirname "$0")/lib.sh"
sg_topology
ing sysctl -qw net.netfilter.nf_conntrack_events=0 ||
	skip "cannot turn conntrack events off in a namespace here"
sg_config "rule allow from 198.18.0.0/24" "timeout association-idle 2" \
	"close-on-flow-end no"
sg_daemon
bg ip netns exec "$NS_T" $PEER tcp-closer 7001
bg ip netns exec "$NS_T" $PEER udp-echo 7000
wait_listen "$NS_T" 7001
wait_listen "$NS_T" 7000 u
grep -q "nf_conntrack_events is 0: no conntrack events; polling" "$SG_LOG" ||
	fail "the daemon did not say it falls back to polling"
pass "nf_conntrack_events = 0: the daemon says it polls instead"

tp_open tcp $C4:46500 $T4:7001 || fail "refused"
inc $PEER tcp-echo-check "$BND_ADDR" "$BND_PORT" --src $C4:46500 --bytes 100 >/dev/null
t0=$(date +%s.%N)
wait "$TP_PID"
rc=$?
dt=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN{printf "%.2f", a-b}')
[ $rc = 3 ] || fail "target FIN did not end the association without events (rc $rc)"
awk -v d="$dt" 'BEGIN { exit !(d < 2.5) }' || fail "ended after ${dt}s, want within the poll"
grep -q "reason target-fin" "$SG_LOG" || fail "no target-fin reason"
pass "polling: target FIN ended the association after ${dt}s"

# association-idle: busy for 3.5 s (a datagram every 0.3 s) it stays...
tp_open udp $C4:46600 $T4:7000 || fail "refused"
for _ in $(seq 1 12); do
	inc $PEER udp-echo-check "$BND_ADDR" "$BND_PORT" --src $C4:46600 --count 1 >/dev/null
	sleep 0.3
done
kill -0 "$TP_PID" 2>/dev/null || fail "a busy association ended (association-idle 2)"
# ...quiet, it ends.
t0=$(date +%s.%N)
wait "$TP_PID"
rc=$?
dt=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN{printf "%.2f", a-b}')
[ $rc = 3 ] || fail "the quiet association did not end (rc $rc)"
awk -v d="$dt" 'BEGIN { exit !(d >= 1.0 && d < 4.5) }' || fail "idle end after ${dt}s, want 2-3.5 s"
grep -q "reason idle" "$SG_LOG" || fail "no idle reason logged"
pass "timeout association-idle 2: busy association kept, quiet one ended after ${dt}s"
true
