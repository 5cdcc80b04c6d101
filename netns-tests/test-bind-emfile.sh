#!/bin/bash
# BIND when descriptors run out: the peer's connection waits in the BIND
# listener's queue while accept fails with EMFILE.  The daemon must not
# spin on the readable listener (it rests 0.5 s between tries, as the main
# listeners do), and once descriptors are back the connection is accepted:
# the second reply names the peer and data flows.
. "$(dirname "$0")/lib.sh"
sg_topology
sg_config "rule allow from 198.18.0.0/24" "timeout bind 15"
sg_daemon

inc $PY - <<PY >"$SG_TMP/bind.out" 2>&1 &
import socket, struct, sys
n1 = socket.create_connection(("$G4", 1080), timeout=20)
n1.sendall(b"\x05\x01\x00"); n1.recv(2)
n1.sendall(b"\x05\x02\x00\x01" + socket.inet_aton("$T4") + b"\x00\x00")
r = n1.recv(10)
assert r[1] == 0, r
print("bound %s %d" % (socket.inet_ntoa(r[4:8]), struct.unpack("!H", r[8:10])[0]), flush=True)
r2 = n1.recv(10)
if not r2 or r2[1] != 0:
    print("second reply %s" % (r2.hex() if r2 else "none")); sys.exit(1)
print("peer %s" % socket.inet_ntoa(r2[4:8]), flush=True)
n1.sendall(b"ping-from-client")
print(n1.recv(100).decode(), flush=True)
PY
BP=$!
for _ in $(seq 1 50); do grep -q "^bound" "$SG_TMP/bind.out" && break; sleep 0.1; done
read -r _ BA BPORT <"$SG_TMP/bind.out"
[ -n "${BPORT:-}" ] || fail "no first BIND reply: $(cat "$SG_TMP/bind.out")"

# No descriptor left: the soft limit below what the daemon has open.
soft=$(prlimit --pid "$DAEMON_PID" --nofile --output SOFT --noheadings)
prlimit --pid "$DAEMON_PID" --nofile=3: || fail "prlimit"
int_ $PY - <<PY >"$SG_TMP/target.out" 2>&1 &
import socket
s = socket.create_connection(("$BA", $BPORT), timeout=20)
print(s.recv(100).decode(), flush=True)
s.sendall(b"pong-from-target")
s.recv(1)
PY
TP=$!
SG_PIDS+=($TP)
for _ in $(seq 1 20); do grep -q "BIND accept: pausing" "$SG_LOG" && break; sleep 0.1; done
cpu1=$(awk '{print $14 + $15}' /proc/$DAEMON_PID/stat)
sleep 1
cpu2=$(awk '{print $14 + $15}' /proc/$DAEMON_PID/stat)
prlimit --pid "$DAEMON_PID" --nofile="$soft": || fail "prlimit (restore)"
[ $((cpu2 - cpu1)) -lt 30 ] || fail "daemon spins on the BIND listener at EMFILE: $((cpu2 - cpu1)) ticks in 1 s"
tries=$(grep -c "BIND accept: pausing" "$SG_LOG")
[ "$tries" -gt 0 ] || fail "no EMFILE log line for the BIND listener"
[ "$tries" -lt 20 ] || fail "$tries failed accepts in about 1 s: the loop spins"
pass "EMFILE on the BIND listener: no spin ($((cpu2 - cpu1)) ticks in 1 s, $tries accept tries logged)"

wait $BP || fail "BIND client: $(cat "$SG_TMP/bind.out")"
grep -q "peer $T4" "$SG_TMP/bind.out" || fail "second reply: $(cat "$SG_TMP/bind.out")"
grep -q "pong-from-target" "$SG_TMP/bind.out" || fail "no data from the target: $(cat "$SG_TMP/bind.out")"
grep -q "ping-from-client" "$SG_TMP/target.out" || fail "no data to the target: $(cat "$SG_TMP/target.out")"
pass "descriptors back: the queued connection accepted, second reply names $T4, data both ways"
grep -q "ERROR: AddressSanitizer\|runtime error" "$SG_LOG" && fail "sanitizer report"
true
