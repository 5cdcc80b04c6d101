#!/bin/bash
# DNS amplification through UDP ASSOCIATE (issue 10, abuse resistance):
# one client sends datagrams naming ever new names for 10 s.  The lookups
# the gateway sends its resolver are bounded per client (udp-name-rate),
# another host's UDP association that needs a lookup is served within
# 1 s meanwhile, and a name that does not exist is asked for once, not
# once per association (negative cache).
. "$(dirname "$0")/lib.sh"
ABUSE="$PY $SG_ROOT/netns-tests/tools/abuse.py"
sg_topology
sg_config "rule allow from 198.18.0.0/24"
# The gateway's resolver (resolv.conf: $T4) answers good.test and
# nothing else (NXDOMAIN), counting the queries it gets.
bg ip netns exec "$NS_T" $ABUSE dns-server $T4 53 --count-file "$SG_TMP/queries" \
	--answer good.test=$T4
wait_listen "$NS_T" 53 u
bg ip netns exec "$NS_T" $PEER udp-echo 7000
wait_listen "$NS_T" 7000 u
sg_daemon
jq_() { $PY -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# Queries are counted where they arrive, by the target's kernel (the
# Python server may not keep up with a flood).
int_ nft -f - <<'NFT' || fail "nft counter in the target namespace"
table inet abusecount {
	counter dns { }
	chain in {
		type filter hook prerouting priority 0; policy accept;
		udp dport 53 counter name "dns"
	}
}
NFT
queries() { int_ nft list counter inet abusecount dns | awk '/packets/ {print $2}'; }
legit() { # COUNT INTERVAL: another host, a datagram to good.test (a lookup)
	inc $ABUSE probe $G4 1080 --src $C4B --dst $T4:7000 --udp --name good.test \
		--count "$1" --interval "$2" --timeout 15
}

quiet=$(legit 3 0.2) || fail "probe: $quiet"
log "another host, UDP to good.test, no attack: $quiet"

q0=$(queries)
inc $ABUSE udp-names $G4 1080 --src $C4 --count 300000 --duration 10 \
	--suffix flood.test >"$SG_TMP/names.json" &
NAMES=$!
SG_PIDS+=($NAMES)
sleep 1
during=$(legit 16 0.5) || fail "probe: $during"
wait $NAMES
sleep 1
q1=$(queries)
names=$(cat "$SG_TMP/names.json")
log "attacker ($C4, ever new names, 10 s): $names"
log "queries the gateway sent its resolver during the attack: $((q1 - q0))"
log "another host, UDP to good.test, during the attack: $during"
# Negative cache: 10 associations (one after the other) name the same
# missing name; the resolver is asked once per family, not per association.
n0=$(queries)
for i in $(seq 1 10); do
	inc $ABUSE udp-names $G4 1080 --src $C4B --count 3 --duration 2 --gap 0.1 \
		--same nothere.test >/dev/null || fail "udp-names"
done
sleep 0.5
n1=$(queries)
log "queries for one missing name from 10 associations: $((n1 - n0))"

ok=$(echo "$during" | jq_ "d['ok']")
max=$(echo "$during" | jq_ "d['max']")
[ "$ok" = 16 ] || fail "another host served $ok times of 16"
awk -v m="$max" 'BEGIN { exit !(m < 1.0) }' || fail "another host waited up to ${max}s"
pass "another host's lookups served within 1 s (max ${max}s)"
[ $((q1 - q0)) -le 400 ] || fail "$((q1 - q0)) DNS queries in 10 s from one client (want <= 400)"
pass "queries bounded: $((q1 - q0)) for $(echo "$names" | jq_ "d['sent']") datagrams"

[ $((n1 - n0)) -le 4 ] || fail "$((n1 - n0)) queries for one missing name (want the negative cache)"
pass "missing name cached: $((n1 - n0)) queries for 10 associations"

stats=$(ing "$SG_CLIENT" stats --json --control "$SG_TMP/control.sock")
limited=$(echo "$stats" | jq_ "d['udp']['name_lookups_limited']")
neg=$(echo "$stats" | jq_ "d['dns']['negative_hits']")
log "stats: $limited lookups refused by udp-name-rate, $neg negative cache hits"
[ "$limited" -gt 0 ] && [ "$neg" -gt 0 ] || fail "stats lack the DNS counters"
grep -q "ERROR: AddressSanitizer\|runtime error" "$SG_LOG" && fail "sanitizer report in the daemon log"
true
