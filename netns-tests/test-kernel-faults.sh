#!/bin/bash
# The daemon's record equals the kernel's state, whatever fails:
#  - relay ports never shadow a local service of another protocol;
#  - a second socksgated (same config) exits touching nothing: the first
#    one's flows, rules and control socket stay;
#  - without CAP_NET_ADMIN the daemon says so, answers TRANSPARENT with
#    X'07' and keeps serving CONNECT;
#  - a storm of requests against a kernel set that refuses elements
#    (kernel-set-size) leaves `socksgate stats` reporting the kernel's
#    elements equal to the record, during and after;
#  - a reload applies a changed `snat ADDRESS`, and keeps -d;
#  - `socksgate list` names a UDP ASSOCIATE session's state.
. "$(dirname "$0")/lib.sh"
sg_topology
ip -n "$NS_G" addr add 198.18.1.3/24 dev g1
ip -n "$NS_G" addr add 198.18.1.4/24 dev g1
sg_config "rule allow from 198.18.0.0/24" "relay-ports 30000-30099" \
	"kernel-set-size 12" "close-on-target-fin no" "close-on-flow-end no" \
	"snat 198.18.1.3" "log-level info"
# Started by hand: -d, to check that a reload keeps it.
SG_LOG=$SG_TMP/daemon.log
ip netns exec "$NS_G" "$SG_DAEMON" -f -d -c "$SG_TMP/socksgated.conf" >>"$SG_LOG" 2>&1 &
SG_PIDS+=($!)
DAEMON_PID=$!
wait_listen "$NS_G" 1080
ctl() { ing "$SG_CLIENT" "$@" --control "$SG_TMP/control.sock"; }
jq_() { $PY -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# A raw SOCKS5 request in hex, from netns-tests/tools/s5raw.py helpers.
req_hex() {
	$PY -c "import sys; sys.path.insert(0, '$SG_ROOT/netns-tests/tools')
from s5raw import addr, transparent_request
print(($1).hex())"
}

# --- relay ports and local services -----------------------------------
# A TCP service on G4:30000 and a UDP service on every address :30001:
# the first free port of the range for both protocols is 30002.
cat >"$SG_TMP/svc.py" <<'PY'
import socket, sys, threading
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind((sys.argv[1], 30000)); t.listen(8)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 30001))
def udp():
    while True:
        d, a = u.recvfrom(2048); u.sendto(b"svc:" + d, a)
threading.Thread(target=udp, daemon=True).start()
while True:
    c, _ = t.accept(); c.sendall(b"svc-tcp\n"); c.close()
PY
bg ip netns exec "$NS_G" $PY "$SG_TMP/svc.py" $G4
wait_listen "$NS_G" 30000
wait_listen "$NS_G" 30001 u
bg ip netns exec "$NS_T" $PEER tcp-echo 7000
bg ip netns exec "$NS_T" $PEER udp-echo 7000
wait_listen "$NS_T" 7000
wait_listen "$NS_T" 7000 u
tp_open udp $C4:46600 $T4:7000 || fail "UDP association refused"
UDP_PID=$TP_PID UDP_PORT=$BND_PORT
tp_open tcp $C4:46601 $T4:7000 || fail "TCP association refused"
TCP_PID=$TP_PID TCP_PORT=$BND_PORT TCP_BND=$BND_ADDR
case " $UDP_PORT $TCP_PORT " in
*" 30000 "* | *" 30001 "*) fail "relay ports $UDP_PORT (udp) $TCP_PORT (tcp) shadow the local services on 30000/tcp and 30001/udp" ;;
esac
inc $PY - "$G4" <<'PY' || fail "a local service became unreachable from the LAN"
import socket, sys
t = socket.create_connection((sys.argv[1], 30000), timeout=10)
assert t.recv(64) == b"svc-tcp\n"
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(10)
u.sendto(b"x", (sys.argv[1], 30001))
assert u.recvfrom(64)[0] == b"svc:x"
PY
inc $PEER udp-echo-check "$G4" "$UDP_PORT" --src $C4:46600 --count 3 >/dev/null || fail "UDP association does not relay"
pass "relay ports $UDP_PORT/udp and $TCP_PORT/tcp skip local TCP and UDP services; those stay reachable"

# --- a second instance -----------------------------------------------
# A long TCP flow through the association: its conntrack entry must keep
# its id (not be deleted and re-created) when a second daemon starts.
# (The count is replaced whole, never read half-written; an echo may take
# 30 s on a loaded machine before the flow counts as broken.)
cat >"$SG_TMP/flow.py" <<'PY'
import os, socket, sys, time
s = socket.socket(); s.bind((sys.argv[1], 46601))
s.connect((sys.argv[2], int(sys.argv[3]))); s.settimeout(30)
n = 0
while True:
    s.sendall(b"ping\n"); assert s.recv(64) == b"ping\n"
    n += 1
    open(sys.argv[4] + ".tmp", "w").write(str(n))
    os.replace(sys.argv[4] + ".tmp", sys.argv[4])
    time.sleep(0.1)
