#!/bin/bash
# BIND when descriptors run out: the peer's connection waits in the BIND
# listener's queue while accept fails with EMFILE.  The daemon must not
# spin on the readable listener (it rests 0.5 s between tries, as the main
# listeners do), and once descriptors are back the connection is accepted:
# the second reply names the peer and data flows.
# (`timeout bind` and the helpers' timeouts leave room for slow helper
# starts: the EMFILE phase lasts as long as the test holds the limit.  CPU
# and accept tries are counted over a measured second of it.)
. "$(dirname "$0")/lib.sh"
sg_topology
sg_config "rule allow from 198.18.0.0/24" "timeout bind 60"
sg_daemon

inc $PY - <<PY >"$SG_TMP/bind.out" 2>&1 &
import socket, struct, sys
n1 = socket.create_connection(("$G4", 1080), timeout=60)
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
SG_PIDS+=($BP)
wait_for 30 'grep -q "^bound" "$SG_TMP/bind.out"'
read -r _ BA BPORT <"$SG_TMP/bind.out"
[ -n "${BPORT:-}" ] || fail "no first BIND reply: $(cat "$SG_TMP/bind.out")"

# No descriptor left: the soft limit below what the daemon has open.
soft=$(sg_prlimit --nofile --output SOFT --noheadings)
sg_prlimit --nofile=3: || fail "prlimit"
int_ $PY - <<PY >"$SG_TMP/target.out" 2>&1 &
import socket
s = socket.create_connection(("$BA", $BPORT), timeout=60)
print(s.recv(100).decode(), flush=True)
s.sendall(b"pong-from-target")
s.recv(1)
PY
TP=$!
SG_PIDS+=($TP)
# The target's connection waits in the queue from its connect on: the
# daemon is at EMFILE on it until the limit is restored below.
wait_log "BIND accept: pausing" 30 || fail "no EMFILE log line for the BIND listener"
hz=$(getconf CLK_TCK)
n0=$(log_count "BIND accept: pausing")
t1=$(now_us)
cpu1=$(awk '{print $14 + $15}' /proc/$(sg_session_pid)/stat)
fsleep 1
cpu2=$(awk '{print $14 + $15}' /proc/$(sg_session_pid)/stat)
t2=$(now_us)
n1=$(log_count "BIND accept: pausing")
sg_prlimit --nofile="$soft": || fail "prlimit (restore)"
dt=$(us_s $((t2 - t1)))
rate=$(((cpu2 - cpu1) * 100000000 / hz / (t2 - t1)))
[ $rate -lt 30 ] || fail "daemon spins on the BIND listener at EMFILE: $rate% of a CPU over $dt s"
tries=$((n1 - n0))
# It rests 0.5 s between tries: about 2 a second, never 20.
[ $((tries * 1000000)) -lt $((20 * (t2 - t1))) ] || fail "$tries failed accepts in $dt s: the loop spins"
pass "EMFILE on the BIND listener: no spin ($rate% of a CPU, $tries accept tries logged in $dt s)"

wait_exit $BP 60 || fail "BIND client still waiting: $(cat "$SG_TMP/bind.out")"
[ $EXIT_RC = 0 ] || fail "BIND client: $(cat "$SG_TMP/bind.out")"
grep -q "peer $T4" "$SG_TMP/bind.out" || fail "second reply: $(cat "$SG_TMP/bind.out")"
grep -q "pong-from-target" "$SG_TMP/bind.out" || fail "no data from the target: $(cat "$SG_TMP/bind.out")"
grep -q "ping-from-client" "$SG_TMP/target.out" || fail "no data to the target: $(cat "$SG_TMP/target.out")"
pass "descriptors back: the queued connection accepted, second reply names $T4, data both ways"
grep -q "ERROR: AddressSanitizer\|runtime error" "$SG_LOG" && fail "sanitizer report"
true
