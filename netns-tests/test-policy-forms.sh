#!/bin/bash
# Rules match what the kernel will really connect to (issue 10, part 1;
# docs/security.md, "Destination forms").  With the sample's rule shape
# (deny 127.0.0.0/8, deny ::1, deny a network, allow the LAN), every form
# that names the gateway's loopback or a denied host without matching
# those rules -- unspecified addresses, 0.0.0.0/8, IPv4-mapped,
# IPv4-compatible, NAT64, 6to4, Teredo, multicast, broadcast, link-local
# -- written as a literal, as an address literal sent as a name, or as a
# hosts-file name that resolves to it, is refused for CONNECT, BIND, every
# UDP datagram and TRANSPARENT; recorders on the gateway (TCP and UDP on
# every local address, loopback included) and on the denied host see
# nothing.  Then `rule deny to self` (reloaded): the gateway's own
# addresses, broadcast and anycast addresses are refused, a BIND for any
# peer refuses a connection from the gateway itself, and the table
# follows address and `local` route changes (an association whose DST
# becomes the gateway's ends) while main-table route churn never makes
# the daemon dump.  Allowed destinations keep working throughout.
. "$(dirname "$0")/lib.sh"
sg_topology

# A network the rules deny, behind the gateway.
NS_D="${SG_ID}d"
ip netns add "$NS_D" || fail "ip netns add $NS_D"
SG_NAMESPACES+=("$NS_D")
ind() { ip netns exec "$NS_D" "$@"; }
G4D=198.18.2.1 D4=198.18.2.2 G6D=2001:db8:2::1 D6=2001:db8:2::2
ip -n "$NS_D" link set lo up
ip link add d0 netns "$NS_D" type veth peer name g2 netns "$NS_G" || fail "veth"
ip -n "$NS_D" addr add $D4/24 dev d0
ip -n "$NS_D" addr add $D6/64 dev d0 nodad
ip -n "$NS_G" addr add $G4D/24 dev g2
ip -n "$NS_G" addr add $G6D/64 dev g2 nodad
ip -n "$NS_D" link set d0 up
ip -n "$NS_G" link set g2 up
ip -n "$NS_D" route add default via $G4D
ip -n "$NS_D" -6 route add default via $G6D

# Names resolving to each form (c-ares reads the namespace's hosts file).
cat >>"/etc/netns/$NS_G/hosts" <<HOSTS
0.0.0.0 zero4.test
:: zero6.test
0.1.2.3 zeronet.test
::ffff:127.0.0.1 mapped-lo.test
::ffff:0.0.0.0 mapped-zero.test
::127.0.0.1 compat-lo.test
127.0.0.1 lo4.test
::1 lo6.test
64:ff9b::7f00:1 nat64-lo.test
2002:7f00:1::1 sixtofour-lo.test
224.0.0.1 mcast4.test
ff02::1 mcast6.test
255.255.255.255 bcast.test
fe80::1 linklocal.test
$D4 denied.test
::ffff:$D4 mapped-denied.test
64:ff9b::c612:202 nat64-denied.test
2002:c612:202::1 sixtofour-denied.test
$D6 denied6.test
$G4T gw.test
::ffff:$G4T mapped-gw.test
HOSTS

# What must never be reached: every local address of the gateway (port
# 7100, TCP and UDP, loopback included) and the denied host (7000).
touch "$SG_TMP/self.log" "$SG_TMP/denied.log"
bg ip netns exec "$NS_G" $PEER record 7100 --log "$SG_TMP/self.log"
bg ip netns exec "$NS_D" $PEER record 7000 --log "$SG_TMP/denied.log"
bg ip netns exec "$NS_T" $PEER tcp-echo 7000
bg ip netns exec "$NS_T" $PEER udp-echo 7000
wait_listen "$NS_G" 7100
wait_listen "$NS_G" 7100 u
wait_listen "$NS_D" 7000
wait_listen "$NS_D" 7000 u
wait_listen "$NS_T" 7000
wait_listen "$NS_T" 7000 u

RULES=("rule deny to 127.0.0.0/8" "rule deny to ::1"
	"rule deny to 198.18.2.0/24" "rule deny to 2001:db8:2::/64"
	"rule allow from 198.18.0.0/24" "rule allow from 2001:db8::/64")