PY
bg ip netns exec "$NS_C" $PY "$SG_TMP/flow.py" $C4 "$TCP_BND" "$TCP_PORT" "$SG_TMP/flow.n"
FLOW_PID=$LAST_PID
wait_for 30 '[ -s "$SG_TMP/flow.n" ]' || fail "no echo through the TCP association"
ct_id() { ing conntrack -L -p tcp --sport 46601 -m 0x5a000000/0xff000000 -o id 2>/dev/null | grep -o 'id=[0-9]*' | head -1; }
ID1=$(ct_id)
[ -n "$ID1" ] || fail "no marked conntrack entry for the TCP flow"
timeout 60 ip netns exec "$NS_G" "$SG_DAEMON" -f -c "$SG_TMP/socksgated.conf" >"$SG_TMP/second.log" 2>&1
rc=$?
[ $rc -ne 0 ] || fail "a second socksgated kept running (exit 0)"
[ $rc -ne 124 ] || fail "a second socksgated did not exit"
grep -q "another socksgated owns table inet socksgate" "$SG_TMP/second.log" || fail "second instance said: $(cat "$SG_TMP/second.log")"
ID2=$(ct_id)
[ "$ID1" = "$ID2" ] || fail "the first daemon's flow entry changed ($ID1 -> ${ID2:-none}): the second instance touched conntrack"
n1=$(cat "$SG_TMP/flow.n")
wait_for 30 '[ "$(cat "$SG_TMP/flow.n")" -gt $((n1 + 2)) ]' || fail "the first daemon's flow stopped"
kill -0 "$FLOW_PID" || fail "the first daemon's flow broke"
ctl list | grep -q "transparent" || fail "the first daemon's control socket is gone"
[ "$(set_count assoc4)" = 2 ] || fail "assoc4 has $(set_count assoc4) elements, want 2"
pass "a second instance exits (rc $rc, 'another socksgated owns table'); flow, elements and control socket stay"
kill "$FLOW_PID"; wait "$FLOW_PID" 2>/dev/null

# --- no CAP_NET_ADMIN ------------------------------------------------
command -v setpriv >/dev/null || fail "setpriv (util-linux) missing"
sed -e "s/ 1080$/ 1090/" -e "s|control .*|control $SG_TMP/control2.sock|" "$SG_TMP/socksgated.conf" >"$SG_TMP/noadmin.conf"
bg ip netns exec "$NS_G" setpriv --bounding-set=-net_admin --inh-caps=-net_admin \
	"$SG_DAEMON" -f -c "$SG_TMP/noadmin.conf" >"$SG_TMP/noadmin.log" 2>&1
NOADMIN_PID=$LAST_PID
wait_listen "$NS_G" 1090
wait_for 10 'grep -q "CAP_NET_ADMIN" "$SG_TMP/noadmin.log"' || fail "no word of CAP_NET_ADMIN: $(cat "$SG_TMP/noadmin.log")"
grep -q "another socksgated" "$SG_TMP/noadmin.log" && fail "without CAP_NET_ADMIN it blames another instance"
rep=$(inc $PEER socks-raw $G4 1090 "$(req_hex "transparent_request(17, '$C4', 46700, '$T4', 7000)")" | tail -1)
[ "$rep" = 07 ] || fail "TRANSPARENT without CAP_NET_ADMIN answered $rep, want 07"
inc $PY - "$G4" <<'PY' || fail "CONNECT through the daemon without CAP_NET_ADMIN failed"
import socket, sys
s = socket.create_connection((sys.argv[1], 1090), timeout=15)
s.sendall(b"\x05\x01\x00"); assert s.recv(2) == b"\x05\x00"
s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("198.18.1.2") + (7000).to_bytes(2, "big"))
r = s.recv(10); assert r[1] == 0, r
s.sendall(b"hello\n"); assert s.recv(6) == b"hello\n"
PY
kill "$NOADMIN_PID"; wait "$NOADMIN_PID" 2>/dev/null
pass "without CAP_NET_ADMIN: the log says so, TRANSPARENT gets X'07', CONNECT works"

kill "$UDP_PID" "$TCP_PID"; wait "$UDP_PID" "$TCP_PID" 2>/dev/null

