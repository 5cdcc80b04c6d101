#!/bin/bash
# TRANSPARENT, IPv4 and IPv6, TCP and UDP, against the real kernel:
# data S -> BND reaches DST and comes back byte-exact; packets from another
# port, another address or of another protocol are dropped silently and
# counted; the association's comment shows in `nft list`; reply
# codes X'09' (PTCL), X'02' (spoofed S.ADDR), X'08' (mixed families).
. "$(dirname "$0")/lib.sh"
sg_topology
# Each association here carries several TCP connections in turn: keep it
# when one of them closes (issue 4 tests the default, close on target FIN).
sg_config "rule allow from 198.18.0.0/24" "rule allow from 2001:db8::/64" \
	"close-on-target-fin no"
sg_daemon
bg ip netns exec "$NS_T" $PEER tcp-echo 7000 --log "$SG_TMP/target-tcp.log"
bg ip netns exec "$NS_T" $PEER udp-echo 7000 --log "$SG_TMP/target-udp.log"
touch "$SG_TMP/target-tcp.log" "$SG_TMP/target-udp.log"
wait_listen "$NS_T" 7000
wait_listen "$NS_T" 7000 u

for fam in 4 6; do
	if [ $fam = 4 ]; then C=$C4 CB=$C4B T=$T4; else C=$C6 CB=$C6B T=$T6; fi
	for proto in tcp udp; do
		other=udp; [ $proto = udp ] && other=tcp
		sport=$((41000 + fam * 10 + ${#proto}))
		what="IPv$fam $proto"
		tp_open $proto "$(hp $C $sport)" "$(hp $T 7000)" || fail "$what: association refused"
		nft_table | grep -qE "comment \"assoc [0-9]+ session [0-9]+ client \\[?$C\\]?:" ||
			fail "$what: comment not in nft list"
				if [ $proto = tcp ]; then
			inc $PEER tcp-echo-check "$BND_ADDR" "$BND_PORT" --src "$(hp $C $sport)" --bytes 1000000 ||
				fail "$what: data did not come back byte-exact"
		else
			inc $PEER udp-echo-check "$BND_ADDR" "$BND_PORT" --src "$(hp $C $sport)" --count 20 --size 1200 ||
				fail "$what: datagrams did not come back byte-exact"
		fi
		pass "$what: S -> BND -> DST and back, byte-exact"
		nt_tcp=$(wc -l <"$SG_TMP/target-tcp.log")
		nt_udp=$(wc -l <"$SG_TMP/target-udp.log")
		d0=$(dropped_packets)
		# Same address, another port.
		inc $PEER $proto-expect-silence "$BND_ADDR" "$BND_PORT" --src "$(hp $C $((sport + 1)))" ||
			fail "$what: another source port was not dropped silently"
		# Another address, same port.
		inc $PEER $proto-expect-silence "$BND_ADDR" "$BND_PORT" --src "$(hp $CB $sport)" ||
			fail "$what: another source address was not dropped silently"
		# Another protocol, same addresses and ports.
		inc $PEER $other-expect-silence "$BND_ADDR" "$BND_PORT" --src "$(hp $C $sport)" ||
			fail "$what: $other to the bound port was not dropped silently"
		d1=$(dropped_packets)
		[ "$d1" -ge $((d0 + 3)) ] || fail "$what: dropped counter $d0 -> $d1"
		[ "$(wc -l <"$SG_TMP/target-tcp.log")" = "$nt_tcp" ] &&
			[ "$(wc -l <"$SG_TMP/target-udp.log")" = "$nt_udp" ] ||
			fail "$what: the target received a spoofed packet"
		pass "$what: other port, other address, other protocol dropped silently (counter $d0 -> $d1)"
		kill "$TP_PID"
		wait "$TP_PID" 2>/dev/null
	done
done

# Reply codes.
req() { inc $PEER socks-raw "$G4" 1080 "$1" || true; }
hex4() { printf '%02x' ${1//./ }; }
dst4="01$(hex4 $T4)1b58"
src4() { echo "01$(hex4 $1)$(printf '%04x' $2)"; }
[ "$(req "050400${dst4}01$(src4 $C4 42000)")" = 09 ] || fail "PTCL 1 did not get X'09'"
[ "$(req "050400${dst4}2f$(src4 $C4 42000)")" = 09 ] || fail "PTCL 47 did not get X'09'"
pass "unsupported PTCL 1 and 47 get X'09'"
[ "$(req "050400${dst4}06$(src4 198.18.0.99 42000)")" = 02 ] || fail "spoofed S.ADDR did not get X'02'"
pass "spoofed S.ADDR gets X'02'"
v6src="0420010db8000000000000000000000002a410"
[ "$(req "050400${dst4}06${v6src}")" = 08 ] || fail "mixed families did not get X'08'"
pass "mixed families get X'08'"
[ "$(req "050400${dst4}06$(src4 $C4 0)")" = 02 ] || fail "S.PORT 0 did not get X'02'"
pass "S.PORT 0 gets X'02'"
# Bound endpoints stay 2 s (quarantine) after the last end.
wait_for 10 '[ "$(nft_table | grep -c elements)" = 0 ]' || fail "elements left after every association ended"
pass "no element left once every association ended"
