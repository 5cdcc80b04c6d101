#!/bin/bash
# `user nobody`: once listening, the daemon runs as uid 65534 with
# CAP_NET_ADMIN alone and no_new_privs (/proc/PID/status), and
# TRANSPARENT (nftables, conntrack), CONNECT and the control socket (used
# by root) still work.  SIGHUP still reloads a configuration nobody can
# read; a new listener on a port below 1024, or a configuration nobody
# cannot read, is refused with a log line and the running configuration
# stays.  At exit the control socket and the table are gone.  The same
# started the way the systemd unit starts it (non-root, ambient
# CAP_NET_ADMIN).
. "$(dirname "$0")/lib.sh"
sg_topology
getent passwd nobody >/dev/null || skip "no user nobody"
nobody_uid=$(id -u nobody)
nobody_gid=$(id -g nobody)
# nobody must reach the configuration (reload) and the control
# directory, which the daemon makes and hands over (it unlinks the
# socket at exit as nobody).
chmod 0711 "$SG_TMP"
CTL=$SG_TMP/run/control.sock
sg_config "rule allow from 198.18.0.0/24" "rule allow from 2001:db8::/64" \
	"user nobody" "control $CTL" "close-on-target-fin no"
chmod 0644 "$SG_TMP/socksgated.conf"
sg_daemon
# The drop comes after the listeners: wait for its line.
wait_log "running as user nobody (uid $nobody_uid" 30 || fail "no privilege drop logged"

st=/proc/$DAEMON_PID/status
field() { sed -n "s/^$1:[[:space:]]*//p" "$st" | tr -s '\t ' '  ' | sed 's/ $//'; }
[ "$(field Uid)" = "$nobody_uid $nobody_uid $nobody_uid $nobody_uid" ] ||
	fail "Uid: $(field Uid)"
[ "$(field Gid)" = "$nobody_gid $nobody_gid $nobody_gid $nobody_gid" ] ||
	fail "Gid: $(field Gid)"
