#!/bin/bash
# UDP ASSOCIATE and BIND (RFC 1928) with independent clients: PySocks UDP to
# two destinations (IPv4 and IPv6), the npm `socks` package for BIND and UDP
# (createUDPFrame/parseUDPFrame), and a raw client for the corner cases:
# FRAG != 0, another source, a malformed header (the association survives),
# a denied destination, a BIND connection from a host other than DST.
. "$(dirname "$0")/lib.sh"
sg_topology
sg_config "rule deny to $T4 port 7009" \
	"rule allow from 198.18.0.0/24" "rule allow from 2001:db8::/64" \
	"timeout bind 30"
sg_daemon
bg ip netns exec "$NS_T" $PEER udp-echo 7000 --log "$SG_TMP/t7000.log"
bg ip netns exec "$NS_T" $PEER udp-echo 7009 --log "$SG_TMP/t7009.log"
touch "$SG_TMP/t7000.log" "$SG_TMP/t7009.log"
wait_listen "$NS_T" 7000 u

# --- PySocks UDP ------------------------------------------------------------
# (PySocks 1.7.1 cannot run UDP over an IPv6 control connection: its bind()
# unpacks getsockname() as a pair.  IPv6 N1 is covered by the raw client.)
out=$(inc $PY - <<PY 2>&1
import os, socket, socks
s = socks.socksocket(socket.AF_INET, socket.SOCK_DGRAM)
s.set_proxy(socks.SOCKS5, "$G4", 1080)
s.settimeout(5)
ok = 0
for dst in (("$T4", 7000), ("$T6", 7000)):
    for i in range(5):
        d = os.urandom(300)
        s.sendto(d, dst)
        r, src = s.recvfrom(2000)
        ok += (r == d and src[1] == 7000)
print("ok %d" % ok)
PY
)
[ "$out" = "ok 10" ] || fail "PySocks UDP: $out"
pass "PySocks UDP ASSOCIATE: 10 datagrams to an IPv4 and an IPv6 destination, answers byte-exact"
out=$(inc $PY - <<PY 2>&1
import os, socket, struct
n1 = socket.create_connection(("$G6", 1080), timeout=5)
n1.sendall(b"\x05\x01\x00"); n1.recv(2)
n1.sendall(b"\x05\x03\x00\x04" + bytes(16) + b"\x00\x00")
r = n1.recv(22)
assert r[1] == 0 and r[3] == 4, r
bnd = (socket.inet_ntop(socket.AF_INET6, r[4:20]), struct.unpack("!H", r[20:22])[0])
assert bnd[0] == "$G6", bnd
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u.bind(("$C6", 0)); u.settimeout(10)
ok = 0
for fam, ip in ((socket.AF_INET6, "$T6"), (socket.AF_INET, "$T4")):
    a = socket.inet_pton(fam, ip)
    h = b"\x00\x00\x00" + (b"\x04" if fam == socket.AF_INET6 else b"\x01") + a + struct.pack("!H", 7000)
    d = os.urandom(200)
    u.sendto(h + d, bnd)
    r = u.recv(2000)
    ok += r.endswith(d) and r[len(h) - 2 - len(a) - 1:len(h)] == h[3:]
print("ok %d" % ok)
PY
)
[ "$out" = "ok 2" ] || fail "UDP over IPv6 N1: $out"
pass "UDP ASSOCIATE over IPv6: BND is the real IPv6 address; IPv6 and IPv4 destinations answered with their headers"

