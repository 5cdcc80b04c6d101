#!/bin/bash
# socksgated behind OpenWrt's firewall: the gateway runs fw4's default
# ruleset as fw4 renders it (tests/fixtures/firewalls/fw4-default.nft:
# zones lan and wan, input and forward policy drop, reject chains,
# masquerade on wan).
#   - without socksgate's forward include the daemon warns, at start and
#     in `socksgated -n`, with the rule to add; WAN->LAN relays are reset
#     by fw4's forward chain, and a relayed flow that gets dropped draws a
#     one-time hint naming the chain;
#   - with the include (etc/firewall/socksgate-forward.nft, rendered where
#     fw4 renders /usr/share/nftables.d/chain-pre/forward/) TRANSPARENT TCP
#     and UDP pass both ways, IPv4 and IPv6, and CONNECT from the WAN once
#     N1 (tcp/1080) is opened with a fw4 rule;
#   - fw4 reloads (`nft -f` of its ruleset, which flushes table inet fw4,
#     and `nft flush ruleset` then the reload) keep every live relayed flow
#     going: our owned table survives, the include is part of the reload.
. "$(dirname "$0")/fwlib.sh"
command -v curl >/dev/null || skip "curl missing"
[ -x "$SG_FWSCAN" ] || skip "sg_fwscan not built"
fw_setup

# fw4's ruleset: $1 = with the include, $2 = with N1 opened from the WAN
# (a `config rule` src wan proto tcp dest_port 1080 target ACCEPT, as fw4
# renders it in input_wan).
fw4_render() {
	local inc="" n1=""
	[ "$1" = 1 ] && inc="include \"$FW_SNIPPET\""
	[ "$2" = 1 ] && n1='tcp dport 1080 counter accept comment "!fw4: Allow-socksgate"'
	sed -e "s|#@CHAIN_PRE_FORWARD@|$inc|" -e "s|#@INPUT_WAN_RULES@|$n1|" \
		-e "s|#@USER_INCLUDES@||" "$FW_FIXTURES/fw4-default.nft" \
		>"$SG_TMP/fw4.nft"
}
fw4_load() { # include n1
	fw4_render "$1" "$2"
	ing nft -f "$SG_TMP/fw4.nft" || fail "fw4 ruleset did not load"
}

# 1. No firewall: the reference row.
sg_daemon
fw_row none
for d in lan-wan wan-lan; do for p in tcp udp; do fw_expect none $d $p pass; done; done
fw_expect none connect-wan tcp pass
pass "no firewall: everything passes"

# 2. fw4's default ruleset, no include.
fw4_load 0 0
out=$(fw_check_n)
echo "$out" | grep -q "table inet fw4 chain forward .*drops relayed flows" ||
	fail "socksgated -n did not warn: $out"
echo "$out" | grep -qF "nft insert rule inet fw4 forward ct mark and 0xff000000 == 0x5a000000 accept" ||
	fail "socksgated -n did not give the rule: $out"
echo "$out" | grep -q "chain-pre/forward/30-socksgate.nft" ||
	fail "socksgated -n did not name fw4's include directory: $out"
echo "$out" | grep -q "configuration OK" || fail "socksgated -n failed: $out"
pass "socksgated -n warns, with the rule to add and fw4's include directory"
kill "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
: >"$SG_TMP/daemon.log"
sg_daemon
wait_log "table inet fw4 chain forward .*drops relayed flows: first packet dropped: forward \[handle [0-9]*\] -> handle_reject \[handle [0-9]*\]: reject" ||
	fail "no warning at start"
wait_for 10 'grep -qF "nft insert rule inet fw4 forward ct mark and 0xff000000 == 0x5a000000 accept" "$SG_LOG"' ||
	fail "the start warning has no rule"
pass "start log warns: fw4's forward chain rejects relayed flows, with the rule"
fw_row fw4
for p in tcp udp; do
	fw_expect fw4 lan-wan $p pass
	fw_expect fw4 wan-lan $p N1-refused