# --- a storm against a kernel set that refuses -------------------------
# kernel-set-size 12: the kernel refuses elements beyond 12 per set
# (ENFILE) in the middle of batches.  Whatever it refuses, the record
# must equal the kernel.
consistent() { # prints "live kernel_bound expected_bound consistent unconfirmed"
	ctl stats --json | jq_ "d['associations']['live'], d['kernel']['elements']['bound'], d['kernel']['expected']['bound'], d['kernel']['consistent'], d['kernel']['unconfirmed']"
}
wait_for 30 '[ "$(ctl stats --json | jq_ "d[\"associations\"][\"in_table\"]")" = 0 ]' ||
	fail "associations of the first part did not end"
inc $PY "$SG_ROOT/netns-tests/tools/tp_load.py" $G4 1080 --src $C4 --dst $T4:7000 \
	--proto 17 --count 40 --concurrency 40 --first-port 47000 --hold 120 \
	--release-file "$SG_TMP/release" --json >"$SG_TMP/storm.json" &
STORM=$!
SG_PIDS+=($STORM)
# While they are held: poll until every request has its answer (the
# kernel holds 12 or fewer), then compare.
settled() {
	read -r live kb eb ok unc < <(consistent | tr '\n' ' ')
	[ "$live" -ge 1 ] && [ "$unc" = 0 ] &&
		[ "$(ctl stats --json | jq_ "d['associations']['pending']")" = 0 ]
}
wait_for 60 settled || fail "the storm's associations never settled: $(ctl stats)"
log "during the storm: live $live, kernel bound $kb, record bound $eb, consistent $ok"
[ "$ok" = True ] || fail "kernel elements differ from the record during the storm: $(ctl stats)"
[ "$live" -le 12 ] || fail "$live live associations with a kernel set of 12"
touch "$SG_TMP/release"
wait "$STORM" # exits 1: not every request succeeded, as intended
cat "$SG_TMP/storm.json"
ok_n=$($PY -c "import json; d=json.load(open('$SG_TMP/storm.json')); print(d['codes'].get('0', 0))")
fail_n=$($PY -c "import json; d=json.load(open('$SG_TMP/storm.json')); print(d['codes'].get('1', 0))")
[ $((ok_n + fail_n)) = 40 ] || fail "storm: $ok_n X'00' + $fail_n X'01' != 40 answers"
[ "$fail_n" -ge 28 ] || fail "storm: only $fail_n refusals with room for 12"
[ "$(ctl stats --json | jq_ "d['associations']['setup_failures']")" -ge "$fail_n" ] || fail "setup failures not counted"
# After the storm: everything ends, quarantines end; the kernel is empty.
wait_for 60 '[ "$(ctl stats --json | jq_ "d[\"associations\"][\"in_table\"]")" = 0 ]' ||
	fail "the storm's associations did not end: $(ctl stats)"
read -r live kb eb ok unc < <(consistent | tr '\n' ' ')
[ "$ok" = True ] && [ "$kb" = 0 ] || fail "after the storm: kernel bound $kb, record $eb, consistent $ok: $(ctl stats)"
[ "$(relay_elements)" = 0 ] || fail "relay elements left after the storm"
tp_open udp $C4:46650 $T4:7000 || fail "no association possible after the storm"
kill "$TP_PID"; wait "$TP_PID" 2>/dev/null
pass "storm of 40 against a set of 12: $ok_n X'00', $fail_n X'01'; kernel elements == record during and after"

# --- reload: snat address, -d ---------------------------------------------
sed -i 's/^snat 198.18.1.3$/snat 198.18.1.4/' "$SG_TMP/socksgated.conf"
sg_reload
nft_table | sed -n '/chain post/,/}/p' | grep -q "198.18.1.4" || fail "reload did not apply snat 198.18.1.4: $(nft_table | sed -n '/chain post/,/}/p')"
: >"$SG_TMP/t.log"
inc $PEER socks-raw $G4 1080 "$(req_hex "b'\\x05\\x01\\x00' + addr('$T4', 7999)")" >/dev/null
wait_log "connect to 198.18.1.2:7999" 30 || fail "-d was lost on reload (no debug line after it)"
pass "reload applies a changed snat address and keeps -d"

# --- list: a UDP ASSOCIATE session ---------------------------------------
bg ip netns exec "$NS_C" $PEER socks-raw $G4 1080 05030001000000000000 --hold 60 >/dev/null
RAW=$LAST_PID
wait_for 30 'ctl list | grep -q " udp "' || fail "no UDP ASSOCIATE session listed: $(ctl list)"
line=$(ctl list | awk '$2 == "udp"')
echo "$line" | awk '{print $5}' | grep -qx udp || fail "UDP ASSOCIATE session listed as: $line"
kill "$RAW"; wait "$RAW" 2>/dev/null
pass "socksgate list shows a UDP ASSOCIATE session as udp"
grep -q "ERROR: AddressSanitizer\|runtime error" "$SG_LOG" && fail "sanitizer report in the daemon log"
true
