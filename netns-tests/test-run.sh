#!/bin/bash
# `socksgate run -- PROGRAM`: unmodified programs' TCP and UDP flows get
# TRANSPARENT associations and are relayed by the gateway's kernel.
#  - curl over HTTP (TCP): bytes arrive; the association's conntrack
#    counters carried them (not a user-space relay);
#  - iperf3 (control + data connections);
#  - ncat -u (connected UDP), a Python program with unconnected sendto()
#    to two destinations that checks the source of each answer;
#  - dig to a DNS server in the target namespace;
#  - ssh (OpenSSH client) to an SSH server (dropbear) in the target;
#  - a denied destination: connect() fails with EACCES, nothing reaches it.
. "$(dirname "$0")/lib.sh"
sg_topology
ip -n "$NS_T" addr add 198.18.1.5/24 dev t0 # the denied host
sg_config "rule deny to 198.18.1.5" "rule allow from 198.18.0.0/24" \
	"close-on-target-fin no" "close-on-flow-end no"
sg_daemon
RUN=("$SG_CLIENT" run --proxy "$G4" --verbose --)
ctl() { ing "$SG_CLIENT" "$@" --control "$SG_TMP/control.sock"; }
# Bytes the kernel counted for the associations to DST port $1: the
# daemon reads each flow's conntrack counters when it ends it ("assoc N
# end: ... up B bytes P packets down B bytes P packets").
kernel_bytes() {
	grep "assoc .* end: .* -> [^ ]*:$1 reason" "$SG_LOG" |
		awk '{for (i = 1; i < NF; i++) if ($i == "up" || $i == "down") s += $(i + 1)} END {printf "%.0f\n", s}'
}
for t in ncat dig dropbear dropbearkey dnsmasq ssh iperf3; do
	command -v $t >/dev/null || fail "$t missing (scripts/deps.sh installs it)"
done

# --- curl (TCP) ------------------------------------------------------------
head -c 300000 /dev/urandom >"$SG_TMP/blob"
(cd "$SG_TMP" && exec ip netns exec "$NS_T" $PY -m http.server 8080 --bind $T4) >/dev/null 2>&1 &
SG_PIDS+=($!)
wait_listen "$NS_T" 8080
inc "${RUN[@]}" curl -sS --max-time 20 -o "$SG_TMP/got" "http://$T4:8080/blob" 2>"$SG_TMP/curl.err" ||
	fail "curl under socksgate run failed: $(cat "$SG_TMP/curl.err")"
cmp -s "$SG_TMP/blob" "$SG_TMP/got" || fail "curl got different bytes"
grep -q "relayed by the kernel" "$SG_TMP/curl.err" || fail "no association was made: $(cat "$SG_TMP/curl.err")"
grep -q "assoc .* start: .* ptcl 6 " "$SG_LOG" || fail "the daemon made no TCP association"
pass "curl: 300000 bytes byte-exact through a TCP association"

# --- iperf3 (control + data connections) -----------------------------------
bg ip netns exec "$NS_T" iperf3 -s -B $T4 -p 5201
wait_listen "$NS_T" 5201
inc "${RUN[@]}" iperf3 -c $T4 -p 5201 -t 2 -J >"$SG_TMP/iperf.json" 2>"$SG_TMP/iperf.err" ||
	fail "iperf3 under socksgate run failed: $(tail -3 "$SG_TMP/iperf.err")"
sent=$($PY -c "import json; d=json.load(open('$SG_TMP/iperf.json')); print(int(d['end']['sum_received']['bytes']))")
[ "$sent" -gt 1000000 ] || fail "iperf3 moved only $sent bytes"
n=$(grep -c "tcp .* relayed by the kernel" "$SG_TMP/iperf.err")
[ "$n" -ge 2 ] || fail "iperf3: $n TCP associations, want control + data (>= 2)"
pass "iperf3: $sent bytes, $n TCP associations (control and data)"

# --- UDP: ncat -u (connected) and unconnected sendto to two targets ---------
bg ip netns exec "$NS_T" $PEER udp-echo 7000
bg ip netns exec "$NS_T" $PEER udp-echo 7001
wait_listen "$NS_T" 7000 u
wait_listen "$NS_T" 7001 u
# ncat -u quits at its stdin's end, maybe before the echo: its stdin (a
# FIFO) stays open until the echo is there (or 30 s passed).
mkfifo "$SG_TMP/ncat.in"
ip netns exec "$NS_C" timeout 60 "${RUN[@]}" ncat -u $T4 7000 <"$SG_TMP/ncat.in" \
	>"$SG_TMP/ncat.out" 2>"$SG_TMP/ncat.err" &
NCAT=$!
SG_PIDS+=($NCAT)
exec {NCAT_IN}>"$SG_TMP/ncat.in"
echo hello-ncat >&$NCAT_IN
wait_for 30 'grep -q . "$SG_TMP/ncat.out"'
exec {NCAT_IN}>&-
wait_exit $NCAT 30 || fail "ncat -u did not end with its input"
out=$(head -1 "$SG_TMP/ncat.out")
[ "$out" = hello-ncat ] || fail "ncat -u echo: got '$out' ($(cat "$SG_TMP/ncat.err"))"
pass "ncat -u: echo through a UDP association"
cat >"$SG_TMP/udp2.py" <<'PY'
import socket, sys
t = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(15)
for port in (7000, 7001, 7000):
    s.sendto(b"to-%d" % port, (t, port))
    data, src = s.recvfrom(100)
    assert data == b"to-%d" % port, data
    assert src == (t, port), "answer from %r, want %r" % (src, (t, port))
