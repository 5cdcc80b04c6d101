#!/bin/bash
# TRANSPARENT details: a leftover `inet socksgate` table is replaced at
# start and other tables are left alone; `snat ADDRESS` and `snat none`
# (applied by SIGHUP) decide the source the target sees; DST and S.ADDR
# given as names are resolved by the daemon; a reload whose rules no
# longer allow an association ends it (reason policy), and only it.
. "$(dirname "$0")/lib.sh"
sg_topology
ip -n "$NS_G" addr add 198.18.1.3/24 dev g1
ing nft -f - <<'NFT' || fail "cannot create the leftover tables"
table inet socksgate {
	set leftover { type ipv4_addr; }
}
table inet other {
	chain c {
		type filter hook input priority 0; policy accept;
		counter
	}
}
NFT
sg_config "rule allow from 198.18.0.0/24" "snat 198.18.1.3" "close-on-target-fin no"
sg_daemon
nft_table | grep -q "set leftover" && fail "the leftover table was not replaced"
nft_table | grep -q "flags owner" || fail "our table lacks the owner flag"
ing nft list table inet other | grep -q "chain c" || fail "another table was touched"
pass "a leftover inet socksgate table is replaced at start; inet other is untouched"

bg ip netns exec "$NS_T" $PEER udp-echo 7000 --log "$SG_TMP/t.log"
wait_listen "$NS_T" 7000 u
tp_open udp $C4:46700 target.test:7000 || fail "DST as a name refused"
inc $PEER udp-echo-check "$BND_ADDR" "$BND_PORT" --src $C4:46700 --count 3 >/dev/null || fail "no echo through snat ADDRESS"
grep -qE "dgram (::ffff:)?198.18.1.3 " "$SG_TMP/t.log" || fail "target saw $(tail -1 "$SG_TMP/t.log"), want source 198.18.1.3"
pass "snat 198.18.1.3: the target sees 198.18.1.3; DST given as target.test resolved by the daemon"
kill "$TP_PID"; wait "$TP_PID" 2>/dev/null

sed -i 's/^snat 198.18.1.3$/snat none/' "$SG_TMP/socksgated.conf"
sg_reload
nft_table | sed -n '/chain post/,/}/p' | grep -qE "masquerade|snat" && fail "post chain still has a NAT rule after snat none"
: >"$SG_TMP/t.log"
tp_open udp client.test:46701 $T4:7000 || fail "S.ADDR as a name refused"
inc $PEER udp-echo-check "$BND_ADDR" "$BND_PORT" --src $C4:46701 --count 3 >/dev/null || fail "no echo with snat none"
grep -qE "dgram (::ffff:)?$C4 " "$SG_TMP/t.log" || fail "target saw $(tail -1 "$SG_TMP/t.log"), want the client's own address"
pass "snat none (by SIGHUP): the target sees the client's address; S.ADDR given as client.test resolved"
kill "$TP_PID"; wait "$TP_PID" 2>/dev/null

# Two live associations, one named by DST name; the reload denies DST port
# 7000 for TRANSPARENT, so the first ends and the second (port 7009) stays.
tp_open udp $C4:46800 target.test:7000 || fail "refused"
P1=$TP_PID
tp_open udp $C4:46801 $T4:7009 || fail "refused"
P2=$TP_PID
sed -i 's/^rule allow from 198.18.0.0\/24$/rule deny port 7000 command transparent\nrule allow from 198.18.0.0\/24/' "$SG_TMP/socksgated.conf"
sg_reload
wait_exit "$P1" 20 || fail "the association the new rules deny did not end within 20 s"
[ $EXIT_RC = 3 ] || fail "the association the new rules deny did not end (rc $EXIT_RC)"
# The reload ends every denied association at once, and logs each end
# before the elements go (the same loop turn): once P1's are gone, any
# wrongly ended P2 would be in the log and out of the set too.
wait_for 10 '[ "$(set_count assoc4)" -le 1 ]' || fail "the denied association's elements are left"
[ "$(log_count "reason policy")" = 2 ] || fail "$(log_count "reason policy") policy ends logged, want 2 (session and assoc of the denied one)"
[ "$(set_count assoc4)" = 1 ] || fail "assoc4 has $(set_count assoc4) elements, want 1"
kill -0 "$P2" 2>/dev/null || fail "an association the new rules still allow was ended"
pass "reload: the association the new rules deny ends (reason policy), the allowed one stays"
kill "$P2"; wait "$P2" 2>/dev/null
true
