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
# A control round trip: the daemon is past its start (some descriptors
# come after it listens) and has closed the control connection.
wait_for 10 'ing "$SG_CLIENT" stats --control "$SG_TMP/control.sock" >/dev/null 2>&1' || fail "control socket"
fds0=$(ls /proc/$(sg_session_pid)/fd | wc -l)
ctl_active() {
	ing "$SG_CLIENT" stats --json --control "$SG_TMP/control.sock" |
		$PY -c 'import json,sys; print(json.load(sys.stdin)["sessions"]["active"])'
}
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
# The 500 ends take the daemon a while; the bound endpoints stay 2 s more.
wait_for 60 '[ "$(relay_elements)" = 0 ]' || fail "relay elements left: $(relay_elements)"
for s in bound4 bound6; do
	wait_for 10 '[ "$(set_count $s)" = 0 ]' || fail "$s still has $(set_count $s) elements"
done
[ "$(ct_ours)" = 0 ] || fail "conntrack entries with our mark left"
# Every session has ended once its association's elements are gone.
[ "$(ctl_active)" = 0 ] || fail "$(ctl_active) sessions still active"
fds1=$(ls /proc/$(sg_session_pid)/fd | wc -l)
[ "$fds1" -le "$fds0" ] || fail "fd leak: $fds0 before, $fds1 after"
pass "no element, conntrack entry or fd left ($fds0 fds before, $fds1 after)"
grep -q "ERROR: AddressSanitizer" "$SG_LOG" && fail "sanitizer report in the daemon log"
true
