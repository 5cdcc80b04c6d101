#!/bin/bash
# Slowloris (issue 10, abuse resistance): one host opens 2,000 sockets and
# sends one byte a second on each, reopening every socket the daemon
# closes, for 15 s.  With the default limits a client from another host
# must be served (CONNECT and an echo) within 1 s throughout, and the
# daemon must refuse the attacker's excess at accept (per-source limit).
# (The attack runs at least 15 s and on until the probes are done: they
# start once every socket has been opened, 3 s in at the earliest, and
# end before it stops, however slowly Python starts.  Each probe is timed
# from its connect to the echo.)
. "$(dirname "$0")/lib.sh"
ABUSE="$PY $SG_ROOT/netns-tests/tools/abuse.py"
sg_topology
sg_config "rule allow from 198.18.0.0/24"
sg_daemon
bg ip netns exec "$NS_T" $PEER tcp-echo 7000
wait_listen "$NS_T" 7000
jq_() { $PY -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
legit() {
	inc $ABUSE probe $G4 1080 --src $C4B --dst $T4:7000 --count "$1" \
		--interval "$2" --timeout 15
}

quiet=$(legit 5 0.2) || fail "probe: $quiet"
log "legitimate client, no attack: $quiet"

ip netns exec "$NS_C" $ABUSE slowloris $G4 1080 --src $C4 --sockets 2000 --duration 15 \
	--max-connects 300000 --stop-file "$SG_TMP/loris.stop" \
	--ready-file "$SG_TMP/loris.ready" --ready-after 3 >"$SG_TMP/loris.json" &
LORIS=$!
SG_PIDS+=($LORIS)
wait_for 60 '[ -e "$SG_TMP/loris.ready" ] || ! kill -0 $LORIS 2>/dev/null'
[ -e "$SG_TMP/loris.ready" ] || fail "the attack did not get going: $(cat "$SG_TMP/loris.json")"
during=$(legit 20 0.5) || fail "probe: $during"
cpu=$(awk '{print $14 + $15}' /proc/$(sg_session_pid)/stat)
touch "$SG_TMP/loris.stop"
wait_exit $LORIS 60 || fail "the attack did not stop"
loris=$(cat "$SG_TMP/loris.json")
[ "$(echo "$loris" | jq_ "d['stopped']")" = True ] || fail "the attack ran out before the probes were done: $loris"
log "legitimate client from $C4B during the attack: $during"
log "attacker ($C4, 2000 sockets at 1 byte/s, $($PY -c "import json,sys; print(json.load(sys.stdin)['seconds'])" <<<"$loris") s): $loris"
log "daemon CPU so far: $cpu ticks"

ok=$(echo "$during" | jq_ "d['ok']")
max=$(echo "$during" | jq_ "d['max']")
[ "$ok" = 20 ] || fail "legitimate client served $ok times of 20 during the attack"
awk -v m="$max" 'BEGIN { exit !(m < 1.0) }' || fail "legitimate client waited up to ${max}s (want < 1 s)"
pass "another host served within 1 s throughout (max ${max}s)"

stats=$(ing "$SG_CLIENT" stats --control "$SG_TMP/control.sock")
log "$(echo "$stats" | grep -i "source")"
refused=$(ing "$SG_CLIENT" stats --json --control "$SG_TMP/control.sock" |
	jq_ "d['sources']['refused_handshakes']")
[ "$refused" -gt 0 ] || fail "no connection refused by the per-source handshake limit"
lines=$(grep -c "max-handshakes-per-source" "$SG_LOG")
[ "$lines" -le 10 ] || fail "$lines log lines for the refusals (want a summary)"
pass "the attacker's excess refused at accept ($refused connections, $lines log lines)"
kill -0 "$DAEMON_PID" || fail "daemon died"
grep -q "ERROR: AddressSanitizer\|runtime error" "$SG_LOG" && fail "sanitizer report in the daemon log"
true
