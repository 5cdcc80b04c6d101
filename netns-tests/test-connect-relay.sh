#!/bin/bash
# The CONNECT relay, byte for byte, in the mode RELAY_MODE names (unset:
# the daemon's default, splice; run-all.sh runs it with sockmap too): echoes of sizes around
# buffer boundaries (0 .. 1 MiB+1) with the client's FIN first; bytes
# pipelined right behind the CONNECT request (less and more than the
# target takes at once); a server that speaks first and half-closes
# first; a target whose FIN rides on its last data (300 sessions); slow
# readers (back-pressure, the FIN while held back); a fast upload to a
# late reader; both directions stalled (bounded); a reset from the target and from the client; the end log line's
# byte counts; 1,000 concurrent sessions, then nothing left (sessions,
# descriptors, BPF map entries).  Then the fallback: `connect-relay auto`
# in a daemon without CAP_BPF relays with splice, and `connect-relay
# sockmap` refuses to start there (and -n says why).
. "$(dirname "$0")/lib.sh"
RELAY_MODE=${RELAY_MODE:-splice}
sg_topology
ulimit -n 20000
RP="$PY $SG_ROOT/netns-tests/tools/relay_peers.py"
sg_config "rule allow from 198.18.0.0/24" "max-clients 4000" \
	"max-sessions-per-source 4000" "max-handshakes-per-source 4000"
SG_LOG=$SG_TMP/daemon.log
sg_daemon
if [ "$RELAY_MODE" != splice ]; then
	grep -q "connect-relay .*: sockmap$" "$SG_LOG" ||
		{ [ "$RELAY_MODE" = sockmap ] && skip "sockmap unavailable: $(grep connect-relay "$SG_LOG")"; }
fi
log "relay: $(grep -o 'connect-relay.*' "$SG_LOG" | head -1)"
bg ip netns exec "$NS_T" $RP server "$SG_TMP/target.log"
wait_listen "$NS_T" 7104

sizes="0 1 4095 4096 4097 65535 65536 65537 1048577"
out=$(inc $RP client $G4 sizes $sizes 2>&1) || fail "echo: $out"
pass "echo byte-exact, client FIN first, sizes $sizes"
# The end line counts what went each way (as splice mode does).
for n in $sizes; do
	wait_for 10 'grep -q "dst 198.18.1.2:7100 rep 0x00 assoc 0 up $n down $n " "$SG_LOG"' ||
		fail "no end line with up $n down $n: $(grep 'end:' "$SG_LOG" | tail -3)"
done
pass "end log lines: up N down N for each size"

out=$(inc $RP client $G4 pipelined 100 200000 2>&1) || fail "pipelined: $out"
wait_for 10 'grep -q "up 200000 down 200000 " "$SG_LOG"' || fail "pipelined: counts"
pass "100 and 200000 bytes pipelined behind the request arrive first, in order"

want=$(inc $RP client $G4 first 2>&1) || fail "server first: $want"
wait_for 10 'grep -q "^7101 12345 $want" "$SG_TMP/target.log"' ||
	fail "server first: the target got $(grep 7101 "$SG_TMP/target.log")"
pass "server speaks and half-closes first (its bytes queued before the relay starts); the client's 12345 bytes still reach it"

# The target's last bytes and its FIN in one segment, the relay already
# running: the EOF shows before the kernel has handed those bytes on.
seed=$RANDOM
out=$(inc $RP client $G4 fin 300 $seed 2>&1) || fail "FIN with data (seed $seed): $out"
pass "300 sessions whose target sends 1 B..600 kB with its FIN on the last segment: every byte arrives before the EOF (seed $seed)"
# A slow reader: the target is paused and resumed many times, and its
# FIN comes while it is paused (its last bytes then go through user space).
out=$(inc $RP client $G4 slow 4 $seed 2>&1) || fail "slow reader (seed $seed): $out"
held=""
if [ "$RELAY_MODE" = sockmap ]; then
	# The kernel relay must have held the target's data back (and the
	# daemon moved it), else this did not test that path.
	wait_for 10 'grep -q "kernel relay held back [0-9]* bytes up, [1-9][0-9]* down" "$SG_LOG"' ||
		fail "slow reader: the kernel relay never held data back"
	held=": $(grep -c 'kernel relay held back' "$SG_LOG") sessions held back, e.g. $(grep -o 'held back [0-9]* bytes up, [0-9]* down' "$SG_LOG" | tail -1)"
