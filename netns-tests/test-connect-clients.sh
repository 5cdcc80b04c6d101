#!/bin/bash
# CONNECT through independent clients: proxychains4 (names resolved by the
# daemon), PySocks with RFC 1929 username/password (yescrypt hash), a wrong
# password refused, and a client offering no acceptable method gets X'FF'.
. "$(dirname "$0")/lib.sh"
command -v proxychains4 >/dev/null || skip "proxychains4 not installed"
command -v mkpasswd >/dev/null || skip "mkpasswd (package whois) not installed"
sg_topology
printf 'alice:%s\n' "$(mkpasswd -m yescrypt wonderland)" >"$SG_TMP/users"
sg_config "auth password" "users $SG_TMP/users" \
	"rule allow from 198.18.0.0/24 user alice" \
	"rule allow from 2001:db8::/64 user alice"
sg_daemon
mkdir -p "$SG_TMP/www"
echo hello-proxychains >"$SG_TMP/www/hello.txt"
bg ip netns exec "$NS_T" $PY -m http.server 80 --bind :: --directory "$SG_TMP/www" >/dev/null 2>&1
bg ip netns exec "$NS_T" $PEER tcp-echo 7000
wait_listen "$NS_T" 80
wait_listen "$NS_T" 7000

cat >"$SG_TMP/proxychains.conf" <<CONF
strict_chain
proxy_dns
remote_dns_subnet 224
tcp_read_time_out 15000
tcp_connect_time_out 8000
[ProxyList]
socks5 $G4 1080 alice wonderland
CONF
out=$(inc proxychains4 -q -f "$SG_TMP/proxychains.conf" curl -sS --max-time 10 http://target.test/hello.txt 2>&1) ||
	fail "proxychains4 curl: $out"
[ "$out" = hello-proxychains ] || fail "proxychains4 got '$out'"
wait_log "user alice cmd connect dst target.test:80 rep 0x00" ||
	fail "no log line for alice's CONNECT to target.test"
pass "proxychains4 (proxy_dns, user/password): name resolved by the daemon"

pysocks() { # user password host
	inc $PY - "$@" <<PY
import hashlib, os, sys, socks
user, pw, host = sys.argv[1:4]
s = socks.socksocket()
s.set_proxy(socks.SOCKS5, "$G4", 1080, rdns=True, username=user, password=pw)
s.settimeout(10)
try:
    s.connect((host, 7000))
except socks.ProxyError as e:
    print("refused:", e)
    sys.exit(3)
data = os.urandom(200000)
s.sendall(data)
got = b""
while len(got) < len(data):
    d = s.recv(65536)
    if not d:
        break
    got += d
print("ok" if got == data else "mismatch %d" % len(got))
sys.exit(0 if got == data else 1)
PY
}
out=$(pysocks alice wonderland target.test 2>&1) || fail "PySocks: $out"
pass "PySocks with username/password: 200 kB echoed byte-exact"
out=$(pysocks alice wrong target.test)
rc=$?
[ $rc = 3 ] || fail "wrong password not refused (rc $rc: $out)"
wait_log "authentication failed for user 'alice'" || fail "no log line for the failed authentication"
pass "wrong password refused (RFC 1929 status != 0), logged"
out=$(pysocks mallory wonderland target.test)
[ $? = 3 ] || fail "unknown user not refused"
pass "unknown user refused"
m=$(inc $PY -c "
import socket
s = socket.create_connection(('$G4', 1080), timeout=5)
s.sendall(b'\x05\x01\x00')
print(s.recv(2).hex())")
[ "$m" = 05ff ] || fail "NO AUTH only: got '$m', want 05ff"
pass "client offering only NO AUTH gets X'FF'"
