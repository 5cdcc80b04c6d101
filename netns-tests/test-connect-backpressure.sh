#!/bin/bash
# CONNECT back-pressure and half-close: a client that stops reading stops
# the reading from the target (what the target manages to write is bounded
# by socket buffers and one pipe, not by the daemon's memory); after the
# client's FIN the target can still send, and its data arrives.
. "$(dirname "$0")/lib.sh"
sg_topology
sg_config "rule allow from 198.18.0.0/24"
sg_daemon
# The target floods for 4 s after accepting, then writes what it sent;
# the client holds the connection (reading nothing) until released, so
# however slowly the helpers start, both numbers are read while it holds.
cat >"$SG_TMP/flood.py" <<PY
import socket, threading, time
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", 7003)); s.listen(1)
c, _ = s.accept()
sent = [0]
def flood():
    buf = b"x" * 65536
    try:
        while True:
            sent[0] += c.send(buf)
    except OSError:
        pass
threading.Thread(target=flood, daemon=True).start()
time.sleep(4)
open("$SG_TMP/sent.tmp", "w").write(str(sent[0]))
import os; os.rename("$SG_TMP/sent.tmp", "$SG_TMP/sent")
time.sleep(60)
PY
bg ip netns exec "$NS_T" $PY "$SG_TMP/flood.py"
wait_listen "$NS_T" 7003
rss0=$(awk '/VmRSS/ {print $2}' /proc/$(sg_session_pid)/status)
inc $PY - <<PY &
import os, socks, time
s = socks.socksocket()
s.set_proxy(socks.SOCKS5, "$G4", 1080)
s.connect(("$T4", 7003))
open("$SG_TMP/connected", "w").close()
end = time.time() + 120
while time.time() < end and not os.path.exists("$SG_TMP/release"):
    time.sleep(0.1)   # reads nothing
PY
CP=$!
SG_PIDS+=($CP)
wait_for 60 '[ -e "$SG_TMP/sent" ]' || fail "the target did not report what it sent"
sent=$(cat "$SG_TMP/sent")
rss1=$(awk '/VmRSS/ {print $2}' /proc/$(sg_session_pid)/status)
wait_for 30 '[ -e "$SG_TMP/connected" ]' && kill -0 $CP 2>/dev/null || fail "the client did not hold its connection"
touch "$SG_TMP/release"
wait_exit $CP 30 || fail "the client did not finish"
[ "$sent" -gt 0 ] || fail "the target could not send at all"
[ "$sent" -lt $((32 * 1024 * 1024)) ] || fail "the target wrote $sent bytes to a client that reads nothing"
[ $((rss1 - rss0)) -lt 4096 ] || fail "daemon RSS grew by $((rss1 - rss0)) KiB"
pass "a client that reads nothing holds the target to $((sent / 1024)) KiB (socket buffers + pipe); daemon RSS +$((rss1 - rss0)) KiB"

# Half-close: the client sends and shuts down its side; the echo still comes.
bg ip netns exec "$NS_T" $PEER tcp-echo 7000
wait_listen "$NS_T" 7000
out=$(inc $PY - <<PY
import socket, socks
s = socks.socksocket()
s.set_proxy(socks.SOCKS5, "$G4", 1080)
s.settimeout(5)
s.connect(("$T4", 7000))
s.sendall(b"half-close" * 1000)
s.shutdown(socket.SHUT_WR)
got = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    got += d
print(len(got))
PY
)
[ "$out" = 10000 ] || fail "half-close: got $out bytes back, want 10000"
pass "half-close: after the client's FIN the target's 10000 bytes still arrive, then EOF"
true