print("ok")
PY
out=$(inc "${RUN[@]}" $PY "$SG_TMP/udp2.py" $T4 2>"$SG_TMP/udp2.err")
[ "$out" = ok ] || fail "unconnected sendto: $(cat "$SG_TMP/udp2.err")"
n=$(grep -c "udp .* relayed by the kernel" "$SG_TMP/udp2.err")
[ "$n" = 2 ] || fail "unconnected sendto made $n associations, want 2 (one per destination)"
pass "unconnected sendto to two destinations: answers reported from their real sources, 2 associations"

# --- dig to a DNS server in the target -------------------------------------
bg ip netns exec "$NS_T" dnsmasq -k -p 5353 --listen-address=$T4 --bind-interfaces \
	--no-resolv --no-hosts --address=/relay.test/198.18.1.77 --pid-file="$SG_TMP/dnsmasq.pid"
wait_listen "$NS_T" 5353 u
ans=$(inc "${RUN[@]}" dig +short +time=10 +tries=1 -p 5353 @$T4 relay.test A 2>"$SG_TMP/dig.err")
[ "$ans" = 198.18.1.77 ] || fail "dig answered '$ans' ($(cat "$SG_TMP/dig.err"))"
grep -q "udp .* relayed by the kernel" "$SG_TMP/dig.err" || fail "dig's query was not relayed"
pass "dig: answer 198.18.1.77 through a UDP association"

# --- ssh to dropbear in the target -----------------------------------------
dropbearkey -t ed25519 -f "$SG_TMP/hostkey" >/dev/null 2>&1
ssh-keygen -q -t ed25519 -N '' -f "$SG_TMP/id" >/dev/null
mkdir -p "$SG_TMP/home/.ssh"
cp "$SG_TMP/id.pub" "$SG_TMP/home/.ssh/authorized_keys"
chmod 700 "$SG_TMP/home" "$SG_TMP/home/.ssh"
chmod 600 "$SG_TMP/home/.ssh/authorized_keys"
# dropbear reads root's keys from /root: give it ours in a private mount
# namespace (the host's /root is not touched).
bg ip netns exec "$NS_T" unshare -m --propagation private sh -c \
	"mount --bind '$SG_TMP/home' /root && exec dropbear -F -E -s -r '$SG_TMP/hostkey' -p $T4:2222 -P '$SG_TMP/db.pid'"
wait_listen "$NS_T" 2222
out=$(inc "${RUN[@]}" ssh -p 2222 -i "$SG_TMP/id" -o StrictHostKeyChecking=no \
	-o UserKnownHostsFile=/dev/null -o BatchMode=yes -o ConnectTimeout=10 root@$T4 echo ssh-ok 2>"$SG_TMP/ssh.err")
[ "$out" = ssh-ok ] || fail "ssh through socksgate run: '$out' ($(tail -3 "$SG_TMP/ssh.err"))"
pass "ssh: a command ran on the target through a TCP association"

# --- the kernel carried it --------------------------------------------------
# The associations ended with their programs; their conntrack counters
# (read at the end) must account for the bytes: the kernel relayed them.
# (Every association started by now has ended, or will: the programs
# have exited.)
wait_for 30 '[ "$(log_count "assoc [0-9]* end:")" -ge "$(log_count "assoc [0-9]* start:")" ]' ||
	fail "associations did not end with their programs: $(log_count "assoc [0-9]* start:") started, $(log_count "assoc [0-9]* end:") ended"
[ "$(log_count "assoc [0-9]* end:")" -ge 8 ] || fail "only $(log_count "assoc [0-9]* end:") associations"
b=$(kernel_bytes 8080)
[ "$b" -gt 300000 ] || fail "conntrack counted $b bytes for curl's flow, want > 300000"
b2=$(kernel_bytes 5201)
[ "$b2" -ge "$sent" ] || fail "conntrack counted $b2 bytes for iperf3's flows, iperf3 received $sent"
pass "conntrack counted the bytes of the relayed flows (curl $b, iperf3 $b2): the kernel relayed them"

# --- a denied destination ---------------------------------------------------
ip netns exec "$NS_T" nft -f - <<'NFT' || fail "cannot add the counting rule"
table inet count {
	counter seen {
	}
	chain in {
		type filter hook input priority 0; policy accept;
		ip daddr 198.18.1.5 counter name "seen"
	}
}
NFT
cat >"$SG_TMP/deny.py" <<'PY'
import errno, socket
s = socket.socket()
s.settimeout(5)
try:
    s.connect(("198.18.1.5", 80))
    print("connected")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
PY
out=$(inc "${RUN[@]}" $PY "$SG_TMP/deny.py" 2>"$SG_TMP/deny.err")
[ "$out" = EACCES ] || fail "connect to a denied destination: $out, want EACCES ($(cat "$SG_TMP/deny.err"))"
n=$(ip netns exec "$NS_T" nft list counter inet count seen | grep -o 'packets [0-9]*' | awk '{print $2}')
[ "$n" = 0 ] || fail "$n packets reached the denied host"
pass "denied destination: connect() fails with EACCES and no packet reaches it"
grep -q "ERROR: AddressSanitizer\|runtime error" "$SG_LOG" && fail "sanitizer report in the daemon log"
true