sg_config "${RULES[@]}" "timeout bind 10" "timeout connect 3"
sg_daemon

F="$PY $SG_ROOT/netns-tests/tools/forms.py"

# Forms aimed at the gateway's loopback (port 7100) and at the denied
# host (port 7000): each as an ATYP X'01'/X'04' literal and as the same
# text sent as a name (ATYP X'03').
LO=(0.0.0.0 0.1.2.3 0.255.255.255 :: ::ffff:127.0.0.1 ::ffff:0.0.0.0
	::127.0.0.1 ::ffff:7f00:1 127.0.0.1 127.9.9.9 ::1 64:ff9b::7f00:1
	2002:7f00:1::1 2001:0:4136:e378:8000:63bf:80ff:fffe
	224.0.0.1 239.255.255.250 ::ffff:224.0.0.1 ff02::1 ff05::1:3
	255.255.255.255 fe80::1)
DENIED=($D4 ::ffff:$D4 64:ff9b::c612:202 2002:c612:202::1
	2001:0:4136:e378:8000:63bf:39ed:fdfd ::$D4 $D6)
LO_NAMES=(zero4.test zero6.test zeronet.test mapped-lo.test mapped-zero.test
	compat-lo.test lo4.test lo6.test nat64-lo.test sixtofour-lo.test
	mcast4.test mcast6.test bcast.test linklocal.test)
DENIED_NAMES=(denied.test mapped-denied.test nat64-denied.test
	sixtofour-denied.test denied6.test)
SPECS=()
for a in "${LO[@]}"; do SPECS+=("ip:$a@7100" "name:$a@7100"); done
for a in "${DENIED[@]}"; do SPECS+=("ip:$a@7000" "name:$a@7000"); done
for n in "${LO_NAMES[@]}"; do SPECS+=("name:$n@7100"); done
for n in "${DENIED_NAMES[@]}"; do SPECS+=("name:$n@7000"); done
SPECS+=("name:[::]@7100" "name:[::ffff:127.0.0.1]@7100" "name:[::127.0.0.1]@7100")
# For BIND, DST 0.0.0.0 or :: (however written) names no peer: any peer
# may connect and the rules judge each (tested in part 2); the other
# forms are refused.
BSPECS=()
for sp in "${SPECS[@]}"; do
	case ${sp%@*} in
	ip:0.0.0.0 | name:0.0.0.0 | ip::: | name::: | ip:::ffff:0.0.0.0 | \
		name:::ffff:0.0.0.0 | name:zero4.test | name:zero6.test | \
		name:mapped-zero.test | "name:[::]") ;;
	*) BSPECS+=("$sp") ;;
	esac
