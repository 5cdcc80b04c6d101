#!/bin/bash
# Relay-port hoarding (issue 10, abuse resistance): with 150 relay ports,
# one host asks for 200 TRANSPARENT associations and holds them.  With the
# default per-source quota it gets 128 (X'00'), then X'01' with a log
# line; a client on another host still gets its association at once.
. "$(dirname "$0")/lib.sh"
ABUSE="$PY $SG_ROOT/netns-tests/tools/abuse.py"
sg_topology
sg_config "rule allow from 198.18.0.0/24" "relay-ports 20000-20149"
sg_daemon
bg ip netns exec "$NS_T" $PEER udp-echo 7000
wait_listen "$NS_T" 7000 u
jq_() { $PY -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# Both hold their associations until released (at most 120 s), so that
# the other host's association is asked for and used while the attacker
# holds, however slowly the helpers start.
bg ip netns exec "$NS_C" $ABUSE hold-assoc $G4 1080 --src $C4 --dst $T4:7000 --count 200 \
	--first-port 30000 --hold 120 --release-file "$SG_TMP/release" >"$SG_TMP/hold.json"
HOLD=$LAST_PID
wait_for 120 '[ -s "$SG_TMP/hold.json" ] || ! kill -0 $HOLD 2>/dev/null'
hold=$(cat "$SG_TMP/hold.json")
[ -n "$hold" ] || fail "the attacker's requests did not finish"
log "attacker ($C4, 200 associations held, 150 relay ports): $hold"

# The other host: one association, timed from its connect to the reply.
bg ip netns exec "$NS_C" $ABUSE hold-assoc $G4 1080 --src $C4B --dst $T4:7000 --count 1 \
	--first-port 41000 --hold 120 --release-file "$SG_TMP/release" >"$SG_TMP/legit.json"
LEGIT=$LAST_PID
wait_for 60 '[ -s "$SG_TMP/legit.json" ] || ! kill -0 $LEGIT 2>/dev/null'
legit=$(cat "$SG_TMP/legit.json")
[ -n "$legit" ] || fail "the other host's request did not finish"
kill -0 $HOLD 2>/dev/null || fail "the attacker stopped holding"
log "another host ($C4B), one association: $legit"
[ "$(echo "$legit" | jq_ "d['codes'].get('00', 0)")" = 1 ] ||
	fail "another host's association refused while one host holds the ports"
read -r bnd bport < <(echo "$legit" | jq_ "' '.join(map(str, d['bound']))")
inc $PEER udp-echo-check "$bnd" "$bport" --src $C4B:41000 --count 3 >/dev/null ||
	fail "the other host's association does not relay"
dt=$(echo "$legit" | jq_ "d['max']")
awk -v m="$dt" 'BEGIN { exit !(m < 1.0) }' || fail "another host waited ${dt}s"
kill -0 $HOLD 2>/dev/null || fail "the attacker stopped holding before the other host was served"
pass "another host's association set up in ${dt}s and relays"

granted=$(echo "$hold" | jq_ "d['codes'].get('00', 0)")
refused=$(echo "$hold" | jq_ "d['codes'].get('01', 0)")
[ "$granted" = 128 ] && [ "$refused" = 72 ] ||
	fail "attacker got $granted X'00' and $refused X'01' (want 128 and 72)"
lines=$(grep -c "TRANSPARENT request(s) refused (X.01.) in .*max-associations-per-source" "$SG_LOG")
[ "$lines" -ge 1 ] || fail "no log line for the quota"
[ "$lines" -le 10 ] || fail "$lines log lines for the quota (want a summary)"
hits=$(ing "$SG_CLIENT" stats --json --control "$SG_TMP/control.sock" |
	jq_ "d['sources']['refused_associations']")
[ "$hits" = 72 ] || fail "stats count $hits quota refusals, want 72"
pass "one host gets 128 associations, then X'01' ($lines log lines, $hits counted)"
touch "$SG_TMP/release"
wait_exit $HOLD 60 || fail "the attacker did not let go"
wait_exit $LEGIT 60 || fail "the other host did not let go"
grep -q "ERROR: AddressSanitizer\|runtime error" "$SG_LOG" && fail "sanitizer report in the daemon log"
true
