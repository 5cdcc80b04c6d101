#!/bin/bash
# UDP ASSOCIATE moving datagrams in batches (recvmmsg/sendmmsg):
# 1. 10,000 numbered datagrams of varying sizes (1 byte, up to the largest
#    that fits in one datagram both ways) to an IPv4 and an IPv6 target,
#    interleaved, with 400 to a denied destination among them, then 4,000
#    in runs of one size to one target (what UDP GSO coalesces): every
#    answer byte-exact and in order per target, none lost (a windowed
#    sender: at most 64 datagrams and 48 KiB in flight, so that no socket
#    buffer overflows however slow the machine), nothing reaches the
#    denied destination, and the session's end line counts them all.
# 2. Fairness: while one association floods (sg_blast, as fast as it can
#    send), another association's 100 pings are all answered, within a
#    generous deadline; the flood is checked to have run meanwhile.
. "$(dirname "$0")/lib.sh"
sg_topology
sg_config "rule deny to $T4 port 7109" \
	"rule allow from 198.18.0.0/24" "rule allow from 2001:db8::/64"
sg_daemon

# Echo servers in the target: byte-exact echo, and the denied one counts.
cat >"$SG_TMP/echo.py" <<'PY'
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE
s.bind((sys.argv[1], int(sys.argv[2])))
log = open(sys.argv[3], "a", buffering=1) if len(sys.argv) > 3 else None
while True:
    d, a = s.recvfrom(70000)
    if log:
        log.write("%d\n" % len(d))
    s.sendto(d, a)
PY
bg ip netns exec "$NS_T" $PY "$SG_TMP/echo.py" $T4 7100
bg ip netns exec "$NS_T" $PY "$SG_TMP/echo.py" $T6 7101
bg ip netns exec "$NS_T" $PY "$SG_TMP/echo.py" $T4 7109 "$SG_TMP/denied.log"
touch "$SG_TMP/denied.log"
wait_listen "$NS_T" 7100 u
wait_listen "$NS_T" 7101 u
wait_listen "$NS_T" 7109 u

# --- 1. a burst, byte-exact and in order -------------------------------------
# The client holds N1 until told (a file) so that the end line is read
# after the check; it prints its result first.
cat >"$SG_TMP/burst.py" <<PY
import os, random, select, socket, struct, time
N, DENIED_EVERY = 10000, 25
n1 = socket.create_connection(("$G4", 1080), timeout=10)
n1.sendall(b"\x05\x01\x00"); n1.recv(2)
n1.sendall(b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00")
r = n1.recv(10)
assert r[1] == 0, r
bnd = (socket.inet_ntoa(r[4:8]), struct.unpack("!H", r[8:10])[0])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE
u.setsockopt(socket.SOL_SOCKET, 32, 8 << 20)  # SO_SNDBUFFORCE
u.bind(("$C4", 0))
u.setblocking(False)
dsts = [(socket.AF_INET, "$T4", 7100), (socket.AF_INET6, "$T6", 7101)]
def hdr(fam, ip, port):
    return (b"\x00\x00\x00" + (b"\x01" if fam == socket.AF_INET else b"\x04")
            + socket.inet_pton(fam, ip) + struct.pack("!H", port))
hdrs = [hdr(*d) for d in dsts]
denied_hdr = hdr(socket.AF_INET, "$T4", 7109)
key = {(socket.inet_pton(d[0], d[1]), d[2]): k for k, d in enumerate(dsts)}
# The largest datagram through an IPv4 relay socket: 65507 bytes, header
# included, each way (the answer's header is the same size).
maxp = [65507 - len(h) for h in hdrs]
rnd = random.Random(15)
sent, got = [[], []], [[], []]
inflight, inflight_bytes, denied, bytes_up = 0, 0, 0, 0
def size(i, k):
    if i % 101 == 0: return maxp[k]
    if i % 7 == 0: return 1
    if i % 13 == 0: return rnd.randint(1473, 9000)
    return rnd.randint(2, 1400)
def payload(i, n):
    if n < 4: return bytes([i & 0xff]) * n
    return struct.pack("!I", i) + rnd.randbytes(n - 4)
def drain(wait):
    global inflight, inflight_bytes
    while True:
        if not select.select([u], [], [], wait)[0]:
            return False
        wait = 0
        while True:
            try:
                d = u.recv(70000)
            except BlockingIOError:
                return True
            assert d[:3] == b"\x00\x00\x00", d[:4]
            if d[3] == 1: a, off = d[4:8], 8
            else: a, off = d[4:20], 20
            k = key[(a, struct.unpack("!H", d[off:off + 2])[0])]
            got[k].append(d[off + 2:])
            inflight -= 1
            inflight_bytes -= len(d) - off - 2
def wait_room(n):
    last = time.monotonic()
    while inflight > 0 and (inflight >= 64 or inflight_bytes + n > 48 << 10):
        if drain(1.0):
            last = time.monotonic()
        elif time.monotonic() - last > 30:
            raise SystemExit("no answer for 30 s: %d in flight, got %d %d"
                             % (inflight, len(got[0]), len(got[1])))
for i in range(N):
    k = i % 2
    p = payload(i, size(i, k))
    wait_room(len(p))
    u.sendto(hdrs[k] + p, bnd)
    sent[k].append(p)
    inflight += 1
    inflight_bytes += len(p)
    bytes_up += len(p)
    if i % DENIED_EVERY == 0:
        u.sendto(denied_hdr + payload(i, 100), bnd)
        denied += 1
    drain(0)
# Then runs of one size to one target (what UDP GSO coalesces), a
# shorter one now and then (GSO's short last segment).
for i in range(N, N + 4000):
    k = (i // 1000) % 2
    p = payload(i, 57 if i % 10 == 0 else (200, 1232)[k])
    wait_room(len(p))
    u.sendto(hdrs[k] + p, bnd)
    sent[k].append(p)
    inflight += 1
    inflight_bytes += len(p)
    bytes_up += len(p)
    drain(0)
wait_room(1 << 20)
for k in (0, 1):
    if got[k] != sent[k]:
        bad = next((j for j, (a, b) in enumerate(zip(got[k], sent[k])) if a != b), None)
        raise SystemExit("target %d: %d sent, %d answered, first difference at %s"
                         % (k, len(sent[k]), len(got[k]), bad))
sizes = [len(p) for s in sent for p in s]
print("ok %d %d %d %d %d %d" % (len(sent[0]) + len(sent[1]), denied, bytes_up,
      min(sizes), max(sizes), sizes.count(maxp[0]) + sizes.count(maxp[1])))
import sys; sys.stdout.flush()
while not os.path.exists("$SG_TMP/release"):
    time.sleep(0.05)
PY
bg ip netns exec "$NS_C" $PY "$SG_TMP/burst.py" >"$SG_TMP/burst.out" 2>&1
burst=$LAST_PID
wait_for 900 "grep -q . '$SG_TMP/burst.out' || ! kill -0 $burst 2>/dev/null" ||
	fail "the burst did not end within 900 s"
# Its result line comes before it holds N1; an error ends it.
wait_for 10 "grep -q '^ok' '$SG_TMP/burst.out' || ! kill -0 $burst 2>/dev/null"
read -r ok total denied bytes smin smax nmax <"$SG_TMP/burst.out"
[ "$ok" = ok ] || fail "burst: $(tail -5 "$SG_TMP/burst.out")"
[ "$smin" = 1 ] && [ "$smax" = 65497 ] && [ "$nmax" -ge 90 ] ||
	fail "burst sizes not as meant: $smin..$smax, $nmax of the largest"
pass "$total datagrams ($smin to $smax bytes, $nmax of the largest) to an IPv4 and an IPv6 target, interleaved: every answer byte-exact and in order, none lost"
[ ! -s "$SG_TMP/denied.log" ] || fail "$(wc -l <"$SG_TMP/denied.log") datagrams reached the denied destination"
touch "$SG_TMP/release"
wait_exit "$burst" 30 || fail "burst client did not end"
end=$(wait_log "udp: up $total datagrams $bytes bytes, down $total datagrams $bytes bytes" 30 &&
	grep "udp: up $total datagrams" "$SG_LOG" | tail -1) ||
	fail "no end line counting $total datagrams and $bytes bytes each way: $(grep 'udp: up' "$SG_LOG" | tail -2)"
case $end in
*" 0 frag, 0 malformed, 0 foreign, $denied denied, 0 over udp-name-rate, 0 unsent") ;;
*) fail "end line: $end (wanted $denied denied, nothing else dropped)" ;;
esac
pass "$denied datagrams to the denied destination interleaved: none arrived; the end line counts them, and nothing else dropped"