done
[ $((${#SPECS[@]} - ${#BSPECS[@]})) = 10 ] || fail "BIND's wildcard forms: $((${#SPECS[@]} - ${#BSPECS[@]}))"

# Every line of $2 ("SPEC REP ...") must have a REP in $3 (regex).
all_reps() { # label output want-regex
	local spec rep what n=0
	while read -r spec rep what; do
		n=$((n + 1))
		[[ $rep =~ ^($3)$ ]] || fail "$1: $spec got '$rep $what', want $3"
	done <<<"$2"
	[ "$n" -gt 0 ] || fail "$1: no answer"
	pass "$1: $n forms, each $3"
}
nothing_reached() {
	[ -s "$SG_TMP/self.log" ] && fail "$1: the gateway's own service was reached: $(head -5 "$SG_TMP/self.log")"
	[ -s "$SG_TMP/denied.log" ] && fail "$1: the denied host was reached: $(head -5 "$SG_TMP/denied.log")"
	pass "$1: nothing reached the gateway's services or the denied host"
}
# One UDP association: every spec silent, the controls answered, and the
# association's end line counts every dropped datagram as denied.
udp_ends() { grep -c "udp: up 3 datagrams" "$SG_LOG"; }
udp_check() { # label proxy client-ip specs... (controls appended)
	local label=$1 proxy=$2 cip=$3 out n e0 line
	shift 3
	n=$#
	e0=$(udp_ends)
	out=$(inc $F udp "$proxy" "$cip" 7000 --answers 3 "$@" "ip:$T4@7000" "ip:$T6@7000" "name:target.test@7000")
	echo "$out" | head -n "$n" | grep -v " silent$" && fail "$label: a datagram was answered"
	[ "$(echo "$out" | tail -n 3 | grep -c " answered$")" = 3 ] ||
		fail "$label: allowed destinations not answered: $(echo "$out" | tail -n 3)"
	wait_for 30 '[ "$(udp_ends)" -gt "$e0" ]' || fail "$label: the UDP session did not end"
	line=$(grep "udp: up 3 datagrams" "$SG_LOG" | tail -1)
	echo "$line" | grep -qE " $n denied(,|$)" || fail "$label: want $n denied: $line"
	pass "$label: $n datagrams dropped and counted as denied, 3 allowed ones answered"
}

# --- 1. The sample's rule shape (no `to self`) ------------------------------
all_reps "CONNECT over IPv4" "$(inc $F connect $G4 7100 "${SPECS[@]}")" 02
all_reps "CONNECT over IPv6" "$(inc $F connect $G6 7100 "${SPECS[@]}")" 02
# localhost: c-ares may or may not know it without a hosts entry.
all_reps "CONNECT name localhost" "$(inc $F connect $G4 7100 name:localhost)" "02|04"
all_reps "BIND" "$(inc $F bind $G4 "${BSPECS[@]}")" 02
all_reps "TRANSPARENT TCP over IPv4" "$(inc $F tp $G4 6 $C4 41000 7100 "${SPECS[@]}")" "02|04|08"
all_reps "TRANSPARENT UDP over IPv6" "$(inc $F tp $G6 17 $C6 42000 7100 "${SPECS[@]}")" "02|04|08"
wait_log "0.0.0.0 port 7100 refused: unspecified address (this host)" ||
	fail "the refusal does not say why: $(grep -m3 refused "$SG_LOG")"
wait_log "2002:c612:202::1 port 7000 denied by rule at line [0-9]* (the IPv4 address it carries)" ||
	fail "a 6to4 denial does not name the carried address"
udp_check "UDP ASSOCIATE over IPv4" $G4 $C4 "${SPECS[@]}"
udp_check "UDP ASSOCIATE over IPv6" $G6 $C6 "${SPECS[@]}"
# A directed broadcast is an ordinary address to the rules here (no
# `to self`): the kernel refuses it (connect: ENETUNREACH, X'03'; sendto
# without SO_BROADCAST: EACCES).
all_reps "CONNECT directed broadcast (the kernel refuses)" "$(inc $F connect $G4 7100 ip:198.18.0.255 ip:198.18.1.255)" 03
inc $F udp $G4 $C4 7100 ip:198.18.0.255 ip:198.18.1.255 | grep -v " silent$" && fail "UDP directed broadcast answered"
# Allowed destinations still work.
all_reps "CONNECT allowed" "$(inc $F connect $G4 7000 ip:$T4 ip:$T6 name:target.test ip:::ffff:$T4 name:::ffff:$T4)" "00"
inc $F connect $G4 7000 ip:$T4 name:target.test | grep -vq "echo-ok" && fail "CONNECT allowed: no echo"
all_reps "TRANSPARENT allowed" "$(inc $F tp $G4 17 $C4 43000 7000 ip:$T4 name:target.test)" 00
inc $F tp $G6 17 $C6 43010 7000 ip:$T6 | grep -q "00 echo-ok" || fail "TRANSPARENT IPv6 allowed: no echo"
nothing_reached "sample rules"

# --- 2. `rule deny to self` (reloaded) --------------------------------------
# (line 5 of the file: sg_config writes four lines first)
sg_config "rule deny to self" "${RULES[@]}" "timeout bind 10" "timeout connect 3"
sg_reload
grep -q "configuration reloaded" "$SG_LOG" || fail "reload refused: $(tail -3 "$SG_LOG")"
OWN=($G4 $G4T $G4D $G6 $G6T $G6D ::ffff:$G4T 198.18.0.255 198.18.1.255
	2001:db8:: 2001:db8:1:: 64:ff9b::c612:101 2002:c612:101::1)
SELF=()
for a in "${OWN[@]}"; do SELF+=("ip:$a@7100" "name:$a@7100"); done
SELF+=("name:gw.test@7100" "name:mapped-gw.test@7100")
all_reps "deny to self: CONNECT to the gateway's own addresses" "$(inc $F connect $G4 7100 "${SELF[@]}")" 02
all_reps "deny to self: the forms still refused" "$(inc $F connect $G6 7100 "${SPECS[@]}")" 02
all_reps "deny to self: BIND" "$(inc $F bind $G4 "${SELF[@]}")" 02
all_reps "deny to self: TRANSPARENT" "$(inc $F tp $G4 17 $C4 44000 7100 "${SELF[@]}")" "02|04|08"
all_reps "deny to self: TRANSPARENT IPv6" "$(inc $F tp $G6 6 $C6 45000 7100 "${SELF[@]}")" "02|04|08"
udp_check "deny to self: UDP" $G4 $C4 "${SELF[@]}"
nothing_reached "deny to self"

# BIND for any peer (DST 0.0.0.0): the gateway itself may not be the peer;
# the target may.
# (The BIND client waits 30 s for its peer, with `timeout bind 10` on the
# daemon's side; the gateway's connection waits up to 15 s for its close:
# a slow close is not an accepted connection, which would never close.)
bg ip netns exec "$NS_C" $F bind-wait $G4 ip:0.0.0.0 >"$SG_TMP/bw.out" 2>&1
BW=$LAST_PID
wait_for 30 '[ -s "$SG_TMP/bw.out" ]' || fail "BIND 0.0.0.0: no first reply"
read -r _ rep BA BP <"$SG_TMP/bw.out"
[ "$rep" = 00 ] || fail "BIND 0.0.0.0: $(cat "$SG_TMP/bw.out")"
ing $PY -c "
import socket
s = socket.create_connection(('$BA', $BP), timeout=10)
s.settimeout(15)
print('gateway peer:', s.recv(10) or b'closed')" >"$SG_TMP/bw.gw" 2>&1
grep -q "closed\|reset" "$SG_TMP/bw.gw" || fail "BIND accepted the gateway itself: $(cat "$SG_TMP/bw.gw")"
wait_log "to $BA port 0 denied by rule at line 5$" ||
	fail "BIND: the gateway's connection not denied by \`to self\`: $(grep -m3 denied "$SG_LOG")"
int_ $PY -c "
import socket
s = socket.create_connection(('$BA', $BP), timeout=10)
s.sendall(b'pong')
s.recv(10)" 2>/dev/null &
wait_exit $BW 60 || fail "BIND 0.0.0.0: the client did not finish: $(cat "$SG_TMP/bw.out")"
grep -q "second 00 $T4" "$SG_TMP/bw.out" && grep -q "data pong" "$SG_TMP/bw.out" ||
	fail "BIND 0.0.0.0: the target's connection: $(cat "$SG_TMP/bw.out")"
pass "BIND for any peer: the gateway's own connection refused (rule \`to self\`), the target's relayed"

# The table follows the kernel: addresses and `local` routes, added and
# removed; the daemon logs each change.
changes() { grep -c "own addresses: [0-9]* local routes" "$SG_LOG"; }
wait_own() { # pattern
	wait_log "own address $1" 30 || fail "the daemon did not see $1"
}
n0=$(changes)
ip -n "$NS_G" addr add 198.18.3.1/32 dev lo
ip -n "$NS_G" route add local 198.18.60.0/24 dev lo
ip -n "$NS_G" addr add 2001:db8:3::1/64 dev g1 nodad
wait_own "198.18.3.1/32 local"
wait_own "198.18.60.0/24 local"
wait_own "2001:db8:3::1/128 local"
wait_own "2001:db8:3::/128 anycast"
# Reachable to the kernel as the gateway itself (a control without the
# daemon), denied through it.
ing $PY -c "
import socket
for a in ('198.18.3.1', '198.18.60.9', '2001:db8:3::1'):
    socket.create_connection((a, 7100), timeout=10).close()" || fail "control: a new local address is not local"
# The recorder logs those three; then its log starts empty again.
wait_for 30 '[ "$(grep -c "^tcp " "$SG_TMP/self.log")" -ge 3 ]' || fail "the recorder did not log the control"
: >"$SG_TMP/self.log"
NEW=(ip:198.18.3.1@7100 ip:198.18.60.9@7100 name:198.18.60.200@7100
	ip:2001:db8:3::1@7100 ip:2001:db8:3::@7100 ip:::ffff:198.18.60.9@7100)
all_reps "new addresses and a local route" "$(inc $F connect $G4 7100 "${NEW[@]}")" 02
udp_check "new addresses: UDP" $G4 $C4 "${NEW[@]}"
nothing_reached "new addresses"
ip -n "$NS_G" addr del 198.18.3.1/32 dev lo
# Until the daemon saw the change: the answer it gives then (an attempt
# that got no answer at all, e.g. from a loaded machine, is not one).
wait_for 30 '[ "$(inc $F connect $G4 7100 ip:198.18.3.1 | awk "{print \$2}")" = 03 ]' ||
	fail "a removed address is still ours 30 s later: $(grep 'own address' "$SG_LOG" | tail -3)"
all_reps "a removed address is no longer ours (no route: X'03')" "$(inc $F connect $G4 7100 ip:198.18.3.1)" 03
pass "own addresses followed $(($(changes) - n0)) changes"

# Main-table churn (a routing daemon) never reaches the daemon: the
# kernel's filter drops it; a `local` route right after is seen.  The
# churn comes between two `local` routes: once the daemon has logged the
# first, it has read every notification before it; once it has logged
# the second, every one up to it.  In between, exactly one notification
# (the second route) may have been read, in one wake-up, with one change.
ip -n "$NS_G" route add local 198.18.62.0/24 dev lo
wait_own "198.18.62.0/24 local"
l0=$(wc -l <"$SG_LOG")
for i in $(seq 1 100); do echo "route add 198.18.$((100 + i / 250)).$((i % 250))/32 via $T4"; done |
	ip -n "$NS_G" -batch - || fail "main-table routes"
ip -n "$NS_G" -6 route add 2001:db8:99::/64 via $T6
ip -n "$NS_G" route add local 198.18.61.0/24 dev lo
wait_own "198.18.61.0/24 local"
since=$(tail -n +$((l0 + 1)) "$SG_LOG")
woke=$(grep -c "own addresses: woken" <<<"$since")
notes=$(grep -o "own addresses: woken, [0-9]* notifications" <<<"$since" | awk '{s += $4} END {print s + 0}')
changed=$(grep -c "own addresses: [0-9]* local routes" <<<"$since")
[ "$woke" = 1 ] && [ "$notes" = 1 ] && [ "$changed" = 1 ] ||
	fail "main-table routes reached the daemon: $woke wake-ups, $notes notifications, $changed changes for one local route"
pass "101 main-table routes: no notification; a local route after them: seen (1 wake-up, 1 notification)"

# An association whose DST becomes one of the gateway's addresses ends.
ip -n "$NS_T" addr add 198.18.1.77/24 dev t0
tp_open udp "$(hp $C4 46000)" "$(hp 198.18.1.77 7000)" || fail "TRANSPARENT to 198.18.1.77"
ip -n "$NS_G" addr add 198.18.1.77/32 dev lo
wait_exit "$TP_PID" 30 || fail "the association to an address that became the gateway's lives on (30 s)"
wait_log "no longer allowed: denied by rule" || fail "no recheck log line"
pass "TRANSPARENT to 198.18.1.77 ended (reason policy) when the gateway took that address"

all_reps "deny to self: allowed still allowed" "$(inc $F connect $G4 7000 ip:$T4 name:target.test ip:$T6)" 00
inc $F tp $G4 17 $C4 47000 7000 ip:$T4 | grep -q "00 echo-ok" || fail "TRANSPARENT allowed: no echo"
nothing_reached "the whole test"
grep -q "ERROR: AddressSanitizer\|runtime error" "$SG_LOG" && fail "sanitizer report"
true
