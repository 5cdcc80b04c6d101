#!/bin/bash
# Log flooding through UDP ASSOCIATE (issue 10, abuse resistance): a host
# on the target side that found the relay's external port sends it 200,000
# datagrams from a source the rules deny, and the client sends 50,000
# datagrams to a denied destination.  Denials are counted and summarised
# (per association, rate-limited): a handful of log lines, not one per
# datagram.  The association keeps relaying, and another host's UDP
# association is served within 1 s meanwhile.
. "$(dirname "$0")/lib.sh"
ABUSE="$PY $SG_ROOT/netns-tests/tools/abuse.py"
sg_topology
sg_config "rule allow from 198.18.0.0/24 to 198.18.1.2 port 7000"
sg_daemon
bg ip netns exec "$NS_T" $PEER udp-echo 7000 --log "$SG_TMP/echo.log"
wait_listen "$NS_T" 7000 u
jq_() { $PY -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
legit() {
	inc $ABUSE probe $G4 1080 --src $C4B --dst $T4:7000 --udp --count "$1" \
		--interval "$2" --timeout 15
}

quiet=$(legit 5 0.2) || fail "probe: $quiet"
log "another host's UDP association, no attack: $quiet"

# The attacked association (client C4): its external port is the source
# port the echo server sees from the gateway.
: >"$SG_TMP/echo.log"
inc $ABUSE udp-hold $G4 1080 --src $C4 --dst $T4:7000 --denied $T4:9 \
	--denied-count 50000 --duration 10 --hold 14 >"$SG_TMP/hold.out" &
HOLD=$!
SG_PIDS+=($HOLD)
for _ in $(seq 1 100); do
	grep -qs ready "$SG_TMP/hold.out" && break
	sleep 0.05
done
grep -q ready "$SG_TMP/hold.out" || fail "the UDP association did not relay"
ext=$(awk -v g="::ffff:$G4T" '$2 == g {print $3; exit}' "$SG_TMP/echo.log")
[ -n "$ext" ] || fail "external port not found"
log "the association's external port: $G4T:$ext"
lines0=$(wc -l <"$SG_LOG")
bytes0=$(wc -c <"$SG_LOG")

int_ $ABUSE udp-flood $G4T "$ext" --src $T4 --sport 9999 --count 200000 \
	--duration 10 >"$SG_TMP/flood.json" &
FLOOD=$!
SG_PIDS+=($FLOOD)
sleep 1
during=$(legit 16 0.5) || fail "probe: $during"
wait $FLOOD
lines=$(($(wc -l <"$SG_LOG") - lines0))
bytes=$(($(wc -c <"$SG_LOG") - bytes0))
# The attacked association lives 4 s longer: its pending summary is
# written by then (10 s after the previous line).
wait $HOLD
flood=$(cat "$SG_TMP/flood.json")
hold=$(tail -1 "$SG_TMP/hold.out")
denied_lines=$(grep -c "datagrams denied in\| to 198.18.1.2:9 .*denied by\|198.18.1.2:9999 .*denied by" "$SG_LOG")
log "inbound flood from $T4:9999: $flood; the client: $hold"
log "another host's UDP association during the attack: $during"
log "daemon log during the attack: $lines lines, $bytes bytes; $denied_lines lines about the denials in all"

ok=$(echo "$during" | jq_ "d['ok']")
max=$(echo "$during" | jq_ "d['max']")
[ "$ok" = 16 ] || fail "another host served $ok times of 16"
awk -v m="$max" 'BEGIN { exit !(m < 1.0) }' || fail "another host waited up to ${max}s"
pass "another host's UDP association served within 1 s (max ${max}s)"
[ "$(echo "$hold" | jq_ "d['echo_after']")" = True ] || fail "the attacked association stopped relaying"
pass "the attacked association still relays"
[ "$denied_lines" -le 20 ] || fail "$denied_lines log lines about denied datagrams (want a summary)"
grep -q "datagrams denied in" "$SG_LOG" || fail "no summary line"
stats=$(ing "$SG_CLIENT" stats --json --control "$SG_TMP/control.sock")
denied=$(echo "$stats" | jq_ "d['udp']['denied']")
[ "$denied" -gt 1000 ] || fail "stats count $denied denied datagrams"
pass "denials summarised: $denied_lines log lines for $denied denied datagrams"
grep -q "ERROR: AddressSanitizer\|runtime error" "$SG_LOG" && fail "sanitizer report in the daemon log"
true
