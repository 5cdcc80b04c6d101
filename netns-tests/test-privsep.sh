#!/bin/bash
# Privilege separation (docs/privsep.md): the process that parses the
# network holds no privilege.
#  - /proc/PID/status of the three processes: the supervisor (root, only
#    the capabilities it needs to start the others), the kernel agent
#    (`user daemon`, CAP_NET_ADMIN alone, not dumpable) and the session
#    process (`session-user nobody`, no capability at all, every thread);
#  - TRANSPARENT, CONNECT and the control socket work through them; a
#    reload of files only root can read works (the supervisor opens them);
#  - SIGKILL of the session process while associations live: the agent
#    ends them all (no element, no marked conntrack entry) within 1 s, and
#    a new session process serves new associations;
#  - SIGKILL of the agent: the table is gone, the session process and the
#    supervisor exit, no marked conntrack entry is left;
#  - the agent alone (socksgated -a), driven by a harness that forges
#    messages: out-of-range BND port, loopback destination, PTCL not
#    enabled, foreign BND address, a foreign id (mark), more associations
#    than allowed, malformed messages; each refused, nothing reaches the
#    kernel but what is allowed.
. "$(dirname "$0")/lib.sh"
sg_topology
getent passwd nobody >/dev/null || skip "no user nobody"
getent passwd daemon >/dev/null || skip "no user daemon"
nobody_uid=$(id -u nobody)
daemon_uid=$(id -u daemon)
CTL=$SG_TMP/run/control.sock
sg_config "rule allow from 198.18.0.0/24" "rule allow from 2001:db8::/64" \
	"user daemon" "session-user nobody" "control $CTL" "close-on-target-fin no" \
	"close-on-flow-end no"
# Only root may read it: the supervisor opens it for both children.
chmod 0600 "$SG_TMP/socksgated.conf"
sg_daemon
wait_log "session process: serving as nobody" 30 || fail "no session process logged"
AGENT=$(sg_agent_pid)
SESS=$(sg_session_pid)
[ -n "$AGENT" ] && [ -n "$SESS" ] || fail "agent '$AGENT' / session '$SESS' pids not logged"

field() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" | tr -s '\t ' '  ' | sed 's/ $//'; }
# The supervisor: root, NET_ADMIN SETUID SETGID SETPCAP KILL CHOWN
# NET_BIND_SERVICE DAC_READ_SEARCH BPF PERFMON (bits 12 7 6 8 5 0 10 2
# 39 38).
[ "$(field $DAEMON_PID Uid)" = "0 0 0 0" ] || fail "supervisor Uid: $(field $DAEMON_PID Uid)"
# (those of them this shell has: a container may lack some)
sup_bnd=$(printf '%016x' $((0xc0000015e5 & 0x$(awk '/^CapBnd/ {print $2}' /proc/self/status))))
[ "$(field $DAEMON_PID CapBnd)" = "$sup_bnd" ] || fail "supervisor CapBnd $(field $DAEMON_PID CapBnd), want $sup_bnd"
[ "$(field $DAEMON_PID NoNewPrivs)" = 1 ] || fail "supervisor NoNewPrivs"
# The kernel agent.
[ "$(field $AGENT Uid)" = "$daemon_uid $daemon_uid $daemon_uid $daemon_uid" ] || fail "agent Uid: $(field $AGENT Uid)"
for f in CapEff CapPrm CapBnd; do
	[ "$(field $AGENT $f)" = 0000000000001000 ] || fail "agent $f $(field $AGENT $f), want CAP_NET_ADMIN only"
done
for f in CapInh CapAmb; do
	[ "$(field $AGENT $f)" = 0000000000000000 ] || fail "agent $f $(field $AGENT $f)"