[ "$(field Groups)" = "$nobody_gid" ] || fail "Groups: $(field Groups)"
# CAP_NET_ADMIN is bit 12.
[ "$(field CapEff)" = 0000000000001000 ] || fail "CapEff $(field CapEff), want CAP_NET_ADMIN only"
[ "$(field CapPrm)" = 0000000000001000 ] || fail "CapPrm $(field CapPrm)"
[ "$(field CapInh)" = 0000000000000000 ] || fail "CapInh $(field CapInh)"
[ "$(field CapBnd)" = 0000000000001000 ] || fail "CapBnd $(field CapBnd)"
[ "$(field CapAmb)" = 0000000000000000 ] || fail "CapAmb $(field CapAmb)"
[ "$(field NoNewPrivs)" = 1 ] || fail "NoNewPrivs $(field NoNewPrivs)"
# The crypt(3) thread followed the uid change and holds nothing.
for t in /proc/$DAEMON_PID/task/*; do
	awk '$1 == "Uid:" && $2 != '"$nobody_uid"' {exit 1}
	     $1 == "NoNewPrivs:" && $2 != 1 {exit 1}' "$t/status" ||
		fail "thread $(basename "$t") kept root or lacks no_new_privs"
done
pass "running as nobody: CapEff = CAP_NET_ADMIN only, no_new_privs, $(ls /proc/$DAEMON_PID/task | wc -l) threads all nobody"
[ "$(stat -c %U "$CTL")" = nobody ] && [ "$(stat -c %a "$CTL")" = 600 ] &&
	[ "$(stat -c '%U %a' "$SG_TMP/run")" = "nobody 700" ] ||
	fail "control socket/dir: $(stat -c '%U %a %n' "$CTL" "$SG_TMP/run")"

bg ip netns exec "$NS_T" $PEER tcp-echo 7000
bg ip netns exec "$NS_T" $PEER udp-echo 7000
wait_listen "$NS_T" 7000
wait_listen "$NS_T" 7000 u

# TRANSPARENT: the nftables elements and the conntrack work need
# CAP_NET_ADMIN, which is all the daemon has.
tp_open tcp "$(hp $C4 41000)" "$(hp $T4 7000)" || fail "TRANSPARENT tcp refused"
inc $PEER tcp-echo-check "$BND_ADDR" "$BND_PORT" --src "$(hp $C4 41000)" --bytes 200000 ||
	fail "TRANSPARENT tcp: data did not come back"
tcp_pid=$TP_PID
tp_open udp "$(hp $C6 41001)" "$(hp $T6 7000)" || fail "TRANSPARENT udp refused"
inc $PEER udp-echo-check "$BND_ADDR" "$BND_PORT" --src "$(hp $C6 41001)" --count 5 ||
	fail "TRANSPARENT udp: datagrams did not come back"
pass "TRANSPARENT tcp (IPv4) and udp (IPv6) relayed by the kernel"

# The control socket, as root (not the socket's owner).
out=$(ing "$SG_CLIENT" stats --control "$CTL") || fail "socksgate stats: $out"
grep -q "kernel elements:.*consistent" <<<"$out" || fail "stats: $out"
out=$(ing "$SG_CLIENT" list --control "$CTL") || fail "socksgate list: $out"
[ "$(grep -c ' transparent ' <<<"$out")" = 2 ] || fail "list: $out"
pass "socksgate stats and list as root on nobody's control socket"
kill "$tcp_pid" "$TP_PID"
wait "$tcp_pid" "$TP_PID" 2>/dev/null

# CONNECT.
out=$(inc $PEER socks-raw "$G4" 1080 "05010001$(printf '%02x' ${T4//./ })1b58") || true
[ "$out" = 00 ] || fail "CONNECT: reply '$out'"
pass "CONNECT answered X'00'"

reloaded() { # count of "configuration reloaded" lines
	grep -c "configuration reloaded" "$SG_LOG" || true
}
# SIGHUP, then waits (by deadline) until the daemon has reloaded or kept
# its configuration, and says whether the pattern is in the log now.
hup_and_wait() { # pattern
	sg_reload
	wait_log "$1" 10
}
# A configuration nobody can read: reloaded.
sg_config "rule allow from 198.18.0.0/24" "rule allow from 2001:db8::/64" \
	"user nobody" "control $CTL" "max-clients 77"
chmod 0644 "$SG_TMP/socksgated.conf"
hup_and_wait "configuration reloaded" || fail "SIGHUP after the drop did not reload"
pass "SIGHUP reloads a configuration nobody can read"

# A new listener on port 80: bind refused, old configuration kept.
sg_config "rule allow from 198.18.0.0/24" "user nobody" "control $CTL" "listen $G4 80"
chmod 0644 "$SG_TMP/socksgated.conf"
n=$(reloaded)
k=$(log_count "keeping the running configuration")
hup_and_wait "listen $G4:80: Permission denied" || fail "no log line for the privileged port"
[ "$(log_count "keeping the running configuration")" -gt "$k" ] || fail "no 'keeping' line"
[ "$(reloaded)" = "$n" ] || fail "reloaded although port 80 could not be bound"
ing ss -ltn | grep -q "$G4:80 " && fail "something listens on port 80"
pass "a new listener on port 80 is refused: 'listen $G4:80: Permission denied', configuration kept"

# A configuration only root can read.
chmod 0600 "$SG_TMP/socksgated.conf"
hup_and_wait "socksgated.conf: Permission denied; keeping" || fail "no log line for an unreadable configuration"
pass "an unreadable configuration is refused and the running one kept"

# Still serving after the refused reloads.
out=$(inc $PEER socks-raw "$G4" 1080 "05010001$(printf '%02x' ${T4//./ })1b58") || true
[ "$out" = 00 ] || fail "CONNECT after the reloads: reply '$out'"
out=$(ing "$SG_CLIENT" stats --control "$CTL") || fail "stats after the reloads: $out"

# Exit: nobody removes its socket; the kernel drops the table.
kill -TERM "$DAEMON_PID"
wait_exit "$DAEMON_PID" 30 || fail "daemon did not exit within 30 s of SIGTERM"
grep -q "socksgated stopped" "$SG_LOG" || fail "no clean stop"
[ -e "$CTL" ] && fail "control socket left behind"
wait_for 10 '[ -z "$(nft_table)" ]' || fail "table inet socksgate left behind"
grep -q "ERROR: AddressSanitizer\|runtime error\|LeakSanitizer" "$SG_LOG" && fail "sanitizer report"
pass "clean exit: control socket removed by nobody, table gone"

# The shipped unit's way (etc/socksgated.service): started as the user
# already, with CAP_NET_ADMIN as an ambient capability, no_new_privs, the
# runtime directory made for it, no `user` needed (setpriv plays systemd).
# The daemon, unprivileged, must still turn on conntrack accounting in
# its namespace: CAP_NET_ADMIN lets it write net.* sysctls.
ing sysctl -qw net.netfilter.nf_conntrack_acct=0
mkdir -m 0700 "$SG_TMP/run2"
chown nobody: "$SG_TMP/run2"
CTL=$SG_TMP/run2/control.sock
sg_config "rule allow from 198.18.0.0/24" "control $CTL" "user nobody"
chmod 0644 "$SG_TMP/socksgated.conf"
cat >"$SG_TMP/as-unit.sh" <<SH
#!/bin/sh
exec setpriv --reuid=$nobody_uid --regid=$nobody_gid --init-groups \
	--inh-caps=-all,+net_admin --ambient-caps=-all,+net_admin \
	--bounding-set=-all,+net_admin --no-new-privs "$SG_DAEMON" "\$@"
SH
chmod 0755 "$SG_TMP/as-unit.sh"
: >"$SG_TMP/daemon.log"
SG_DAEMON=$SG_TMP/as-unit.sh sg_daemon
st=/proc/$DAEMON_PID/status
[ "$(field Uid)" = "$nobody_uid $nobody_uid $nobody_uid $nobody_uid" ] || fail "unit-like: Uid: $(field Uid)"
[ "$(field CapEff)" = 0000000000001000 ] || fail "unit-like: CapEff $(field CapEff)"
[ "$(field NoNewPrivs)" = 1 ] || fail "unit-like: NoNewPrivs $(field NoNewPrivs)"
wait_log "running as user nobody already" 30 || fail "unit-like: 'user nobody' not recognised as the current user"
tp_open udp "$(hp $C4 41002)" "$(hp $T4 7000)" || fail "unit-like: TRANSPARENT refused"
inc $PEER udp-echo-check "$BND_ADDR" "$BND_PORT" --src "$(hp $C4 41002)" --count 5 ||
	fail "unit-like: datagrams did not come back"
wait_for 10 '[ "$(ing sysctl -n net.netfilter.nf_conntrack_acct)" = 1 ]' || fail "unit-like: accounting not turned on"
grep -q "nf_conntrack_acct" "$SG_LOG" && fail "unit-like: $(grep nf_conntrack_acct "$SG_LOG")"
out=$(ing "$SG_CLIENT" stats --control "$CTL") || fail "unit-like: stats: $out"
kill "$TP_PID"
wait "$TP_PID" 2>/dev/null
kill -TERM "$DAEMON_PID"
wait_exit "$DAEMON_PID" 30 || fail "unit-like: daemon did not exit within 30 s of SIGTERM"
grep -q "socksgated stopped" "$SG_LOG" || fail "unit-like: no clean stop"
[ -e "$CTL" ] && fail "unit-like: control socket left behind"
grep -q "ERROR: AddressSanitizer\|runtime error\|LeakSanitizer" "$SG_LOG" && fail "sanitizer report"
pass "started as nobody with ambient CAP_NET_ADMIN (the unit's way): TRANSPARENT, accounting sysctl, control socket"