fi
pass "4 slow readers of 3..8 MB (a pause every 512 KiB), the target's FIN arriving while its data is held back: byte-exact$held"

# One direction only, fast: 128 MB sent at once to a target that starts
# reading 0.3 s later (held back, then moved by the daemon at full
# speed): never taken for a stall.
wait_listen "$NS_T" 7106
out=$(inc $RP client $G4 upload 128000000 2>&1) || fail "fast upload to a late reader: $out"
grep -q "both directions stalled" "$SG_LOG" && fail "fast upload to a late reader: ended as stalled"
pass "128 MB sent at once to a target that reads 0.3 s later: all counted by the target"

# Both directions stalled: a client that never reads sends to a target
# that never reads and sends.  What the relay holds must stay bounded:
# splice stops the client after its buffers; the kernel relay, which
# cannot bound held-back data queued behind the other direction's (see
# bpf/sockmap.bpf.c), ends the session once past its limit.
wait_listen "$NS_T" 7105
out=$(inc $RP client $G4 stall 2>&1) || fail "stalled both ways: $out"
read -r sent how <<<"$out"
[ "$sent" -lt $((48 << 20)) ] || fail "stalled both ways: the client got $sent bytes in ($how)"
if [ "$RELAY_MODE" = sockmap ]; then
	wait_log "both directions stalled" 10 || fail "stalled both ways: no overflow line ($how, $sent bytes)"
	[ "$how" = reset ] || fail "stalled both ways: the session was not ended ($how, $sent bytes)"
fi
pass "both directions stalled: the client could send only $((sent >> 20)) MiB ($how)"

t0=$(now_us)
out=$(inc $RP client $G4 target-rst 2>&1) || fail "target reset: $out"
wait_for 10 'grep -q "dst 198.18.1.2:7102 .*reason reset" "$SG_LOG"' || fail "target reset: no end line with reason reset"
pass "a reset from the target reaches the client ($(us_s $(($(now_us) - t0))) s) and ends the session (reset)"
out=$(inc $RP client $G4 client-rst 2>&1) || fail "client reset: $out"
wait_for 10 'grep -q "^7103 " "$SG_TMP/target.log"' || fail "client reset: the target's connection did not end within 10 s"
wait_for 10 'grep -q "dst 198.18.1.2:7103 .*reason reset" "$SG_LOG"' || fail "client reset: no end line with reason reset"
pass "a reset from the client ends the session (reset) and the target's connection ($(grep '^7103' "$SG_TMP/target.log"))"