done
[ "$(field $AGENT NoNewPrivs)" = 1 ] || fail "agent NoNewPrivs"
[ "$(stat -c %u /proc/$AGENT/environ)" = 0 ] || fail "agent is dumpable (/proc/$AGENT/environ owned by $(stat -c %U /proc/$AGENT/environ))"
# The session process and each of its threads.
[ "$(field $SESS Uid)" = "$nobody_uid $nobody_uid $nobody_uid $nobody_uid" ] || fail "session Uid: $(field $SESS Uid)"
for t in /proc/$SESS/task/*; do
	tid=$(basename "$t")
	[ "$(field $SESS/task/$tid Uid)" = "$nobody_uid $nobody_uid $nobody_uid $nobody_uid" ] || fail "session thread $tid Uid"
	for f in CapEff CapPrm CapBnd CapInh CapAmb; do
		[ "$(field $SESS/task/$tid $f)" = 0000000000000000 ] || fail "session thread $tid $f $(field $SESS/task/$tid $f)"
	done
	[ "$(field $SESS/task/$tid NoNewPrivs)" = 1 ] || fail "session thread $tid NoNewPrivs"
done
[ "$(stat -c %u /proc/$SESS/environ)" = 0 ] || fail "session process is dumpable"
pass "supervisor root (CapBnd $sup_bnd), agent uid $daemon_uid CAP_NET_ADMIN only, session process nobody with no capability ($(ls /proc/$SESS/task | wc -l) threads)"

bg ip netns exec "$NS_T" $PEER tcp-echo 7000
bg ip netns exec "$NS_T" $PEER udp-echo 7000
wait_listen "$NS_T" 7000
wait_listen "$NS_T" 7000 u
tp_open tcp "$(hp $C4 41000)" "$(hp $T4 7000)" || fail "TRANSPARENT tcp refused"
TCP_PID=$TP_PID
inc $PEER tcp-echo-check "$BND_ADDR" "$BND_PORT" --src "$(hp $C4 41000)" --bytes 200000 ||
	fail "TRANSPARENT tcp: data did not come back"
tp_open udp "$(hp $C6 41001)" "$(hp $T6 7000)" || fail "TRANSPARENT udp refused"
UDP_PID=$TP_PID
inc $PEER udp-echo-check "$BND_ADDR" "$BND_PORT" --src "$(hp $C6 41001)" --count 5 ||
	fail "TRANSPARENT udp: datagrams did not come back"
out=$(inc $PEER socks-raw "$G4" 1080 "05010001$(printf '%02x' ${T4//./ })1b58") || true
[ "$out" = 00 ] || fail "CONNECT: reply '$out'"
out=$(ing "$SG_CLIENT" stats --control "$CTL") || fail "socksgate stats: $out"
grep -q "kernel elements:.*consistent" <<<"$out" || fail "stats: $out"
out=$(ing "$SG_CLIENT" list --control "$CTL") || fail "socksgate list: $out"
[ "$(grep -c ' transparent ' <<<"$out")" = 2 ] || fail "list: $out"
[ "$(stat -c %U "$CTL")" = nobody ] || fail "control socket owned by $(stat -c %U "$CTL")"
pass "TRANSPARENT tcp/udp, CONNECT, socksgate stats (consistent) and list through the three processes"

# A reload of files only root can read: both children reload.
n=$(log_count "configuration reloaded")
sg_config "rule allow from 198.18.0.0/24" "rule allow from 2001:db8::/64" \
	"user daemon" "session-user nobody" "control $CTL" "close-on-target-fin no" \
	"close-on-flow-end no" "max-clients 77"
chmod 0600 "$SG_TMP/socksgated.conf"
kill -HUP "$DAEMON_PID"
wait_for 10 '[ "$(log_count "configuration reloaded")" -ge $((n + 2)) ]' ||
	fail "SIGHUP: not both reloaded: $(grep -i 'reload\|keeping' "$SG_LOG" | tail -4)"
grep -q "keeping the running configuration" "$SG_LOG" && fail "a reload was refused"
pass "SIGHUP with a configuration only root can read: the agent and the session process reloaded"
# A new listener on port 80: the session process cannot bind it any more;
# the whole new configuration is refused and the running one stays.
k=$(log_count "keeping the running configuration")
sg_config "rule allow from 198.18.0.0/24" "rule allow from 2001:db8::/64" \
	"user daemon" "session-user nobody" "control $CTL" "close-on-target-fin no" \
	"close-on-flow-end no" "listen $G4 80"
chmod 0600 "$SG_TMP/socksgated.conf"
kill -HUP "$DAEMON_PID"
wait_log "listen $G4:80: Permission denied" 10 || fail "no log line for the privileged port"
wait_for 10 '[ "$(log_count "keeping the running configuration")" -gt "$k" ]' || fail "no 'keeping' line"
ing ss -ltn | grep -q "$G4:80 " && fail "something listens on port 80"
wait_log "kept its configuration: so does the kernel agent" 10 || fail "the agent did not keep its configuration too"
pass "a new listener on port 80 after the drop: 'Permission denied', configuration kept by both"

# --- SIGKILL of the session process ----------------------------------
[ "$(relay_elements)" -gt 0 ] && [ "$(ct_ours)" -gt 0 ] || fail "nothing live before the kill"
t0=$(now_us)
kill -9 "$SESS"
wait_for 10 '[ "$(relay_elements)" = 0 ] && [ "$(ct_ours)" = 0 ]' ||
	fail "after SIGKILL of the session process: $(relay_elements) elements, $(ct_ours) entries left"
t1=$(log_us "reason session-process-lost") || fail "no association ended with reason session-process-lost"
[ "$(log_count "reason session-process-lost")" = 2 ] || fail "$(log_count "reason session-process-lost") associations ended, want 2"
[ $((t1 - t0)) -lt 1000000 ] || fail "the agent took $(us_s $((t1 - t0)))s to end them"
for p in $TCP_PID $UDP_PID; do
	wait "$p"
	[ $? = 3 ] || fail "a client did not see its N1 closed"
done
wait_for 30 '[ "$(sg_session_pid)" != "$SESS" ]' || fail "no new session process"
NEWSESS=$(sg_session_pid)
wait_log "session process: serving as nobody" 30
wait_for 30 '[ "$(grep -c "session process: serving as nobody" "$SG_LOG")" -ge 2 ]' || fail "the new session process did not start serving"
tp_open udp "$(hp $C4 41002)" "$(hp $T4 7000)" || fail "TRANSPARENT refused by the new session process"
inc $PEER udp-echo-check "$BND_ADDR" "$BND_PORT" --src "$(hp $C4 41002)" --count 5 ||
	fail "the new session process's association does not relay"
UDP_PID=$TP_PID
pass "SIGKILL of the session process: its 2 associations ended in $(us_s $((t1 - t0)))s (elements and conntrack entries gone), clients told; session process $NEWSESS serves"

# --- SIGKILL of the agent ---------------------------------------------
kill -9 "$AGENT"
wait_exit "$DAEMON_PID" 30 || fail "the supervisor did not exit after its agent was killed"
wait "$DAEMON_PID"
rc=$?
[ $rc -ne 0 ] || fail "the supervisor exited 0 after losing its agent"
kill -0 "$NEWSESS" 2>/dev/null && fail "the session process outlived the agent"
wait_for 10 '[ -z "$(nft_table)" ]' || fail "table inet socksgate left behind"
[ "$(ct_ours)" = 0 ] || fail "$(ct_ours) marked conntrack entries left"
wait "$UDP_PID"
grep -q "ERROR: AddressSanitizer\|runtime error\|LeakSanitizer" "$SG_LOG" && fail "sanitizer report"
pass "SIGKILL of the agent: table gone, session process and supervisor (rc $rc) gone, no marked entry left"

# --- the systemd unit's way -------------------------------------------
# etc/socksgated.service starts it as a system user with the supervisor's
# capabilities as ambient ones (setpriv plays systemd; `daemon` plays
# socksgate): no `user` directive, the agent stays that user.
mkdir -m 0700 "$SG_TMP/run2"
chown daemon: "$SG_TMP/run2"
CTL=$SG_TMP/run2/control.sock
sg_config "rule allow from 198.18.0.0/24" "control $CTL" "session-user nobody"
chown daemon "$SG_TMP/socksgated.conf"
chmod 0711 "$SG_TMP"
caps=net_admin,+setuid,+setgid,+setpcap,+kill,+chown
cat >"$SG_TMP/as-unit.sh" <<SH
#!/bin/sh
exec setpriv --reuid=$daemon_uid --regid=$(id -g daemon) --init-groups \
	--inh-caps=-all,+$caps --ambient-caps=-all,+$caps \
	--bounding-set=-all,+$caps --no-new-privs "$SG_DAEMON" "\$@"
SH
chmod 0755 "$SG_TMP/as-unit.sh"
: >"$SG_TMP/daemon.log"
SG_DAEMON=$SG_TMP/as-unit.sh sg_daemon
wait_log "session process: serving as nobody" 30 || fail "unit-like: no session process"
AGENT=$(sg_agent_pid)
SESS=$(sg_session_pid)
[ "$(field $DAEMON_PID Uid)" = "$daemon_uid $daemon_uid $daemon_uid $daemon_uid" ] || fail "unit-like: supervisor Uid $(field $DAEMON_PID Uid)"
[ "$(field $AGENT Uid)" = "$daemon_uid $daemon_uid $daemon_uid $daemon_uid" ] || fail "unit-like: agent Uid $(field $AGENT Uid)"
for f in CapEff CapPrm CapBnd; do
	[ "$(field $AGENT $f)" = 0000000000001000 ] || fail "unit-like: agent $f $(field $AGENT $f)"
done
[ "$(field $AGENT CapAmb)" = 0000000000000000 ] || fail "unit-like: agent CapAmb $(field $AGENT CapAmb)"
[ "$(field $SESS Uid)" = "$nobody_uid $nobody_uid $nobody_uid $nobody_uid" ] || fail "unit-like: session Uid"
for f in CapEff CapPrm CapBnd CapInh CapAmb; do
	[ "$(field $SESS $f)" = 0000000000000000 ] || fail "unit-like: session $f $(field $SESS $f)"
done
tp_open udp "$(hp $C4 41003)" "$(hp $T4 7000)" || fail "unit-like: TRANSPARENT refused"
inc $PEER udp-echo-check "$BND_ADDR" "$BND_PORT" --src "$(hp $C4 41003)" --count 5 ||
	fail "unit-like: datagrams did not come back"
out=$(ing "$SG_CLIENT" stats --control "$CTL") || fail "unit-like: stats: $out"
kill "$TP_PID"
wait "$TP_PID" 2>/dev/null
kill -TERM "$DAEMON_PID"
wait_exit "$DAEMON_PID" 30 || fail "unit-like: no exit within 30 s of SIGTERM"
grep -q "socksgated stopped" "$SG_LOG" || fail "unit-like: no clean stop"
wait_for 10 '[ -z "$(nft_table)" ]' || fail "unit-like: table left behind"
grep -q "ERROR: AddressSanitizer\|runtime error\|LeakSanitizer" "$SG_LOG" && fail "sanitizer report"
pass "the unit's way (user daemon, ambient capabilities): agent daemon with CAP_NET_ADMIN only, session nobody with none; TRANSPARENT, stats, clean stop"

# --- the agent against forged messages --------------------------------
sg_config "relay-ports 31000-31009" "max-associations 3" "close-on-target-fin no"
out=$(ing $PY "$SG_ROOT/netns-tests/tools/kagent.py" "$SG_DAEMON" "$SG_TMP/socksgated.conf" \
	"$SG_TMP/agent.log" "$G4" "$C4" "$T4" "$G4T" 2>"$SG_TMP/harness.err") ||
	fail "harness: $out $(cat "$SG_TMP/harness.err") $(tail -20 "$SG_TMP/agent.log")"
j() { $PY -c "import json,sys; d=json.loads(sys.argv[1]); print($2)" "$out"; }
[ "$(j "$out" "d['available']")" = 1 ] || fail "agent unavailable: $out"
[ "$(j "$out" "d['good']['rep']")" = 0 ] || fail "a good request refused: $out"
port=$(j "$out" "d['good']['port']")
[ "$port" -ge 31000 ] && [ "$port" -le 31009 ] || fail "BND port $port outside relay-ports"
[ "$(j "$out" "d['port22']['rep']")" = 2 ] || fail "BND port 22: $out"
[ "$(j "$out" "d['loopback']['rep']")" = 2 ] || fail "loopback DST: $out"
[ "$(j "$out" "d['gre']['rep']")" = 9 ] || fail "PTCL 47: $out"
[ "$(j "$out" "d['foreign_bnd']['rep']")" = 2 ] || fail "foreign BND: $out"
[ "$(j "$out" "d['loopback_bnd']['rep']")" = 2 ] || fail "loopback BND: $out"
[ "$(j "$out" "d['unlisted_bnd']['rep']")" = 2 ] || fail "BND not listened on: $out"
[ "$(j "$out" "d['listed_after_flood']")" = "$(j "$out" "d['live_tags']")" ] || fail "LIST flood: $out"
log "agent: descriptor passed along: $(j "$out" "d['fd_passing']"); 4,000 LISTs in one packet answered in $(j "$out" "d['list_flood_s']") s"
[ "$(j "$out" "d['foreign_id']")" = -1 ] || fail "foreign id: $out"
[ "$(j "$out" "d['flood']")" = "[0, 0, 1, 1]" ] || fail "max-associations 3: $out"
[ "$(j "$out" "d['kernel_assoc4']")" = 3 ] || fail "kernel holds $(j "$out" "d['kernel_assoc4']") associations, want 3"
[ "$(j "$out" "d['terminate_own']['rc']")" = 0 ] || fail "terminate own: $out"
[ "$(j "$out" "d['terminate_own']['events'][0]['why']")" = 4 ] || fail "terminate own: $out"
[ "$(j "$out" "d['listed_after_garbage']")" = "$(j "$out" "d['live_tags']")" ] || fail "garbage changed the table: $out"
[ "$(j "$out" "d['listed_after_close']")" = "$(j "$out" "d['live_tags'][1:]")" ] || fail "close: $out"
[ "$(j "$out" "d['exit']")" = 0 ] || fail "agent exit: $out"
refused=$(grep -c "refused .* from the session process" "$SG_TMP/agent.log")
# 6 opens the session should have refused (port, loopback DST, PTCL,
# foreign, loopback and unlisted BND), a foreign id, 12 malformed
# messages; the ones over max-associations are the table's to refuse.
[ "$refused" -ge 19 ] || fail "only $refused refusals logged: $(grep refused "$SG_TMP/agent.log")"
grep -q "forged log line" "$SG_TMP/agent.log" && fail "a forged user name reached the log"
grep -q "max-associations (3) reached" "$SG_TMP/agent.log" || fail "max-associations not logged"
wait_for 10 '[ -z "$(nft_table)" ]' || fail "table left after the harness closed the channel"
grep -q "ERROR: AddressSanitizer\|runtime error\|LeakSanitizer" "$SG_TMP/agent.log" && fail "sanitizer report (agent)"
pass "forged messages: BND port 22, loopback DST, PTCL 47, foreign/loopback/unlisted BND, foreign id, 4 of max 3, 12 malformed, a passed descriptor, 4,000 LISTs: all refused or cheap ($refused logged); the kernel held only the allowed"