# --- 2. a flood does not starve another association --------------------------
BLAST=$SG_BUILD/sg_blast
[ -x "$BLAST" ] || skip "no $BLAST (build with -DSG_BUILD_TOOLS=ON)"
bg ip netns exec "$NS_T" "$BLAST" sink udp 5001 120
wait_listen "$NS_T" 5001 u
bg ip netns exec "$NS_C" "$BLAST" send udp $T4 5001 100 --size 64 --socks $G4:1080
flood=$LAST_PID
in_dgrams() { ip netns exec "$NS_T" awk '/^Udp:/ { if (h) { print $2; exit } h = 1 }' /proc/net/snmp; }
# The flood is under way once the target sees it.
d0=$(in_dgrams)
wait_for 30 "[ \$((\$(in_dgrams) - d0)) -ge 1000 ]" || fail "the flood did not start"
d0=$(in_dgrams)
out=$(inc $PY - <<PY 2>&1
import socket, struct, time
n1 = socket.create_connection(("$G4", 1080), timeout=10)
n1.sendall(b"\x05\x01\x00"); n1.recv(2)
n1.sendall(b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00")
r = n1.recv(10)
assert r[1] == 0, r
bnd = (socket.inet_ntoa(r[4:8]), struct.unpack("!H", r[8:10])[0])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("$C4", 0))
h = b"\x00\x00\x00\x01" + socket.inet_aton("$T4") + struct.pack("!H", 7100)
lat, resent, deadline = [], 0, time.monotonic() + 120
for i in range(100):
    p = b"ping %d" % i
    t = time.monotonic()
    u.sendto(h + p, bnd)
    while True:  # a lost ping is sent again; the deadline is the bound
        u.settimeout(max(0.01, min(2.0, deadline - time.monotonic())))
        try:
            d = u.recv(2000)
        except socket.timeout:
            if time.monotonic() > deadline:
                raise SystemExit("ping %d unanswered at the deadline" % i)
            u.sendto(h + p, bnd)
            resent += 1
            continue
        if d == h + p:
            break
    lat.append(time.monotonic() - t)
    time.sleep(0.02)  # pacing: the pings span the flood
lat.sort()
print("ok median %.1f ms, max %.1f ms, %d sent again" % (lat[50] * 1e3, lat[-1] * 1e3, resent))
PY
)
d1=$(in_dgrams)
case $out in ok*) ;; *) fail "pings during the flood: $out" ;; esac
kill -0 "$flood" 2>/dev/null || fail "the flood ended before the pings did"
[ $((d1 - d0)) -ge 1000 ] || fail "the flood did not run meanwhile ($((d1 - d0)) datagrams)"
kill "$flood"
pass "100 pings through a second association answered while the first flooded ($((d1 - d0)) datagrams reached the target meanwhile): ${out#ok }"
