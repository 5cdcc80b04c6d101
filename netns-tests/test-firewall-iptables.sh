#!/bin/bash
# socksgated on a host whose iptables FORWARD chain drops (iptables-nft):
#   - `iptables -P FORWARD DROP` (a Debian host, every Docker host):
#     relays time out; the daemon warns at start and in `socksgated -n`
#     with the iptables rule, and a relayed flow that gets dropped draws a
#     one-time hint; CONNECT from the WAN passes (INPUT accepts);
#   - with etc/firewall/iptables/socksgate-iptables.sh add: TRANSPARENT TCP
#     and UDP pass both ways, IPv4 and IPv6;
#   - Docker's chains (FORWARD -> DOCKER-USER, isolation stages): the
#     warning names DOCKER-USER, the script puts the rule there;
#   - a FORWARD chain that accepts new flows from the LAN but not their
#     replies: the warning says later packets are dropped, and a TCP
#     handshake whose SYN-ACK is dropped draws the hint;
#   - iptables-restore (a flush and reload of the filter tables) and
#     `nft flush ruleset` then iptables-restore keep every live relayed
#     flow going.
. "$(dirname "$0")/fwlib.sh"
command -v iptables >/dev/null || skip "iptables missing (scripts/deps.sh installs it)"
iptables -V 2>/dev/null | grep -q nf_tables || skip "iptables is not iptables-nft"
command -v curl >/dev/null || skip "curl missing"
fw_setup
SCRIPT=$SG_ROOT/etc/firewall/iptables/socksgate-iptables.sh
RULE_V4="iptables -I FORWARD 1 -m connmark --mark 0x5a000000/0xff000000 -j ACCEPT"
RULE_V6="ip6tables -I FORWARD 1 -m connmark --mark 0x5a000000/0xff000000 -j ACCEPT"

ipt_reset() {
	ing nft flush ruleset
	ing iptables -P FORWARD ACCEPT
}

# 1. FORWARD policy DROP, nothing else.
ing iptables -P FORWARD DROP
ing ip6tables -P FORWARD DROP
out=$(fw_check_n)
echo "$out" | grep -q "table ip filter chain FORWARD .*policy drop) drops relayed flows" ||
	fail "socksgated -n did not warn: $out"
echo "$out" | grep -qF "$RULE_V4" || fail "socksgated -n: no iptables rule: $out"
echo "$out" | grep -qF "$RULE_V6" || fail "socksgated -n: no ip6tables rule: $out"
pass "socksgated -n warns about FORWARD policy drop with the iptables and ip6tables rules"
sg_daemon
wait_for 10 'grep -qF "$RULE_V4" "$SG_LOG"' || fail "no warning at start"
pass "start log warns with the rule"
fw_row iptables-drop
for d in lan-wan wan-lan; do for p in tcp udp; do fw_expect iptables-drop $d $p timeout; done; done
fw_expect iptables-drop connect-wan tcp pass
pass "FORWARD DROP: relays time out both ways, CONNECT from the WAN passes"
FW_SPORT=$((FW_SPORT + 1))
tp_open_ns "$NS_C" "$G4" tcp "$(hp $C4 $FW_SPORT)" "$(hp $T4 7000)" || fail "hint: $TP_ERR"
bg ip netns exec "$NS_C" $PEER tcp-probe "$BND_ADDR" "$BND_PORT" --src "$(hp $C4 $FW_SPORT)" --timeout 4 >/dev/null
PROBE=$LAST_PID
# (The association lives until the hint: the daemon's 2 s stall watch
# needs two ticks.)
wait_log "ptcl 6 $C4:$FW_SPORT -> $G4:$BND_PORT -> $T4:7000: [0-9]* packets\? relayed (DNAT) but the kernel kept no flow" 30 ||
	fail "no run-time hint for a SYN the FORWARD chain drops"
wait_exit $PROBE 30 || fail "tcp-probe did not finish"
wait_for 10 '[ "$(grep -cF "$RULE_V4" "$SG_LOG")" -ge 2 ]' || fail "the hint did not give the rule"
tp_close
pass "run-time hint: SYNs relayed but no flow kept, with the iptables rule"

# 2. The shipped script.
ing "$SCRIPT" add || fail "socksgate-iptables.sh add"
ing "$SCRIPT" add || fail "socksgate-iptables.sh add (twice)"
[ "$(ing iptables -S FORWARD | grep -c connmark)" = 1 ] || fail "the rule is not there once"
ing "$SCRIPT" check || fail "socksgate-iptables.sh check"
fw_quiet # no hint can come for the dropped flows above after this
hints=$(fw_hints)
out=$(fw_check_n)
echo "$out" | grep -q "none drops relayed flows" || fail "still warns: $out"
fw_row iptables-drop+rule
for d in lan-wan wan-lan; do for p in tcp udp; do fw_expect iptables-drop+rule $d $p pass; done; done
fw_expect iptables-drop+rule connect-wan tcp pass
pass "FORWARD DROP + socksgate-iptables.sh: TRANSPARENT TCP and UDP pass both ways, IPv4 and IPv6"

