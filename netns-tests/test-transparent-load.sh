#!/bin/bash
# 1,000 TRANSPARENT associations opened and closed by 50 concurrent
# clients: all succeed, and afterwards no element, no conntrack entry and
# no file descriptor is left over.  Also prints setup latency and rate.
. "$(dirname "$0")/lib.sh"
sg_topology
# One client opens them all: no per-source limits (see test-abuse-*.sh).
sg_config "rule allow from 198.18.0.0/24" "max-clients 2000" \
	"max-sessions-per-source 0" "max-associations-per-source 0"
sg_daemon
sleep 0.2
fds0=$(ls /proc/$DAEMON_PID/fd | wc -l)
out=$(inc $PY "$SG_ROOT/netns-tests/tools/tp_load.py" $G4 1080 --src $C4 --dst $T4:7000 \
	--count 1000 --concurrency 50 --first-port 30000) || fail "load: $out"
log "$out"
echo "$out" | grep -q "ok=1000" || fail "not every association succeeded: $out"
pass "1000 associations by 50 concurrent clients all answered X'00'"
# Held at once, then all closed: the batch path with many in flight.
out=$(inc $PY "$SG_ROOT/netns-tests/tools/tp_load.py" $G4 1080 --src $C4 --dst $T4:7000 \
	--count 500 --concurrency 50 --first-port 40000 --hold 0.5) || fail "held load: $out"
echo "$out" | grep -q "ok=500" || fail "held: not every association succeeded: $out"
pass "500 associations held at once, then closed"
sleep 0.5
[ "$(relay_elements)" = 0 ] || fail "relay elements left: $(relay_elements)"
sleep 2.5
for s in bound4 bound6; do
	[ "$(set_count $s)" = 0 ] || fail "$s still has $(set_count $s) elements"
done
[ "$(ct_ours)" = 0 ] || fail "conntrack entries with our mark left"
fds1=$(ls /proc/$DAEMON_PID/fd | wc -l)
[ "$fds1" -le "$fds0" ] || fail "fd leak: $fds0 before, $fds1 after"
pass "no element, conntrack entry or fd left ($fds0 fds before, $fds1 after)"
grep -q "ERROR: AddressSanitizer" "$SG_LOG" && fail "sanitizer report in the daemon log"
true