# --- raw client corner cases --------------------------------------------------
out=$(inc $PY - <<PY 2>&1
import socket, struct, time
n1 = socket.create_connection(("$G4", 1080), timeout=5)
n1.sendall(b"\x05\x01\x00"); n1.recv(2)
n1.sendall(b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00")
r = n1.recv(10)
assert r[1] == 0, r
bnd = (socket.inet_ntoa(r[4:8]), struct.unpack("!H", r[8:10])[0])
assert bnd[0] != "0.0.0.0"
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("$C4", 0))
def hdr(ip, port, frag=0):
    return b"\x00\x00" + bytes([frag]) + b"\x01" + socket.inet_aton(ip) + struct.pack("!H", port)
stray = []
def ask(pkt, tag=None):
    # With a tag: the answer ending in it must come (up to 10 s, however
    # slow this machine).  Without: nothing may come back within 1 s.
    # Answers are told apart by their payload, so a late one is never
    # taken for another datagram's; any other answer is a stray.
    u.sendto(pkt, bnd)
    end = time.time() + (10 if tag else 1)
    while True:
        left = end - time.time()
        if left <= 0:
            return tag is None
        u.settimeout(left)
        try:
            r = u.recv(2000)
        except socket.timeout:
            return tag is None
        if tag and r.endswith(tag):
            return True
        stray.append(r)
        if tag is None:
            return False
res = []
res.append(ask(hdr("$T4", 7000) + b"first", b"first"))          # works
res.append(ask(hdr("$T4", 7000, frag=1) + b"frag"))             # FRAG != 0 dropped
res.append(ask(b"\x00\x00\x00\x09garbage"))                   # bad ATYP dropped
res.append(ask(b"\x00\x00\x00\x03\x00\x00\x50"))             # empty name dropped
res.append(ask(hdr("$T4", 7009) + b"denied"))                   # denied destination
# Another source (same host, other port) once the port is known: dropped.
o = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); o.bind(("$C4", 0)); o.settimeout(1)
o.sendto(hdr("$T4", 7000) + b"foreign", bnd)
try:
    o.recv(2000); res.append(False)
except socket.timeout:
    res.append(True)
# A name destination, resolved by the daemon (hosts file), still works.
name = b"target.test"
res.append(ask(b"\x00\x00\x00\x03" + bytes([len(name)]) + name + struct.pack("!H", 7000) + b"byname", b"byname"))
res.append(ask(hdr("$T4", 7000) + b"last", b"last"))            # association survived
res.append(not stray)                                            # no late answer to a dropped one
print(" ".join("1" if x else "0" for x in res))
n1.close()
PY
)
[ "$out" = "1 1 1 1 1 1 1 1 1" ] || fail "UDP corner cases (ok frag atyp name denied foreign byname alive nostray): $out"
grep -q "foreign" "$SG_TMP/t7000.log" && fail "the foreign datagram reached the target"
grep -q "frag" "$SG_TMP/t7000.log" && fail "a FRAG != 0 datagram reached the target"
[ -s "$SG_TMP/t7009.log" ] && fail "a datagram reached the denied destination"
# Logged when the association ends (after the client closed N1).
wait_log "dropped 1 frag, 2 malformed, 1 foreign, 1 denied" || fail "drop counters not logged: $(grep 'udp: up' "$SG_LOG" | tail -1)"
pass "UDP: FRAG != 0, malformed headers, another source and a denied destination dropped and counted; the association survives"

# --- BIND ---------------------------------------------------------------------
bind_py() { # expect-host, connect-from-namespace
	inc $PY - "$@" <<PY
import socket, struct, subprocess, sys
n1 = socket.create_connection(("$G4", 1080), timeout=30)
n1.sendall(b"\x05\x01\x00"); n1.recv(2)
n1.sendall(b"\x05\x02\x00\x01" + socket.inet_aton(sys.argv[1]) + b"\x00\x00")
r = n1.recv(10)
assert r[1] == 0, r
bnd = socket.inet_ntoa(r[4:8]), struct.unpack("!H", r[8:10])[0]
print("bound %s %d" % bnd, flush=True)
r2 = n1.recv(10)
if not r2 or r2[1] != 0:
    print("second reply %s" % (r2.hex() if r2 else "none")); sys.exit(1)
print("peer %s" % socket.inet_ntoa(r2[4:8]), flush=True)
n1.sendall(b"ping-from-client")
print(n1.recv(100).decode())
PY
}
# The expected peer connects: second reply names it, data flows both ways.
bind_py $T4 >"$SG_TMP/bind.out" 2>&1 &
BP=$!
SG_PIDS+=($BP)
wait_for 30 'grep -q "^bound" "$SG_TMP/bind.out"' || fail "BIND: no first reply: $(cat "$SG_TMP/bind.out")"
read -r _ BA BPORT <"$SG_TMP/bind.out"
[ "$BA" = "$G4T" ] || fail "BIND listens on $BA, want $G4T (the address toward the target)"
# A host other than DST (the client namespace) is refused first.
inc $PY -c "
import socket
s = socket.create_connection(('$BA', $BPORT), timeout=10)
print(s.recv(10))" >"$SG_TMP/intruder.out" 2>&1
int_ $PY -c "
import socket
s = socket.create_connection(('$BA', $BPORT), timeout=10)
print(s.recv(100).decode()); s.sendall(b'pong-from-target')" >"$SG_TMP/target.out" 2>&1
wait $BP || fail "BIND client: $(cat "$SG_TMP/bind.out")"
grep -q "peer $T4" "$SG_TMP/bind.out" || fail "second reply: $(cat "$SG_TMP/bind.out")"
grep -q "pong-from-target" "$SG_TMP/bind.out" || fail "no data from the target: $(cat "$SG_TMP/bind.out")"
grep -q "ping-from-client" "$SG_TMP/target.out" || fail "no data to the target"
grep -q "BIND: refused a connection from $C4" "$SG_LOG" || fail "the intruder was not refused and logged"
pass "BIND: listens toward DST, refuses another host (logged), second reply names DST, relays both ways"

