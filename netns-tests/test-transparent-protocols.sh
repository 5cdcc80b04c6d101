#!/bin/bash
# TRANSPARENT for every PTCL `transparent-protocols` accepts (tcp udp
# udplite sctp dccp), IPv4 and IPv6, against the real kernel:
#  - each protocol the kernel can relay: bytes sent S -> BND reach DST (the
#    target's log counts them) and come back byte-exact, and the gateway's
#    conntrack entry carries our mark, with the reply from DST:DST.PORT;
#  - a protocol the kernel cannot relay is refused with X'09' and a log
#    line saying why: DCCP without DCCP conntrack (gone from recent
#    kernels: the relay part is then skipped, naming that), UDP-Lite while
#    net.netfilter.nf_conntrack_checksum=1 (conntrack verifies UDP-Lite with
#    UDP's pseudo-header and judges every correct datagram invalid);
#  - a packet to a bound endpoint that conntrack judges invalid (TCP SYN+FIN,
#    TCP without flags, UDP-Lite once nf_conntrack_checksum is turned back
#    on) or does not track (notrack) gets no answer (no RST, no ICMP), is
#    counted in `dropped`, and does not reach the target; a reload then ends
#    the UDP-Lite association the kernel can no longer relay.
. "$(dirname "$0")/lib.sh"
PP="$PY $SG_ROOT/netns-tests/tools/proto_peer.py"
DPORT=7100
sg_topology
sg_config "rule allow from 198.18.0.0/24" "rule allow from 2001:db8::/64" \
	"transparent-protocols tcp udp udplite sctp dccp" "close-on-target-fin no"
[ "$(ing sysctl -n net.netfilter.nf_conntrack_checksum)" = 1 ] ||
	fail "nf_conntrack_checksum is not on by default in a new namespace"
sg_daemon

