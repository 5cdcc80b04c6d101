#!/bin/bash
# The client library's promise: every call is bounded by its timeout.
# `socksgate transparent --timeout 2` with a proxy name that the client's
# resolver never answers (it drops DNS; glibc alone would wait 10 s and
# more) gives up after ~2 s; so does a proxy that accepts and never
# answers.  The name lookup is really attempted (the resolver counts it).
. "$(dirname "$0")/lib.sh"
sg_topology

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
dns_in() { int_ nft list counter inet sgdns dns_in | awk '/packets/ {print $2}'; }
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

# The resolver really is that slow for an unbounded lookup.
read -r rc t <<<"$(timed "$SG_TMP/getent.out" inc timeout 4 getent ahosts proxy.unresolvable.test)"
[ "$rc" = 124 ] || skip "getent did not hang on the dropping resolver (rc $rc in ${t}s)"
log "getent ahosts: still waiting after ${t}s (killed)"

n0=$(dns_in)
read -r rc t <<<"$(timed "$SG_TMP/name.out" inc "$SG_CLIENT" transparent \
	--proxy proxy.unresolvable.test --timeout 2 --proto udp \
	--source "$C4:5000" --dest "$T4:7000")"
[ "$rc" = 1 ] || fail "exit $rc, want 1: $(cat "$SG_TMP/name.out")"
awk -v t="$t" 'BEGIN { exit !(t >= 1.8 && t < 3.5) }' || fail "gave up after ${t}s, want ~2"
grep -q "name lookup timed out" "$SG_TMP/name.out" || fail "message: $(cat "$SG_TMP/name.out")"
[ "$(dns_in)" -gt "$n0" ] || fail "no DNS query reached the resolver"
grep -q "ERROR: AddressSanitizer\|runtime error\|LeakSanitizer" "$SG_TMP/name.out" && fail "sanitizer: $(cat "$SG_TMP/name.out")"
pass "proxy name lookup bounded: gave up after ${t}s (--timeout 2): $(cat "$SG_TMP/name.out")"

# A proxy that accepts and never answers.
bg ip netns exec "$NS_G" $PY -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('$G4', 1099)); s.listen(4)
c = s.accept(); time.sleep(30)"
wait_listen "$NS_G" 1099
read -r rc t <<<"$(timed "$SG_TMP/silent.out" inc "$SG_CLIENT" transparent \
	--proxy "$G4:1099" --timeout 1 --proto udp --source "$C4:5000" --dest "$T4:7000")"
[ "$rc" = 1 ] && grep -q "timeout" "$SG_TMP/silent.out" || fail "exit $rc: $(cat "$SG_TMP/silent.out")"
awk -v t="$t" 'BEGIN { exit !(t >= 0.9 && t < 2.5) }' || fail "gave up after ${t}s, want ~1"
pass "silent proxy: gave up after ${t}s (--timeout 1): $(cat "$SG_TMP/silent.out")"
true
