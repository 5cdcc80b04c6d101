#!/bin/bash
# Password guessing (issue 10, abuse resistance): one host keeps 200
# connections at a time offering a wrong password (yescrypt) for 12 s.
# Another host's valid login must still be answered within 1 s, the
# guesser's failures must be throttled (growing delay per source), and
# the failures logged in summary, not one line each.
. "$(dirname "$0")/lib.sh"
ABUSE="$PY $SG_ROOT/netns-tests/tools/abuse.py"
sg_topology
printf 'alice:%s\n' "$(mkpasswd -m yescrypt wonderland)" >"$SG_TMP/users"
sg_config "auth password" "users $SG_TMP/users" "rule allow from 198.18.0.0/24"
sg_daemon
bg ip netns exec "$NS_T" $PEER tcp-echo 7000
wait_listen "$NS_T" 7000

legit() { # COUNT INTERVAL: valid logins from the other host, CONNECT + echo
	inc $ABUSE probe $G4 1080 --src $C4B --dst $T4:7000 --user alice \
		--password wonderland --count "$1" --interval "$2" --timeout 15
}
jq_() { $PY -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

quiet=$(legit 5 0.2) || fail "probe: $quiet"
log "valid login, no attack: $quiet"

inc $ABUSE auth-flood $G4 1080 --src $C4 --user alice --password guess \
	--concurrency 200 --duration 12 --max-attempts 200000 >"$SG_TMP/flood.json" &
FLOOD=$!
SG_PIDS+=($FLOOD)
sleep 2
during=$(legit 16 0.5) || fail "probe: $during"
wait $FLOOD
flood=$(cat "$SG_TMP/flood.json")
log "valid login from $C4B during the attack: $during"
log "attacker ($C4, 200 concurrent wrong passwords, 12 s): $flood"

ok=$(echo "$during" | jq_ "d['ok']")
max=$(echo "$during" | jq_ "d['max']")
[ "$ok" = 16 ] || fail "valid logins during the attack: $ok of 16 served"
awk -v m="$max" 'BEGIN { exit !(m < 1.0) }' || fail "valid login took up to ${max}s during the attack (want < 1 s)"
pass "valid logins from another host served during the attack (max ${max}s)"

fails=$(echo "$flood" | jq_ "d['answered_failure']")
[ "$fails" -le 30 ] || fail "attacker got $fails failure answers in 12 s (want throttled: <= 30)"
pass "guesses throttled: $fails wrong passwords checked in 12 s"

# Fair queueing alone: with penalties off (SIGHUP) the guesser keeps a
# worker busy all the time, and never both; another host's login still
# takes its turn at once.
echo "auth-penalty off" >>"$SG_TMP/socksgated.conf"
kill -HUP "$DAEMON_PID"
sleep 0.5
inc $ABUSE auth-flood $G4 1080 --src $C4 --user alice --password guess \
	--concurrency 200 --duration 8 --max-attempts 200000 >"$SG_TMP/flood2.json" &
FLOOD=$!
SG_PIDS+=($FLOOD)
sleep 1.5
fair=$(legit 10 0.5) || fail "probe: $fair"
wait $FLOOD
flood2=$(cat "$SG_TMP/flood2.json")
log "without penalties, valid login from $C4B during the attack: $fair"
log "attacker without penalties (8 s): $flood2"
ok=$(echo "$fair" | jq_ "d['ok']")
max=$(echo "$fair" | jq_ "d['max']")
[ "$ok" = 10 ] || fail "valid logins without penalties: $ok of 10 served"
awk -v m="$max" 'BEGIN { exit !(m < 1.0) }' || fail "fair queueing: a valid login took ${max}s"
[ "$(echo "$flood2" | jq_ "d['answered_failure']")" -gt 30 ] || fail "penalties were not off"
pass "fair queueing alone: valid logins served within ${max}s while the guesser is unthrottled"

# Summarised logging: far fewer lines than failures.
lines=$(grep -c "authentication failed for user .* from\|failed password checks" "$SG_LOG")
log "auth failure log lines: $lines"
[ "$lines" -le 10 ] || fail "$lines log lines for $((fails + $(echo "$flood2" | jq_ "d['answered_failure']"))) failures (want a summary)"
grep -q "failed password checks" "$SG_LOG" || fail "no summary line"
stats=$("$SG_CLIENT" stats --control "$SG_TMP/control.sock")
log "$(echo "$stats" | grep -i "auth\|source")"
echo "$stats" | grep -q "penalised" || fail "stats lack the penalty counters"
pass "failures logged in summary ($lines lines), counted in stats"
grep -q "ERROR: AddressSanitizer\|runtime error" "$SG_LOG" && fail "sanitizer report in the daemon log"
true