done
fw_expect fw4 connect-wan tcp N1-refused
pass "fw4 default: LAN->WAN passes, WAN->LAN and CONNECT from the WAN: N1 refused"

# 3. N1 opened from the WAN, still no include: fw4's forward chain resets
# WAN->LAN data, and the daemon says so once per association.
fw4_load 0 1
fw_row fw4-n1
for p in tcp udp; do fw_expect fw4-n1 lan-wan $p pass; done
fw_expect fw4-n1 wan-lan tcp refused
fw_expect fw4-n1 wan-lan udp refused
fw_expect fw4-n1 connect-wan tcp pass
pass "fw4 + N1 open: WAN->LAN data refused by fw4's forward chain (RST / ICMP), CONNECT passes"
# The run-time hint: a WAN->LAN association whose packets fw4 rejects.
FW_SPORT=$((FW_SPORT + 1))
tp_open_ns "$NS_T" "$G4T" udp "$(hp $T4 $FW_SPORT)" "$(hp $C4 7000)" || fail "hint: $TP_ERR"
int_ $PEER udp-probe "$BND_ADDR" "$BND_PORT" --src "$(hp $T4 $FW_SPORT)" --timeout 2 --count 4 >/dev/null
# (The association lives until the hint: the daemon's 2 s stall watch
# needs two ticks.)
wait_log "assoc [0-9]*: ptcl 17 $T4:$FW_SPORT -> $G4T:$BND_PORT -> $C4:7000: [0-9]* packets\? relayed (DNAT) but the kernel kept no flow" 30 ||
	fail "no run-time hint for a dropped flow"
wait_for 10 '[ "$(log_count "firewall: table inet fw4 chain forward .*drops relayed flows")" -ge 2 ]' ||
	fail "the hint did not name fw4's forward chain"
tp_close
pass "run-time hint: packets relayed but no flow kept, naming fw4's forward chain"

# 4. The include in fw4's forward chain, N1 still open.
fw4_load 1 1
fw_quiet
hints=$(fw_hints)
out=$(fw_check_n)
echo "$out" | grep -q "none drops relayed flows" || fail "socksgated -n still warns: $out"
kill -HUP "$DAEMON_PID"
wait_log "firewall (reload): .*none drops" || fail "SIGHUP did not check the firewall again"
pass "with the include: socksgated -n and SIGHUP find nothing dropping relayed flows"
fw_row fw4-include
for d in lan-wan wan-lan; do for p in tcp udp; do fw_expect fw4-include $d $p pass; done; done
fw_expect fw4-include connect-wan tcp pass
pass "fw4 + include + N1 open: TRANSPARENT TCP and UDP pass both ways, CONNECT from the WAN passes"

# 5. Reloads keep every association working.
fw_streams_start
ing nft -f "$SG_TMP/fw4.nft" || fail "fw4 reload"
fw_streams_alive "fw4 reload (flush table inet fw4 + load)"
ing nft flush ruleset
ing nft list table inet socksgate >/dev/null || fail "nft flush ruleset removed our table"
ing nft -f "$SG_TMP/fw4.nft" || fail "fw4 load after flush ruleset"
fw_streams_alive "nft flush ruleset, then fw4 loaded again"
[ "$(relay_elements)" -ge 16 ] || fail "relay elements lost: $(relay_elements)"
kill -0 "$DAEMON_PID" || fail "daemon died"
pass "our owned table survived both reloads with every element"
fw_streams_stop
fw_quiet
[ "$(fw_hints)" = "$hints" ] || fail "a run-time hint for a flow that passed: $(grep -E "kept no flow|never completed" "$SG_LOG" | tail -3)"
pass "no run-time hint for the flows that passed"
[ -n "${FW_MATRIX_OUT:-}" ] && log "matrix rows appended to $FW_MATRIX_OUT"
exit 0
