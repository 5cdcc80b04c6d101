#!/bin/bash
# Log flooding through UDP ASSOCIATE (issue 10, abuse resistance): a host
# on the target side that found the relay's external port sends it 200,000
# datagrams from a source the rules deny, and the client sends 50,000
# datagrams to a denied destination.  Denials are counted and summarised
# (per association, rate-limited): a handful of log lines, not one per
# datagram.  The association keeps relaying, and another host's UDP
# association is served within 1 s meanwhile.
# (The inbound flood sends 20,000 datagrams a second, the 200,000 in 10 s
# spread over the attack; it runs at least 10 s and on until the probes are done:
# they start once it is under way and end before it stops; the attacked
# association is held until its summary line is in the log.  Each probe
# is timed from its connect to the echo.)
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
bg ip netns exec "$NS_C" $ABUSE udp-hold $G4 1080 --src $C4 --dst $T4:7000 --denied $T4:9 \
	--denied-count 50000 --duration 10 --hold 120 --release-file "$SG_TMP/release" \
	>"$SG_TMP/hold.out"
HOLD=$LAST_PID
wait_for 60 'grep -qs ready "$SG_TMP/hold.out" || ! kill -0 $HOLD 2>/dev/null'
grep -q ready "$SG_TMP/hold.out" || fail "the UDP association did not start: $(cat "$SG_TMP/hold.out")"
ext=$(awk -v g="::ffff:$G4T" '$2 == g {print $3; exit}' "$SG_TMP/echo.log")
[ -n "$ext" ] || fail "external port not found (no echo came through the association)"
log "the association's external port: $G4T:$ext"
lines0=$(wc -l <"$SG_LOG")
bytes0=$(wc -c <"$SG_LOG")

ip netns exec "$NS_T" $ABUSE udp-flood $G4T "$ext" --src $T4 --sport 9999 --count 10000000 --rate 20000 \
	--duration 10 --stop-file "$SG_TMP/flood.stop" --ready-file "$SG_TMP/flood.ready" \
	--ready-after 1 >"$SG_TMP/flood.json" &
FLOOD=$!
SG_PIDS+=($FLOOD)
wait_for 60 '[ -e "$SG_TMP/flood.ready" ] || ! kill -0 $FLOOD 2>/dev/null'
[ -e "$SG_TMP/flood.ready" ] || fail "the flood did not get going: $(cat "$SG_TMP/flood.json")"
during=$(legit 16 0.5) || fail "probe: $during"
touch "$SG_TMP/flood.stop"
wait_exit $FLOOD 60 || fail "the flood did not stop"
lines=$(($(wc -l <"$SG_LOG") - lines0))
bytes=$(($(wc -c <"$SG_LOG") - bytes0))
# The attacked association lives until its pending summary is written
# (10 s after the previous line); then it must still relay.
wait_log "datagrams denied in" 60 || fail "no summary line"
touch "$SG_TMP/release"
wait_exit $HOLD 60 || fail "the attacked association's client did not finish"
flood=$(cat "$SG_TMP/flood.json")
[ "$(echo "$flood" | jq_ "d['stopped']")" = True ] || fail "the flood ran out before the probes were done: $flood"
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
stats=$(ing "$SG_CLIENT" stats --json --control "$SG_TMP/control.sock")
denied=$(echo "$stats" | jq_ "d['udp']['denied']")
[ "$denied" -gt 1000 ] || fail "stats count $denied denied datagrams"
pass "denials summarised: $denied_lines log lines for $denied denied datagrams"
grep -q "ERROR: AddressSanitizer\|runtime error" "$SG_LOG" && fail "sanitizer report in the daemon log"
true