hex4() { printf '%02x' ${1//./ }; }
# Reply code to a raw TRANSPARENT request for PTCL $1 from C4:$2 to T4.
req_code() {
	inc $PEER socks-raw "$G4" 1080 \
		"05040001$(hex4 $T4)$(printf '%04x' $DPORT)$(printf '%02x' $1)01$(hex4 $C4)$(printf '%04x' $2)" || true
}
refusal_reason() { grep "ptcl $1 refused (0x09)" "$SG_LOG" | tail -1 | sed 's/.*(0x09): //'; }
# Bytes the target received for $1 from the gateway (masquerade address).
target_bytes() {
	local g=$G4T
	[ "$2" = 6 ] && g=$G6T
	awk -v p="$1" -v g="$g" '$1 == p && ($2 == g || $2 == "::ffff:" g) { s += $4 } END { print s + 0 }' \
		"$SG_TMP/target-$1.log"
}
# The gateway's conntrack entry of a relayed flow: ours (mark tag), from
# S:sport to BND, answered from DST:DPORT.
ct_entry() { # proto C sport T
	ing conntrack -L -p "$1" 2>/dev/null | grep "src=$2 dst=$BND_ADDR sport=$3 dport=$BND_PORT " |
		grep "src=$4 .*sport=$DPORT " | head -1
}

SERVED=()
# Starts the target's server of a protocol and waits until it can receive
# (a raw SCTP server listens on no port that ss would show).
serve() {
	local ready=$SG_TMP/target-$1.ready
	touch "$SG_TMP/target-$1.log"
	bg ip netns exec "$NS_T" $PP serve "$1" $DPORT --log "$SG_TMP/target-$1.log" \
		--ready "$ready"
	wait_for $SG_START_WAIT '[ -e "$ready" ]' || fail "the $1 server did not start"
	SERVED+=("$1")
}

relay() { # proto fam sport
	local proto=$1 fam=$2 sport=$3 C T b0 b1 line mark what="IPv$2 $1" out ec
	if [ "$fam" = 4 ]; then C=$C4 T=$T4; else C=$C6 T=$T6; fi
	tp_open "$proto" "$(hp $C $sport)" "$(hp $T $DPORT)" || fail "$what: association refused"
	b0=$(target_bytes "$proto" "$fam")
	# The flow is held open while its conntrack entry is looked at (an
	# entry that ends, SCTP ABORT or UDP timeout, cannot race the check),
	# then ended (its close completed) before the association.
	out=$SG_TMP/echo.$proto.$fam
	rm -f "$SG_TMP/release"
	bg ip netns exec "$NS_C" $PP echo-check "$proto" "$BND_ADDR" "$BND_PORT" \
		--src "$(hp $C $sport)" --bytes 20000 --hold 120 --release "$SG_TMP/release" >"$out" 2>&1
	ec=$LAST_PID
	wait_for 60 'grep -q "sent .* received" "$out" || ! kill -0 $ec 2>/dev/null' ||
		fail "$what: the echo check did not finish"
	grep -q "sent 20000 received 20000 match" "$out" ||
		fail "$what: data did not come back byte-exact: $(cat "$out")"
	b1=$(target_bytes "$proto" "$fam")
	[ $((b1 - b0)) = 20000 ] || fail "$what: the target received $((b1 - b0)) bytes, not 20000"
	line=$(ct_entry "$proto" "$C" "$sport" "$T")
	[ -n "$line" ] || {
		ing conntrack -L -p "$proto" 2>/dev/null
		fail "$what: no conntrack entry $C:$sport -> $BND_ADDR:$BND_PORT answered by $T:$DPORT"
	}
	mark=$(sed -n 's/.* mark=\([0-9]*\).*/\1/p' <<<"$line")
	[ -n "$mark" ] && [ $((mark & 0xff000000)) = $((0x5a000000)) ] ||
		fail "$what: conntrack entry without our mark: $line"
	pass "$what: 20000 bytes S -> BND -> DST:$DPORT (target counted them) and back; conntrack mark $(printf 0x%08x "$mark")"
	touch "$SG_TMP/release"
	wait_exit $ec 30 || fail "$what: the echo check did not end its flow"
	kill "$TP_PID"
	wait "$TP_PID" 2>/dev/null
}

# 1. What the kernel can relay: asked per request, refused with X'09'.
RELAY=(tcp udp)
sp=43000
for proto in sctp dccp udplite; do
	num=$(case $proto in sctp) echo 132 ;; dccp) echo 33 ;; udplite) echo 136 ;; esac)
	sp=$((sp + 1))
	code=$(req_code $num $sp)
	if [ "$code" = 09 ]; then
		why=$(refusal_reason $num)
		[ -n "$why" ] || fail "$proto: X'09' without a log line saying why"
		case $proto in
		udplite)
			grep -q "nf_conntrack_checksum" <<<"$why" ||
				fail "udplite refused for another reason than the checksum bug: $why"
			pass "udplite with nf_conntrack_checksum=1: X'09', logged: $why"
			;;
		dccp)
			grep -q "no DCCP connection tracking" <<<"$why" || fail "dccp refused: $why"
			pass "dccp: X'09', logged: $why"
			printf '  SKIP: dccp relay: this kernel (%s) has no DCCP connection tracking (CONFIG_NF_CT_PROTO_DCCP)\n' "$(uname -r)"
			;;
		sctp)
			pass "sctp: X'09', logged: $why"
			printf '  SKIP: sctp relay: %s\n' "$why"
			;;
		esac
	elif [ "$code" = 00 ]; then
		[ $proto = udplite ] && fail "udplite granted while nf_conntrack_checksum=1"
		RELAY+=("$proto")
	else
		fail "$proto: reply code '$code'"
	fi
done
# ...and `socksgated -n` says the same.
ing "$SG_DAEMON" -n -c "$SG_TMP/socksgated.conf" >"$SG_TMP/check.out" 2>&1 || fail "socksgated -n failed"
grep -q "PTCL 136 is refused (X'09')" "$SG_TMP/check.out" ||
	fail "socksgated -n did not warn about udplite: $(cat "$SG_TMP/check.out")"
pass "socksgated -n warns about each enabled PTCL the kernel cannot relay"

# 2. Relays, with conntrack verifying checksums (the default).
for proto in "${RELAY[@]}"; do serve "$proto"; done
sp=44000
for proto in "${RELAY[@]}"; do
	for fam in 4 6; do
		sp=$((sp + 1))
		relay "$proto" $fam $sp
	done
