#!/bin/bash
# IP address literals sent as names (ATYP X'03' "198.18.1.2", as Chromium
# and torsocks do) are used as addresses: no DNS query leaves the gateway
# and the answer comes at once even though the resolver drops every query.
# Covered: CONNECT (IPv4, IPv6, bracketed IPv6), BIND, UDP ASSOCIATE
# datagrams, TRANSPARENT's DST and S.ADDR.  The rules still apply to the
# address (a denied one gets X'02', also written IPv4-mapped); names that
# look like addresses but are not usable ones (zone id, "198.18.1") get
# X'04' without a query.  A control name shows the DNS counter works.
. "$(dirname "$0")/lib.sh"
sg_topology

# The gateway's resolver: an address on the target's link that drops DNS.
RES4=198.18.1.53
ip -n "$NS_T" addr add $RES4/24 dev t0
int_ nft -f - <<NFT || fail "nft in the target"
table inet sgdns {
	counter dns_in {}
	chain in {
		type filter hook input priority 0; policy accept;
		meta l4proto { tcp, udp } th dport 53 counter name dns_in drop
	}
}
NFT
printf 'nameserver %s\n' "$RES4" >"/etc/netns/$NS_G/resolv.conf"
# What leaves the gateway toward port 53, whatever the destination.
ing nft -f - <<NFT || fail "nft in the gateway"
table inet sgtest {
	counter dns_out {}
	chain out {
		type filter hook output priority 0; policy accept;
		meta l4proto { tcp, udp } th dport 53 counter name dns_out
	}
}
NFT
dns_out() { ing nft list counter inet sgtest dns_out | awk '/packets/ {print $2}'; }
dns_in() { int_ nft list counter inet sgdns dns_in | awk '/packets/ {print $2}'; }

sg_config "rule deny to $T4 port 7009" "rule deny to $T6 port 7009" \
	"rule allow from 198.18.0.0/24" "rule allow from 2001:db8::/64" \
	"timeout bind 5" "timeout connect 5"
sg_daemon
bg ip netns exec "$NS_T" $PEER tcp-echo 7000
bg ip netns exec "$NS_T" $PEER tcp-echo 7009 --log "$SG_TMP/t7009.log"
bg ip netns exec "$NS_T" $PEER udp-echo 7000
touch "$SG_TMP/t7009.log"
wait_listen "$NS_T" 7000
wait_listen "$NS_T" 7009
wait_listen "$NS_T" 7000 u

# A raw client: every address given as "name:X" goes as ATYP X'03' X,
# "ip:X" as ATYP X'01'/X'04'.  Prints the reply code and the seconds the
# reply took (udp: the slowest datagram's answer), then what the data
# check saw.  Times are measured around the request (or the datagram),
# not the client's start.  A datagram's answer is waited for as long as
# the answer may take (3 s), and told from a late one to an earlier
# datagram by its payload; an echo through TRANSPARENT may take 10 s.
cat >"$SG_TMP/lit.py" <<'PY'
import os, socket, struct, sys, time
sys.path.insert(0, os.environ["TOOLS"])
import s5raw

def enc(a, port):
    kind, _, v = a.partition(":")
    if kind == "ip":
        return s5raw.addr(v, port)
    n = v.encode()
    return b"\x03" + bytes([len(n)]) + n + struct.pack("!H", port)

def parse_bnd(n1):
    h = s5raw.recv_exact(n1, 4)
    if h[3] == 1:
        a = socket.inet_ntop(socket.AF_INET, s5raw.recv_exact(n1, 4))
    else:
        a = socket.inet_ntop(socket.AF_INET6, s5raw.recv_exact(n1, 16))
    return h[1], a, struct.unpack("!H", s5raw.recv_exact(n1, 2))[0]

def request(proxy, body):
    n1 = socket.create_connection((proxy, 1080), timeout=15)
    n1.sendall(b"\x05\x01\x00")
    assert s5raw.recv_exact(n1, 2) == b"\x05\x00"
    t0 = time.monotonic()
    n1.sendall(body)
    try:
        rep, a, p = parse_bnd(n1)
    except OSError:
        return n1, None, None, None, time.monotonic() - t0
    return n1, rep, a, p, time.monotonic() - t0

def out(rep, t, what=""):
    print("%s %.3f%s" % ("%02x" % rep if rep is not None else "closed", t,
                         " " + what if what else ""), flush=True)

cmd, proxy = sys.argv[1], sys.argv[2]
if cmd == "connect":  # connect PROXY DST PORT
    n1, rep, _, _, t = request(proxy, b"\x05\x01\x00" + enc(sys.argv[3], int(sys.argv[4])))
    what = ""
    if rep == 0:
        d = os.urandom(5000)
        n1.sendall(d)
        what = "echo-ok" if s5raw.recv_exact(n1, len(d)) == d else "echo-bad"
    out(rep, t, what)