# 1,000 at once.
our_maps() { # ids of the daemon's BPF maps but the ring and the
	local f  # program's constants (an array) (from its fdinfo)
	for f in /proc/$(sg_session_pid)/fdinfo/*; do
		awk '$1 == "map_type:" { t = $2 } $1 == "map_id:" { i = $2 }
		     END { if (i != "" && t != 27 && t != 2) print i }' "$f" 2>/dev/null
	done
}
map_elems() {
	local n=0 id
	for id in $(our_maps); do
		n=$((n + $(bpftool -j map dump id "$id" 2>/dev/null | $PY -c 'import json,sys; print(len(json.load(sys.stdin)))')))
	done
	echo $n
}
fds0=$(ls /proc/$(sg_session_pid)/fd | wc -l)
sessions() { ing "$SG_CLIENT" list --control "$SG_TMP/control.sock" 2>/dev/null | grep -c "dst 198.18.1.2:7100"; }
t0=$(now_us)
bg ip netns exec "$NS_C" bash -c "ulimit -n 20000; exec $RP client $G4 many 1000 $SG_TMP/many" 
MP=$LAST_PID
wait_for 120 '[ -e "$SG_TMP/many" ] || ! kill -0 $MP 2>/dev/null' || fail "1000 sessions: not all open within 120 s"
[ -e "$SG_TMP/many" ] || { wait $MP; fail "1000 sessions: the client failed"; }
n=$(sessions)
[ "$n" -ge 1000 ] || fail "1000 sessions: socksgate list shows $n"
fds1=$(ls /proc/$(sg_session_pid)/fd | wc -l)
msg="1000 concurrent sessions echoed in $(us_s $(($(now_us) - t0))) s; daemon fds $fds0 -> $fds1"
if [ "$RELAY_MODE" != splice ]; then
	e=$(map_elems)
	[ "$e" -ge 8000 ] || fail "1000 sessions: $e BPF map entries, want 8 per session"
	msg="$msg, BPF map entries $e"
fi
touch "$SG_TMP/many.go"
wait_exit $MP 60 || fail "1000 sessions: the client did not finish"
[ "$EXIT_RC" = 0 ] || fail "1000 sessions: client exit $EXIT_RC"
wait_for 30 '[ "$(sessions)" = 0 ]' || fail "1000 sessions: $(sessions) left after the clients closed"
wait_for 30 '[ "$(ls /proc/$(sg_session_pid)/fd | wc -l)" -le $fds0 ]' ||
	fail "1000 sessions: daemon fds $(ls /proc/$(sg_session_pid)/fd | wc -l), were $fds0"
if [ "$RELAY_MODE" != splice ]; then
	[ "$(map_elems)" = 0 ] || fail "1000 sessions: $(map_elems) BPF map entries left"
fi
left="no session, fds back to $fds0"
[ "$RELAY_MODE" = splice ] || left="$left, no map entry left"
pass "$msg; after: $left"
grep -q "ERROR: AddressSanitizer\|runtime error" "$SG_LOG" && fail "sanitizer report in the daemon log"

# The fallback, in a daemon that cannot load BPF programs: root without
# CAP_BPF, CAP_SYS_ADMIN and CAP_PERFMON (as in a container that denies
# them), with kernel.unprivileged_bpf_disabled as set.
[ "$RELAY_MODE" = splice ] && exit 0
kill "$DAEMON_PID"
wait_exit "$DAEMON_PID" 10 || fail "daemon did not stop"
cat >"$SG_TMP/nobpf.sh" <<SH
#!/bin/sh
exec setpriv --bounding-set=-bpf,-sys_admin,-perfmon --inh-caps=-bpf,-sys_admin,-perfmon "$SG_DAEMON" "\$@"
SH
chmod +x "$SG_TMP/nobpf.sh"
sg_config "rule allow from 198.18.0.0/24" "connect-relay sockmap"
out=$("$SG_TMP/nobpf.sh" -n -c "$SG_TMP/socksgated.conf" 2>&1) && fail "-n accepted connect-relay sockmap without CAP_BPF: $out"
echo "$out" | grep -q "connect-relay sockmap: loading the BPF program" || fail "-n: $out"
: >"$SG_LOG"
ip netns exec "$NS_G" "$SG_TMP/nobpf.sh" -f -c "$SG_TMP/socksgated.conf" >>"$SG_LOG" 2>&1 &
P=$!
SG_PIDS+=($P)
wait_exit $P 20 || fail "connect-relay sockmap without CAP_BPF: the daemon runs"
[ "$EXIT_RC" != 0 ] && grep -q "connect-relay sockmap: loading the BPF program" "$SG_LOG" ||
	fail "connect-relay sockmap without CAP_BPF: rc $EXIT_RC, $(cat "$SG_LOG")"
pass "connect-relay sockmap without CAP_BPF: refused at start and by -n ($(grep -o 'connect-relay sockmap:.*' "$SG_LOG"))"
sg_config "rule allow from 198.18.0.0/24"
echo "connect-relay auto" >>"$SG_TMP/socksgated.conf"
SG_DAEMON=$SG_TMP/nobpf.sh sg_daemon
wait_log "connect-relay auto: splice" 10 || fail "auto: no fallback line: $(grep connect-relay "$SG_LOG")"
out=$(inc $RP client $G4 sizes 65537 2>&1) || fail "auto fallback: $out"
wait_for 10 'grep -q "up 65537 down 65537 " "$SG_LOG"' || fail "auto fallback: counts"
pass "connect-relay auto: splice (the kernel relay measured slower), CONNECT relayed"