# --- Dante's socksify ------------------------------------------------------------
if command -v socksify >/dev/null; then
	cat >"$SG_TMP/socks.conf" <<CONF
route {
  from: 0.0.0.0/0 to: 0.0.0.0/0 via: $G4 port = 1080
  proxyprotocol: socks_v5
  method: none
  command: connect bind udpassociate bindreply udpreply
}
CONF
	out=$(inc env SOCKS_CONF="$SG_TMP/socks.conf" socksify $PY -c "
import os, socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(10)
ok = 0
for i in range(5):
    d = os.urandom(100)
    u.sendto(d, ('$T4', 7000))
    r, a = u.recvfrom(1000)
    ok += r == d and a == ('$T4', 7000)
print('ok', ok)" 2>&1)
	[ "$out" = "ok 5" ] || fail "socksify UDP program: $out"
	pass "socksify: an unmodified UDP program goes through UDP ASSOCIATE (5/5 answers)"
	sg_bind_peer 7002
	out=$(inc env SOCKS_CONF="$SG_TMP/socks.conf" socksify "$SG_BUILD/sg_activeftp" $T4 7002 2>&1)
	echo "$out" | grep -q "received from-target from $T4" || fail "socksify BIND program: $out"
	pass "socksify: an FTP-active-mode program gets its connection back through BIND ($(echo "$out" | head -1))"
else
	log "socksify (dante-client) not installed: its part is skipped"
fi

# --- npm socks ------------------------------------------------------------------
if command -v npm >/dev/null; then
	(cd "$SG_ROOT/netns-tests/node" && npm install --no-audit --no-fund --silent >/dev/null 2>&1) ||
		fail "npm install of the socks client failed"
	NODE="node $SG_ROOT/netns-tests/node/socks-client.js"
	out=$(inc $NODE udp $G4 1080 $T4 7000 10 2>&1) || fail "npm socks UDP: $out"
	pass "npm socks UDP ASSOCIATE (createUDPFrame/parseUDPFrame): $out"
	inc $NODE bind $G4 1080 $T4 >"$SG_TMP/nbind.out" 2>&1 &
	NB=$!
	SG_PIDS+=($NB)
	wait_for 30 'grep -q "^bound" "$SG_TMP/nbind.out"' || fail "npm socks BIND: no first reply: $(cat "$SG_TMP/nbind.out")"
	read -r _ BA BPORT <"$SG_TMP/nbind.out"
	int_ $PY -c "
import socket
s = socket.create_connection(('$BA', $BPORT), timeout=10)
s.sendall(b'line\n'); print(s.recv(100).decode())" >"$SG_TMP/ntarget.out" 2>&1
	wait $NB || fail "npm socks BIND: $(cat "$SG_TMP/nbind.out")"
	grep -q "remote $T4" "$SG_TMP/nbind.out" && grep -q "line" "$SG_TMP/ntarget.out" ||
		fail "npm socks BIND: $(cat "$SG_TMP/nbind.out") / $(cat "$SG_TMP/ntarget.out")"
	pass "npm socks BIND: bound, remote $T4 connected, data echoed through the relay"
else
	log "npm is not installed: the npm socks part is skipped"
fi
grep -q "ERROR: AddressSanitizer\|runtime error" "$SG_LOG" && fail "sanitizer report"
true