elif cmd == "udp":  # udp PROXY CLIENT-IP DST PORT [DST PORT...]
    n1, rep, a, p, t = request(proxy, b"\x05\x03\x00" + s5raw.addr(sys.argv[3], 0))
    fam = socket.AF_INET6 if ":" in a else socket.AF_INET
    u = socket.socket(fam, socket.SOCK_DGRAM)
    u.bind((sys.argv[3], 0))
    ok, worst = [], 0.0  # the slowest answer
    for i in range(4, len(sys.argv), 2):
        d = os.urandom(300)
        t0 = time.monotonic()
        u.sendto(b"\x00\x00\x00" + enc(sys.argv[i], int(sys.argv[i + 1])) + d, (a, p))
        got = "0"
        while time.monotonic() - t0 < 3:
            u.settimeout(max(0.01, 3 - (time.monotonic() - t0)))
            try:
                r = u.recv(2000)
            except socket.timeout:
                break
            if r.endswith(d):
                worst = max(worst, time.monotonic() - t0)
                got = "1"
                break
        ok.append(got)
    out(rep, worst, "".join(ok))
elif cmd == "tp":  # tp PROXY PTCL SRC SPORT DST DPORT
    src_ip = sys.argv[4].partition(":")[2]
    sport = int(sys.argv[5])
    body = (b"\x05\x04\x00" + enc(sys.argv[6], int(sys.argv[7])) +
            bytes([int(sys.argv[3])]) + enc(sys.argv[4], sport))
    u = socket.socket(socket.AF_INET6 if ":" in src_ip else socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((src_ip, sport))
    u.settimeout(10)
    n1, rep, a, p, t = request(proxy, body)
    what = ""
    if rep == 0:
        d = os.urandom(500)
        u.sendto(d, (a, p))
        try:
            what = "echo-ok" if u.recv(2000) == d else "echo-bad"
        except socket.timeout:
            what = "no-echo"
    out(rep, t, what)
elif cmd == "bind":  # bind PROXY DST: prints the first reply's address
    n1, rep, a, p, t = request(proxy, b"\x05\x02\x00" + enc(sys.argv[3], 0))
    out(rep, t, "%s %d" % (a, p) if rep == 0 else "")
    if rep != 0:
        sys.exit(0)
    r2 = parse_bnd(n1)
    n1.sendall(b"ping")
    print("second %02x %s data %s" % (r2[0], r2[1], s5raw.recv_exact(n1, 4).decode()), flush=True)
PY
LIT="env TOOLS=$SG_ROOT/netns-tests/tools $PY $SG_TMP/lit.py"

# Checks "REP SECONDS [WHAT]" against the wanted REP and WHAT, in < 3 s
# (a lookup through the dropping resolver takes `timeout connect`, 5 s).
expect() { # label want-rep want-what output
	local rep t what
	read -r rep t what <<<"$4"
	[ "$rep" = "$2" ] && [ "$what" = "$3" ] ||
		fail "$1: got '$4', want rep $2 $3"
	awk -v t="$t" 'BEGIN { exit !(t < 3) }' || fail "$1: the answer took ${t}s"
	pass "$1: rep $rep ${3:+$3 }in ${t}s"
}

# --- CONNECT --------------------------------------------------------------
expect "CONNECT name '$T4'" 00 echo-ok "$(inc $LIT connect $G4 name:$T4 7000)"
expect "CONNECT name '$T6'" 00 echo-ok "$(inc $LIT connect $G4 name:$T6 7000)"
expect "CONNECT name '[$T6]'" 00 echo-ok "$(inc $LIT connect $G6 "name:[$T6]" 7000)"
expect "CONNECT name '::ffff:$T4'" 00 echo-ok "$(inc $LIT connect $G4 name:::ffff:$T4 7000)"
# The rules see the address: denied by address whether written as a name,
# a literal, or IPv4-mapped (a name or an ATYP X'04' literal).
expect "CONNECT name '$T4' port 7009 (denied)" 02 "" "$(inc $LIT connect $G4 name:$T4 7009)"
expect "CONNECT name '$T6' port 7009 (denied)" 02 "" "$(inc $LIT connect $G4 name:$T6 7009)"
expect "CONNECT name '::ffff:$T4' port 7009 (denied)" 02 "" "$(inc $LIT connect $G4 name:::ffff:$T4 7009)"
expect "CONNECT ATYP X'04' ::ffff:$T4 port 7009 (denied)" 02 "" "$(inc $LIT connect $G4 ip:::ffff:$T4 7009)"
[ -s "$SG_TMP/t7009.log" ] && fail "a denied connection reached the target: $(cat "$SG_TMP/t7009.log")"
wait_log "to $T4 port 7009 denied" || fail "denial not logged by address: $(grep denied "$SG_LOG" | head -3)"
# Address-shaped names that are not usable addresses: refused at once.
expect "CONNECT name 'fe80::1%g1' (zone id)" 04 "" "$(inc $LIT connect $G4 name:fe80::1%g1 7000)"
expect "CONNECT name '198.18.1' (not a dotted quad)" 04 "" "$(inc $LIT connect $G4 name:198.18.1 7000)"
expect "CONNECT name '[198.18.1.2]'" 04 "" "$(inc $LIT connect $G4 "name:[$T4]" 7000)"

# --- BIND -----------------------------------------------------------------
bg ip netns exec "$NS_C" env TOOLS=$SG_ROOT/netns-tests/tools $PY $SG_TMP/lit.py bind $G4 name:$T4 >"$SG_TMP/bind.out" 2>&1
BP=$LAST_PID
wait_for 30 '[ -s "$SG_TMP/bind.out" ]' || fail "BIND name '$T4': no first reply"
read -r _ _ BA BPORT <"$SG_TMP/bind.out"
expect "BIND name '$T4'" 00 "$G4T $BPORT" "$(head -1 "$SG_TMP/bind.out")"
int_ $PY -c "
import socket
s = socket.create_connection(('$BA', $BPORT), timeout=10)
s.sendall(s.recv(4))" || fail "the target could not connect to BIND's listener"
wait_exit $BP 30 || fail "BIND client still running: $(cat "$SG_TMP/bind.out")"
[ $EXIT_RC = 0 ] || fail "BIND client: $(cat "$SG_TMP/bind.out")"
grep -q "second 00 $T4 data ping" "$SG_TMP/bind.out" || fail "BIND: $(cat "$SG_TMP/bind.out")"
pass "BIND name '$T4': second reply names $T4, data relayed"

# --- UDP ASSOCIATE ----------------------------------------------------------
expect "UDP datagrams to names '$T4', '$T6', '$T4' port 7009 (denied), '$T4' again" 00 1101 \
	"$(inc $LIT udp $G4 $C4 name:$T4 7000 name:$T6 7000 name:$T4 7009 name:$T4 7000)"
# (Nothing answers UDP on 7009: the daemon's word that it denied it.)
wait_log "datagrams denied in .* last to $T4:7009 by rule at line [0-9]*" ||
	fail "the datagram to $T4:7009 was not denied: $(grep "udp: .*denied" "$SG_LOG")"
expect "UDP over IPv6 to names '$T6', '[$T6]'" 00 11 \
	"$(inc $LIT udp $G6 $C6 name:$T6 7000 "name:[$T6]" 7000)"

# --- TRANSPARENT ------------------------------------------------------------
expect "TRANSPARENT DST name '$T4'" 00 echo-ok "$(inc $LIT tp $G4 17 ip:$C4 42001 name:$T4 7000)"
expect "TRANSPARENT DST name '$T6'" 00 echo-ok "$(inc $LIT tp $G6 17 ip:$C6 42002 name:$T6 7000)"
expect "TRANSPARENT S.ADDR name '$C4', DST name '$T4'" 00 echo-ok \
	"$(inc $LIT tp $G4 17 name:$C4 42003 name:$T4 7000)"
# Families are checked as for literals: X'08', not a lookup's X'04'.
expect "TRANSPARENT S '$C6', DST name '$T4' (mixed families)" 08 "" \
	"$(inc $LIT tp $G6 17 ip:$C6 42004 name:$T4 7000)"

n=$(dns_out)
[ "$n" = 0 ] || fail "$n packets to port 53 left the gateway"
pass "no DNS packet left the gateway (counter 0)"

# Control: a real name is looked up (and the resolver drops it), so the
# counters above could have seen a query.  BIND's lookup is bounded by
# `timeout connect` (5 s here), as CONNECT's is.
read -r rep t _ <<<"$(inc $LIT bind $G4 name:nowhere.test 2>/dev/null | head -1)"
[ "$rep" = 04 ] && awk -v t="$t" 'BEGIN { exit !(t >= 4.5 && t < 8) }' ||
	fail "control: BIND name nowhere.test: rep $rep after ${t}s, want 04 after ~5 s"
[ "$(dns_out)" -gt 0 ] && [ "$(dns_in)" -gt 0 ] ||
	fail "control: a name was not looked up (out $(dns_out), in $(dns_in))"
pass "control: BIND to the name nowhere.test is looked up ($(dns_out) packets out, $(dns_in) dropped at the resolver), X'04' after ${t}s"
grep -q "ERROR: AddressSanitizer\|runtime error" "$SG_LOG" && fail "sanitizer report"
true
