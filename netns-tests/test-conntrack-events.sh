#!/bin/bash
# Conntrack tracking (issue 4): the target closing a TCP flow ends the
# association (N1 closed by the server within 1 s, nothing left in nft or
# conntrack); with close-on-target-fin no it stays; a UDP flow whose
# conntrack entry times out ends its association when configured so;
# `socksgate list --json` shows the bytes of a known transfer and
# `socksgate close ID` ends one; an event overrun (tiny receive buffer)
# is counted and resynchronised, and every association still ends right.
. "$(dirname "$0")/lib.sh"
sg_topology
ctl() { ing "$SG_CLIENT" "$@" --control "$SG_TMP/control.sock"; }
jq_() { $PY -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
sg_config "rule allow from 198.18.0.0/24" "rule allow from 2001:db8::/64" \
	"close-on-flow-end yes udp" "conntrack-rcvbuf 4096" "max-clients 2000" \
	"max-sessions-per-source 0" "max-associations-per-source 0"
# UDP entries expire fast in this gateway, so flow ends come quickly.
ing sysctl -qw net.netfilter.nf_conntrack_udp_timeout=2 net.netfilter.nf_conntrack_udp_timeout_stream=2
sg_daemon
bg ip netns exec "$NS_T" $PEER tcp-closer 7001 --log "$SG_TMP/closes.log"
bg ip netns exec "$NS_T" $PEER tcp-echo 7000
bg ip netns exec "$NS_T" $PEER udp-echo 7000
wait_listen "$NS_T" 7001
wait_listen "$NS_T" 7000 u

# --- target FIN -------------------------------------------------------
# Measured from the target's close to the daemon's "session N end" line
# (it closes N1 right after writing it), not to when the client process
# was seen to exit: that would add how fast this machine runs helpers.
sess_of() { # "address:port" of S -> id of the latest session relaying it
	grep -F "$1 -> " "$SG_LOG" | grep -o "assoc [0-9]* start: session [0-9]*" | tail -1 | awk '{print $5}'
}
for fam in 4 6; do
	if [ $fam = 4 ]; then C=$C4 T=$T4; else C=$C6 T=$T6; fi
	tp_open tcp "$(hp $C 46000)" "$(hp $T 7001)" || fail "IPv$fam: refused"
	: >"$SG_TMP/closes.log"
	inc $PEER tcp-echo-check "$BND_ADDR" "$BND_PORT" --src "$(hp $C 46000)" --bytes 100 >/dev/null
	wait_exit "$TP_PID" 20 || fail "IPv$fam: the association did not end within 20 s of the target's FIN"
	[ $EXIT_RC = 3 ] || fail "IPv$fam: socksgate exit $EXIT_RC, want 3 (the server closed N1)"
	sid=$(sess_of "$(hp $C 46000)")
	wait_log "session $sid end: .*reason target-fin" || fail "IPv$fam: no target-fin end in the log for session $sid"
	t_end=$(log_us "session $sid end: ")
	t_close=$(s_us "$(cut -d' ' -f1 "$SG_TMP/closes.log" | head -1)")
	dt=$(us_s $((t_end - t_close)))
	[ $((t_end - t_close)) -lt 1000000 ] || fail "IPv$fam: N1 closed $dt s after the target's FIN"
	wait_for 10 '[ "$(relay_elements)" = 0 ]' || fail "IPv$fam: relay elements left"
	[ "$(ct_ours)" = 0 ] || fail "IPv$fam: conntrack entries with our mark left"
	pass "IPv$fam: target FIN -> N1 closed within $dt s, no element or entry left"
done

# --- list and close, byte counts -------------------------------------
# With UDP entries expiring after 2 s, the flow-end (close-on-flow-end)
# would race the listing and the close below, however long the helpers
# take: these entries live 30 s.
ing sysctl -qw net.netfilter.nf_conntrack_udp_timeout=30 net.netfilter.nf_conntrack_udp_timeout_stream=30
tp_open udp $C4:46100 $T4:7000 || fail "udp refused"
inc $PEER udp-echo-check "$BND_ADDR" "$BND_PORT" --src $C4:46100 --count 50 --size 1000 >/dev/null ||
	fail "udp echo"
out=$(ctl list --json) || fail "list: $out"
id=$(echo "$out" | jq_ "[s['association']['id'] for s in d['sessions'] if 'association' in s][0]")
read -r pu bu pd bd < <(echo "$out" | jq_ "' '.join(str(a[k]) for s in d['sessions'] if 'association' in s for a in [s['association']] for k in ('packets_up','bytes_up','packets_down','bytes_down'))")
[ "$pu" = 50 ] && [ "$pd" = 50 ] || fail "packets up/down $pu/$pd, want 50/50"
# 50 x 1000 payload bytes + 28 bytes of IPv4+UDP header each.
[ "$bu" -ge 50000 ] && [ "$bu" -le $((50 * 1028)) ] || fail "bytes up $bu not in 50000..51400"
[ "$bd" -ge 50000 ] && [ "$bd" -le $((50 * 1028)) ] || fail "bytes down $bd not in 50000..51400"
pass "socksgate list --json: assoc $id up $pu pkts/$bu B, down $pd pkts/$bd B for 50 x 1000 B each way"
ctl list | grep -q "ptcl 17 198.18.0.2:46100" || fail "text list lacks the association"
ctl close "$id" >/dev/null || fail "close $id failed"
wait_exit "$TP_PID" 20 || fail "socksgate still runs 20 s after close $id"
[ $EXIT_RC = 3 ] || fail "socksgate did not see N1 closed after close $id"
wait_log "assoc $id end: .*reason operator" || fail "no operator end for assoc $id"
ctl close 999999 >/dev/null 2>&1 && fail "close of an unknown id succeeded"
pass "socksgate close ID ends the association (reason operator); unknown ids are refused"
ing sysctl -qw net.netfilter.nf_conntrack_udp_timeout=2 net.netfilter.nf_conntrack_udp_timeout_stream=2

# --- UDP flow end -----------------------------------------------------
tp_open udp $C4:46200 $T4:7000 || fail "udp refused"
inc $PEER udp-echo-check "$BND_ADDR" "$BND_PORT" --src $C4:46200 --count 2 >/dev/null || fail "udp echo"
t0=$(now_us)
wait_exit "$TP_PID" 30 || fail "UDP association still there 30 s after its flow's last datagram"
dt=$(us_s $((EXIT_US - t0)))
[ $EXIT_RC = 3 ] || fail "UDP association did not end when its flow timed out (rc $EXIT_RC)"
wait_log "reason flow-end" || fail "no flow-end reason logged"
pass "UDP flow timed out in conntrack -> association ended after ${dt}s (close-on-flow-end yes udp)"

# --- close-on-target-fin no -------------------------------------------
sed -i 's/^close-on-flow-end yes udp$/close-on-target-fin no\nclose-on-flow-end no/' "$SG_TMP/socksgated.conf"
sg_reload
tp_open tcp $C4:46300 $T4:7001 || fail "refused"
inc $PEER tcp-echo-check "$BND_ADDR" "$BND_PORT" --src $C4:46300 --bytes 100 >/dev/null
# Not a fixed wait: once the kernel has the flow in TIME_WAIT (both FINs,
# the target's first), a control round trip means the daemon has read
# the FIN's events; an end would be logged by then.
sid=$(sess_of "$C4:46300")
wait_for 10 'ing conntrack -L -p tcp -s $C4 --sport 46300 2>/dev/null | grep -q TIME_WAIT ||
	grep -q "session $sid end: " "$SG_LOG"' ||
	fail "the target's FIN did not close the flow: $(ing conntrack -L -p tcp -s $C4 --sport 46300 2>&1)"
ctl stats >/dev/null || fail "stats"
grep -q "session $sid end: " "$SG_LOG" && fail "association ended although close-on-target-fin no"
[ "$(relay_elements)" = 3 ] || fail "relay elements missing: $(relay_elements)"
kill -0 "$TP_PID" 2>/dev/null || fail "socksgate exited although close-on-target-fin no"
kill "$TP_PID"
wait "$TP_PID" 2>/dev/null
pass "close-on-target-fin no: the association outlives the target's FIN"

# --- event overrun ------------------------------------------------------
sed -i 's/^close-on-target-fin no$/close-on-target-fin yes/; s/^close-on-flow-end no$/close-on-flow-end yes udp/' "$SG_TMP/socksgated.conf"
sg_reload
N=300
# Held until killed below (the hold only bounds it): the flows must end
# by timing out, never because the load tool let go first.
bg ip netns exec "$NS_C" $PY "$SG_ROOT/netns-tests/tools/tp_load.py" $G4 1080 --src $C4 \
	--dst $T4:7000 --proto 17 --count $N --concurrency 50 --first-port 47000 --hold 600
LOAD=$LAST_PID
wait_for 60 '[ "$(set_count assoc4)" -ge $N ]' || fail "only $(set_count assoc4) of $N associations up"
# One datagram through each, all at once: a burst of NEW events.
ports=$(ing nft -j list set inet socksgate assoc4 | $PY -c "
import json,sys
d=json.load(sys.stdin)['nftables']
for o in d:
    for e in o.get('set',{}).get('elem',[]):
        c=e['elem']['val']['concat'] if isinstance(e,dict) and 'elem' in e else e['concat']
        print(c[2], c[4])")
echo "$ports" >"$SG_TMP/ports"
inc $PY - "$SG_TMP/ports" <<PY
import socket, sys
pairs = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
socks = []
for sport, bport in pairs:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("$C4", sport))
    socks.append((s, bport))
for s, bport in socks:
    s.sendto(b"x" * 200, ("$G4", bport))
PY
# Every flow times out ~2 s later, all together: a burst of DESTROY
# events that the 4 KiB buffer cannot hold.
wait_for 60 '[ "$(set_count assoc4)" = 0 ]'
left=$(set_count assoc4)
stats=$(ctl stats --json)
over=$(echo "$stats" | jq_ "d['conntrack']['overruns']")
ended=$(echo "$stats" | jq_ "d['associations']['ended']['flow-end']")
kill "$LOAD" 2>/dev/null
[ "$over" -gt 0 ] || fail "no event overrun was provoked (overruns $over)"
[ "$left" = 0 ] || fail "$left associations missed their flow's end after the overrun"
[ "$ended" -ge $N ] || fail "flow-end count $ended < $N"
pass "event overrun: $over overruns counted, resynchronised, all $N associations ended (flow-end $ended)"
grep -q "ERROR: AddressSanitizer\|runtime error" "$SG_LOG" && fail "sanitizer report"
true
