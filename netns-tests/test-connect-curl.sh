#!/bin/bash
# CONNECT with curl: --socks5 (IPv4, IPv6 literal) and --socks5-hostname
# (the daemon resolves target.test through c-ares), a 10 MB transfer
# checked by checksum, and a denied destination answered with X'02'.
# (A session's log line is written when it ends, which may be after the
# client has exited: the tests wait for it.)
. "$(dirname "$0")/lib.sh"
sg_topology
sg_config "rule deny to $T4 port 81" \
	"rule allow from 198.18.0.0/24 command connect" \
	"rule allow from 2001:db8::/64 command connect"
sg_daemon

mkdir -p "$SG_TMP/www"
head -c 10000000 /dev/urandom >"$SG_TMP/www/big.bin"
echo hello-socksgate >"$SG_TMP/www/hello.txt"
want=$(sha256sum <"$SG_TMP/www/big.bin" | cut -d' ' -f1)
bg ip netns exec "$NS_T" $PY -m http.server 80 --bind :: --directory "$SG_TMP/www" >/dev/null 2>&1
bg ip netns exec "$NS_T" $PY -m http.server 81 --bind :: --directory "$SG_TMP/www" >/dev/null 2>&1
wait_listen "$NS_T" 80
wait_listen "$NS_T" 81

out=$(inc curl -sS --max-time 10 --socks5 $G4:1080 http://$T4/hello.txt) || fail "curl --socks5 IPv4: $out"
[ "$out" = hello-socksgate ] || fail "unexpected body '$out'"
pass "curl --socks5 to an IPv4 target"

out=$(inc curl -sS --max-time 10 --socks5 "[$G6]:1080" "http://[$T6]/hello.txt") || fail "curl --socks5 IPv6: $out"
[ "$out" = hello-socksgate ] || fail "unexpected body '$out'"
pass "curl --socks5 over IPv6 to an IPv6 target"

out=$(inc curl -sS --max-time 10 --socks5-hostname $G4:1080 http://target.test/hello.txt) || fail "curl --socks5-hostname: $out"
[ "$out" = hello-socksgate ] || fail "unexpected body '$out'"
wait_log "dst target.test:80 rep 0x00" || fail "no session log line for target.test"
pass "curl --socks5-hostname: name resolved by the daemon"

got=$(inc curl -sS --max-time 60 --socks5-hostname $G4:1080 http://target.test/big.bin | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "10 MB transfer checksum mismatch"
pass "10 MB transfer arrives byte-exact"

inc curl -sS --max-time 10 --socks5 $G4:1080 http://$T4:81/hello.txt >"$SG_TMP/denied.out" 2>&1 && fail "denied destination was served"
wait_log "rep 0x02" || fail "denied destination did not get X'02'"
rc=$(inc $PEER socks-raw $G4 1080 "05010001$(printf "%02x%02x%02x%02x" 198 18 1 2)0051") || true
[ "$rc" = 02 ] || fail "raw CONNECT to a denied port: reply $rc, want 02"
pass "denied destination gets X'02'"

rc=$(inc $PEER socks-raw $G4 1080 "05010001$(printf "%02x%02x%02x%02x" 198 18 1 2)0051") || true
rc=$(inc $PEER socks-raw $G4 1080 "050100030c6e6f7375636868742e746573740050") || true
[ "$rc" = 04 ] || fail "unknown name: reply $rc, want 04"
pass "unresolvable name gets X'04'"

rc=$(inc $PEER socks-raw $G4 1080 "05010001$(printf '%02x%02x%02x%02x' 198 18 1 2)0058") || true
[ "$rc" = 05 ] || fail "closed port: reply $rc, want 05 (refused)"
pass "closed port gets X'05'"