done

# 3. Packets to a bound endpoint that conntrack will not NAT: dropped
#    silently and counted, never answered by the gateway's own stack.
ing nft -f - <<NFT || fail "notrack table"
table inet sgtest {
	chain raw {
		type filter hook prerouting priority raw; policy accept;
		tcp sport { 45040, 45060 } notrack
	}
}
NFT
for fam in 4 6; do
	if [ "$fam" = 4 ]; then C=$C4 T=$T4; else C=$C6 T=$T6; fi
	for kind in tcp-synfin tcp-null tcp-syn; do
		case $kind in
		tcp-synfin) sport=$((45000 + fam * 10 + 1)) why="invalid (SYN+FIN)" ;;
		tcp-null) sport=$((45000 + fam * 10 + 2)) why="invalid (no flags)" ;;
		tcp-syn) sport=$((45000 + fam * 10)) why="untracked (notrack)" ;;
		esac
		tp_open tcp "$(hp $C $sport)" "$(hp $T $DPORT)" || fail "IPv$fam tcp: association refused"
		d0=$(dropped_packets)
		b0=$(target_bytes tcp $fam)
		inc $PP raw-expect-silence $kind "$BND_ADDR" "$BND_PORT" --src "$(hp $C $sport)" ||
			fail "IPv$fam: a $why TCP segment to BND was answered"
		d1=$(dropped_packets)
		[ "$d1" = $((d0 + 1)) ] || fail "IPv$fam $why: dropped counter $d0 -> $d1"
		[ "$(target_bytes tcp $fam)" = "$b0" ] || fail "IPv$fam $why: reached the target"
		[ "$(ing conntrack -L -p tcp 2>/dev/null | grep -c "sport=$sport dport=$BND_PORT ")" = 0 ] ||
			fail "IPv$fam $why: made a conntrack entry"
		pass "IPv$fam: $why TCP segment from S to BND: no answer, dropped counter $d0 -> $d1"
		kill "$TP_PID"
		wait "$TP_PID" 2>/dev/null
	done
done
ing nft delete table inet sgtest

# 4. UDP-Lite: relayed once the gateway stops verifying checksums.
ing sysctl -qw net.netfilter.nf_conntrack_checksum=0
[ "$(req_code 136 43100)" = 00 ] || fail "udplite refused with nf_conntrack_checksum=0"
serve udplite
relay udplite 4 46001
relay udplite 6 46002
# A live UDP-Lite association, then checksums verified again: its
# datagrams become invalid, and are dropped silently, not answered.
tp_open udplite "$(hp $C4 46003)" "$(hp $T4 $DPORT)" || fail "udplite association refused"
inc $PP echo-check udplite "$BND_ADDR" "$BND_PORT" --src "$(hp $C4 46003)" --bytes 2000 ||
	fail "udplite: no relay before the switch"
ing sysctl -qw net.netfilter.nf_conntrack_checksum=1
d0=$(dropped_packets)
b0=$(target_bytes udplite 4)
inc $PP udplite-expect-silence "$BND_ADDR" "$BND_PORT" --src "$(hp $C4 46003)" ||
	fail "an invalid UDP-Lite datagram to BND was answered"
d1=$(dropped_packets)
[ "$d1" -ge $((d0 + 1)) ] || fail "invalid UDP-Lite: dropped counter $d0 -> $d1"
[ "$(target_bytes udplite 4)" = "$b0" ] || fail "invalid UDP-Lite reached the target"
pass "UDP-Lite judged invalid (checksum verification back on): no ICMP, dropped counter $d0 -> $d1"
# A reload re-asks the kernel and ends the association it cannot relay.
kill -HUP "$DAEMON_PID"
wait_exit "$TP_PID" 30 || fail "reload did not end the UDP-Lite association (30 s)"
wait_log "no longer allowed: conntrack judges every correct UDP-Lite" ||
	fail "no log line for the UDP-Lite association ended on reload"
pass "reload with nf_conntrack_checksum=1 ended the live UDP-Lite association (logged why)"
[ "$(req_code 136 43101)" = 09 ] || fail "udplite not refused again"
pass "udplite refused again (X'09') once nf_conntrack_checksum=1"
