#!/bin/bash
# The daemon under bad input: a silent client and a dribbling client are
# closed after the handshake timeout; 1,000 malformed requests do not stop
# it serving a good one; fd exhaustion (EMFILE) does not spin the loop;
# SIGHUP with a broken config keeps the running one, a good one applies;
# `socksgated -n` checks a config and exits 0/1 with file:line errors.
. "$(dirname "$0")/lib.sh"
sg_topology
sg_config "rule allow from 198.18.0.0/24 command connect" "timeout handshake 2"
sg_daemon
bg ip netns exec "$NS_T" $PEER tcp-echo 7000
wait_listen "$NS_T" 7000

# --- handshake timeout ------------------------------------------------
t=$(inc $PY - <<PY
import socket, time
s = socket.create_connection(("$G4", 1080))
t0 = time.time()
s.settimeout(10)
print("%.2f" % (time.time() - t0) if s.recv(10) == b"" else "data")
PY
)
awk -v t="$t" 'BEGIN { exit !(t >= 1.5 && t <= 3.5) }' || fail "silent client closed after '$t' s, want ~2"
pass "silent client closed after ${t}s (timeout handshake 2)"
t=$(inc $PY - <<PY
import socket, time
s = socket.create_connection(("$G4", 1080))
t0 = time.time()
msg = b"\x05\x01\x00\x05\x01\x00\x01\xc6\x12\x01\x02\x1b\x58"
try:
    for b in msg:
        s.send(bytes([b]))
        time.sleep(0.4)
    print("not closed")
except OSError:
    print("%.2f" % (time.time() - t0))
PY
)
awk -v t="$t" 'BEGIN { exit !(t >= 1.5 && t <= 3.5) }' || fail "dribbling client: '$t', want closed ~2 s"
pass "dribbling client closed after ${t}s"

# --- malformed requests -----------------------------------------------
out=$(inc $PY - <<PY
import os, random, socket
random.seed(7)
shapes = [
    lambda: b"\x04\x01\x00\x50\x01\x02\x03\x04\x00",           # SOCKS4
    lambda: b"\x05\x00",                                       # NMETHODS 0
    lambda: b"\x05\x01\x00\x05\x09\x00\x01" + os.urandom(6),   # bad CMD
    lambda: b"\x05\x01\x00\x05\x01\x01\x01" + os.urandom(6),   # RSV != 0
    lambda: b"\x05\x01\x00\x05\x01\x00\x07" + os.urandom(6),   # bad ATYP
    lambda: b"\x05\x01\x00\x05\x01\x00\x03\x00\x00\x50",       # name len 0
    lambda: b"\x05\x01\x00\x05\x01\x00\x03\x03a\x00b\x00\x50", # NUL in name
    lambda: b"\x05\x01\x00\x05\x04\x00\x01" + os.urandom(6) + b"\x06\x09",
    lambda: os.urandom(random.randint(1, 600)),
    lambda: b"\x05\xff" + os.urandom(255) + os.urandom(700),
    lambda: b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
]
codes = {}
for i in range(1000):
    s = socket.create_connection(("$G4", 1080), timeout=5)
    s.sendall(shapes[i % len(shapes)]())
    try:
        r = s.recv(64)
        k = r[:2].hex() if r else "closed"
    except OSError as e:
        k = type(e).__name__
    codes[k] = codes.get(k, 0) + 1
    s.close()
print(sorted(codes.items()))
PY
) || fail "malformed loop: $out"
log "answers to 1000 malformed requests: $out"
kill -0 "$DAEMON_PID" || fail "daemon died"
inc $PEER tcp-echo-check $T4 7000 --bytes 1 >/dev/null 2>&1 # warm ARP
out=$(inc $PY - <<PY
import socks, sys
s = socks.socksocket()
s.set_proxy(socks.SOCKS5, "$G4", 1080)
s.settimeout(5)
s.connect(("$T4", 7000))
s.sendall(b"still-alive")
print(s.recv(100).decode())
PY
) || fail "good request after the malformed ones failed"
[ "$out" = still-alive ] || fail "good request got '$out'"
grep -q "reply 0x07\|rep 0x07" "$SG_LOG" || fail "no X'07' for an unknown command"
grep -q "rep 0x08" "$SG_LOG" || fail "no X'08' for an unknown address type"
pass "1000 malformed requests answered or closed; a good request still served"

# --- EMFILE -----------------------------------------------------------
prlimit --pid "$DAEMON_PID" --nofile=40:40 || fail "prlimit"
inc $PY - <<PY &
import socket, time
socks_ = []
for i in range(80):
    try:
        socks_.append(socket.create_connection(("$G4", 1080), timeout=2))
    except OSError:
        pass
time.sleep(3)
PY
HOG=$!
sleep 1.5
cpu1=$(awk '{print $14 + $15}' /proc/$DAEMON_PID/stat)
sleep 1
cpu2=$(awk '{print $14 + $15}' /proc/$DAEMON_PID/stat)
[ $((cpu2 - cpu1)) -lt 30 ] || fail "daemon spins at EMFILE: $((cpu2 - cpu1)) ticks in 1 s"
wait $HOG
sleep 2.5 # handshake timeout frees the slots
prlimit --pid "$DAEMON_PID" --nofile=4096:4096
out=$(inc $PEER socks-raw $G4 1080 "05010001$(printf '%02x%02x%02x%02x' 198 18 1 2)1b58") || true
[ "$out" = 00 ] || fail "no recovery after EMFILE: '$out'"
grep -q "accept: pausing" "$SG_LOG" || fail "no EMFILE log line"
pass "EMFILE: accept paused without spinning ($((cpu2 - cpu1)) ticks/s), recovered"

# --- configuration check and reload ----------------------------------
printf 'listen 1.2.3.4 1080\nrule allow from 10.0.0.0/33\n' >"$SG_TMP/bad.conf"
out=$("$SG_DAEMON" -n -c "$SG_TMP/bad.conf" 2>&1) && fail "-n accepted a bad config"
echo "$out" | grep -q "bad.conf:2: bad CIDR" || fail "-n error lacks file:line: $out"
"$SG_DAEMON" -n -c "$SG_TMP/socksgated.conf" >/dev/null || fail "-n refused the good config"
cp "$SG_TMP/socksgated.conf" "$SG_TMP/good.conf"
echo "rule allow from 10.0.0.0/33" >>"$SG_TMP/socksgated.conf"
kill -HUP "$DAEMON_PID"
sleep 0.3
grep -q "keeping the running configuration" "$SG_LOG" || fail "bad reload not refused"
out=$(inc $PEER socks-raw $G4 1080 "05010001$(printf '%02x%02x%02x%02x' 198 18 1 2)1b58") || true
[ "$out" = 00 ] || fail "old config not kept after a bad reload: '$out'"
# A good reload that denies everything applies at once.
grep -v '^rule' "$SG_TMP/good.conf" >"$SG_TMP/socksgated.conf"
kill -HUP "$DAEMON_PID"
sleep 0.3
grep -q "configuration reloaded" "$SG_LOG" || fail "good reload not applied"
out=$(inc $PEER socks-raw $G4 1080 "05010001$(printf '%02x%02x%02x%02x' 198 18 1 2)1b58") || true
[ "$out" = 02 ] || fail "new rules not applied: '$out'"
pass "-n checks configs (file:line errors); SIGHUP keeps the old config on error, applies a good one"
grep -q "ERROR: AddressSanitizer\|runtime error" "$SG_LOG" && fail "sanitizer report in the daemon log"
true
