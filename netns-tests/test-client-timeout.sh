#!/bin/bash
# The client library's promise: every call is bounded by its timeout.
# `socksgate transparent --timeout 2` with a proxy name that the client's
# resolver never answers (it drops DNS; glibc alone would wait 10 s and
# more) gives up after ~2 s; so does a proxy that accepts and never
# answers.  The name lookup is really attempted (the resolver counts it).
# Times: "gave up after at least T" is measured from before the client
# starts (its call cannot have started earlier); "within T" from the
# resolver's first query (or the silent proxy's accept), which comes after
# the call started: neither bound depends on how long the client, under
# ASan, takes to start or to exit.
. "$(dirname "$0")/lib.sh"
sg_topology

RES4=198.18.1.53
ip -n "$NS_T" addr add $RES4/24 dev t0
int_ nft -f - <<NFT || fail "nft in the target"
table inet sgdns {
	counter dns_in {}
	chain in {
		type filter hook input priority 0; policy accept;
		meta l4proto { tcp, udp } th dport 53 counter name dns_in
		tcp dport 53 drop
	}
}
NFT
dns_in() { int_ nft list counter inet sgdns dns_in | awk '/packets/ {print $2}'; }
# The resolver's UDP side: takes every query, answers none, notes when
# each came (epoch seconds).
bg ip netns exec "$NS_T" $PY -c "
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('$RES4', 53))
while True:
    s.recvfrom(2048)
    with open('$SG_TMP/queries.t', 'a') as f:
        f.write('%.6f\\n' % time.time())"
wait_listen "$NS_T" 53 u
mkdir -p "/etc/netns/$NS_C"
printf 'nameserver %s\n' "$RES4" >"/etc/netns/$NS_C/resolv.conf"
printf '127.0.0.1 localhost\n' >"/etc/netns/$NS_C/hosts"

# Bounded: how long a command took, and its exit status.
timed() { # out-file command...
	local out=$1 t0 rc
	shift
	t0=$(date +%s%N)
	"$@" >"$out" 2>&1
	rc=$?
	echo "$rc $(awk -v d=$(($(date +%s%N) - t0)) 'BEGIN { printf "%.3f", d / 1e9 }')"
}

# Runs a command in the background: T_START (µs) before it starts, T_MSG
# when its output appeared (or it exited), RC its exit status.
run_timed() { # out-file command...
	local out=$1 pid end
	shift
	T_START=$(now_us)
	"$@" >"$out" 2>&1 &
	pid=$!
	SG_PIDS+=($pid)
	end=$((T_START + 60000000))
	T_MSG=
	while [ -z "$T_MSG" ] && [ "$(now_us)" -lt $end ]; do
		if [ -s "$out" ] || ! kill -0 $pid 2>/dev/null; then
			T_MSG=$(now_us)
		else
			fsleep 0.01
		fi
	done
	wait_exit $pid 60 || fail "$* still runs after 60 s"
	RC=$EXIT_RC
}

# The resolver really is that slow for an unbounded lookup.
read -r rc t <<<"$(timed "$SG_TMP/getent.out" inc timeout 4 getent ahosts proxy.unresolvable.test)"
[ "$rc" = 124 ] || skip "getent did not hang on the dropping resolver (rc $rc in ${t}s)"
log "getent ahosts: still waiting after ${t}s (killed)"

n0=$(dns_in)
: >"$SG_TMP/queries.t"
run_timed "$SG_TMP/name.out" ip netns exec "$NS_C" "$SG_CLIENT" transparent \
	--proxy proxy.unresolvable.test --timeout 2 --proto udp \
	--source "$C4:5000" --dest "$T4:7000"
[ "$RC" = 1 ] || fail "exit $RC, want 1: $(cat "$SG_TMP/name.out")"
grep -q "name lookup timed out" "$SG_TMP/name.out" || fail "message: $(cat "$SG_TMP/name.out")"
[ "$(dns_in)" -gt "$n0" ] && [ -s "$SG_TMP/queries.t" ] || fail "no DNS query reached the resolver"
t_q=$(s_us "$(head -1 "$SG_TMP/queries.t")")
t=$(us_s $((T_MSG - T_START))) tq=$(us_s $((T_MSG - t_q)))
[ $((T_MSG - T_START)) -ge 1800000 ] || fail "gave up ${t}s after it started, want ~2"
[ $((T_MSG - t_q)) -lt 3000000 ] || fail "gave up ${tq}s after its first query, want ~2"
grep -q "ERROR: AddressSanitizer\|runtime error\|LeakSanitizer" "$SG_TMP/name.out" && fail "sanitizer: $(cat "$SG_TMP/name.out")"
pass "proxy name lookup bounded: gave up ${t}s after its start, ${tq}s after its first query (--timeout 2): $(cat "$SG_TMP/name.out")"

# A proxy that accepts and never answers.
bg ip netns exec "$NS_G" $PY -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('$G4', 1099)); s.listen(4)
c = s.accept()
open('$SG_TMP/accept.t', 'w').write('%.6f' % time.time())
time.sleep(60)"
wait_listen "$NS_G" 1099
run_timed "$SG_TMP/silent.out" ip netns exec "$NS_C" "$SG_CLIENT" transparent \
	--proxy "$G4:1099" --timeout 1 --proto udp --source "$C4:5000" --dest "$T4:7000"
[ "$RC" = 1 ] && grep -q "timeout" "$SG_TMP/silent.out" || fail "exit $RC: $(cat "$SG_TMP/silent.out")"
wait_for 10 '[ -s "$SG_TMP/accept.t" ]' || fail "the silent proxy saw no connection"
t_a=$(s_us "$(cat "$SG_TMP/accept.t")")
t=$(us_s $((T_MSG - T_START))) ta=$(us_s $((T_MSG - t_a)))
[ $((T_MSG - T_START)) -ge 900000 ] || fail "gave up ${t}s after it started, want ~1"
[ $((T_MSG - t_a)) -lt 2000000 ] || fail "gave up ${ta}s after the proxy accepted, want ~1"
pass "silent proxy: gave up ${t}s after its start, ${ta}s after the accept (--timeout 1): $(cat "$SG_TMP/silent.out")"
true