# 3. Reloads: iptables-restore, and nft flush ruleset + iptables-restore.
ing iptables-save >"$SG_TMP/rules.v4"
ing ip6tables-save >"$SG_TMP/rules.v6"
fw_streams_start
ing iptables-restore <"$SG_TMP/rules.v4" || fail iptables-restore
ing ip6tables-restore <"$SG_TMP/rules.v6" || fail ip6tables-restore
fw_streams_alive "iptables-restore of the filter tables"
ing nft flush ruleset
ing nft list table inet socksgate >/dev/null || fail "nft flush ruleset removed our table"
ing iptables-restore <"$SG_TMP/rules.v4" || fail iptables-restore
ing ip6tables-restore <"$SG_TMP/rules.v6" || fail ip6tables-restore
fw_streams_alive "nft flush ruleset, then iptables-restore"
fw_streams_stop
fw_quiet
[ "$(fw_hints)" = "$hints" ] || fail "a run-time hint for a flow that passed: $(grep -E "kept no flow|never completed" "$SG_LOG" | tail -3)"
pass "no run-time hint for the flows that passed"

# 4. Docker's chains (as dockerd creates them, without a container).
ipt_reset
ing sh "$FW_FIXTURES/docker.sh" # the same chains the unit test judges
out=$(fw_check_n)
echo "$out" | grep -qF "iptables -I DOCKER-USER 1 -m connmark --mark 0x5a000000/0xff000000 -j ACCEPT" ||
	fail "the Docker warning does not name DOCKER-USER: $out"
ing "$SCRIPT" add || fail "socksgate-iptables.sh add (Docker)"
ing iptables -S DOCKER-USER | grep -q connmark || fail "the rule is not in DOCKER-USER"
out=$(fw_check_n)
echo "$out" | grep -q "table ip filter chain FORWARD" && fail "still warns about Docker's FORWARD: $out"
for p in tcp udp; do
	FW_SPORT=$((FW_SPORT + 1))
	[ "$(fw_cell lan-wan $p 4 $FW_SPORT)" = pass ] || fail "Docker + rule: LAN->WAN $p"
	FW_SPORT=$((FW_SPORT + 1))
	[ "$(fw_cell wan-lan $p 4 $FW_SPORT)" = pass ] || fail "Docker + rule: WAN->LAN $p"
done
pass "Docker's chains: warned with DOCKER-USER; the script's rule there lets relays through"

# 5. New flows from the LAN accepted, their replies not (no `-m conntrack
# --ctstate ESTABLISHED` rule): the warning says later packets are
# dropped; a TCP handshake whose SYN-ACK is dropped draws the hint.
# (Conntrack counts a reply before any filter chain runs: its counters
# cannot show the drop; the half-open handshake can.)
ipt_reset
ing iptables -P FORWARD DROP
ing iptables -A FORWARD -i br-lan -j ACCEPT
kill -HUP "$DAEMON_PID"
wait_log "later packets dropped: FORWARD: policy drop"
grep -q "first packet accepted: FORWARD \[handle [0-9]*\]: accept.*later packets dropped: FORWARD: policy drop" "$SG_LOG" ||
	grep -q "later packets dropped: FORWARD: policy drop" "$SG_LOG" ||
	fail "SIGHUP: no warning that replies are dropped"
FW_SPORT=$((FW_SPORT + 1))
tp_open_ns "$NS_C" "$G4" tcp "$(hp $C4 $FW_SPORT)" "$(hp $T4 7000)" || fail "half open: $TP_ERR"
bg ip netns exec "$NS_C" $PEER tcp-probe "$BND_ADDR" "$BND_PORT" \
	--src "$(hp $C4 $FW_SPORT)" --timeout 12
# (5 s half open, then the stall watch's next 2 s tick; the conntrack
# entry outlives the probe.)
wait_log "ptcl 6 $C4:$FW_SPORT .* the handshake never completed" 30 ||
	fail "no hint for a half-open handshake"
wait_log "firewall: TRANSPARENT relays through it .*iptables -I FORWARD 1" ||
	fail "the hint gave no rule"
pass "replies dropped: warned on SIGHUP; a handshake whose answer is dropped draws the hint"
exit 0
