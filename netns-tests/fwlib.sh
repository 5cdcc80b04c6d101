# shellcheck shell=bash
# netns-tests/fwlib.sh: the router-firewall tests' shared part (sourced
# after lib.sh's variables are set; see test-firewall-*.sh).
#
# The gateway is a router: its interface toward the client namespace is
# br-lan (the LAN: 198.18.0.0/24, 2001:db8::/64), toward the target
# namespace wan (the WAN: 198.18.1.0/24, 2001:db8:1::/64).  socksgated
# listens on both sides.  Every host runs a TCP and a UDP echo on 7000;
# the LAN host also serves HTTP on 8080 (CONNECT from the WAN).
#
# fw_row LABEL measures one row of the firewall matrix, both families:
#   TRANSPARENT LAN->WAN   client on the LAN, target on the WAN
#   TRANSPARENT WAN->LAN   client on the WAN asks for a relay to the LAN
#   CONNECT from the WAN   curl through socksgated to the LAN host
# each TCP and UDP, as one word: pass, timeout, refused (RST or ICMP
# unreachable), reset, N1-refused (the SOCKS connection itself), ...
# and appends "LABEL|dir|proto|fam|fate" lines to $SG_TMP/matrix.
# A cell's probe is timed from its own first packet (2 s), never with the
# helpers' start-up; the association and CONNECT steps, which never time
# out in a measured row (a firewall refuses N1 at once), have generous
# bounds.

GW_IF_C=br-lan
GW_IF_T=wan
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FW_SNIPPET=$SG_ROOT/etc/firewall/socksgate-forward.nft
FW_FIXTURES=$SG_ROOT/tests/fixtures/firewalls
SG_FWSCAN=${SG_FWSCAN:-$SG_BUILD/sg_fwscan}
FW_SPORT=42000

fw_setup() {
	sg_topology
	sg_config "listen $G4T 1080" "listen $G6T 1080" \
		"rule allow from 198.18.0.0/24" "rule allow from 2001:db8::/64" \
		"rule allow from 198.18.1.0/24" "rule allow from 2001:db8:1::/64" \
		"close-on-target-fin no" "timeout connect 3"
	for ns in "$NS_C" "$NS_T"; do
		bg ip netns exec "$ns" $PEER tcp-echo 7000
		bg ip netns exec "$ns" $PEER udp-echo 7000
		wait_listen "$ns" 7000
		wait_listen "$ns" 7000 u
	done
	mkdir -p "$SG_TMP/www"
	echo "lan-page" >"$SG_TMP/www/index.html"
	bg ip netns exec "$NS_C" $PY -m http.server 8080 --bind :: \
		--directory "$SG_TMP/www" >/dev/null 2>&1
	wait_listen "$NS_C" 8080
}

# The daemon's check alone: `socksgated -n` output (stdout and stderr).
fw_check_n() {
	ing "$SG_DAEMON" -n -c "$SG_TMP/socksgated.conf" 2>&1
}

# Starts `socksgate transparent` in namespace $1 through proxy $2; sets
# BND_ADDR, BND_PORT, TP_PID; returns 1 if the association was refused.
tp_open_ns() { # ns proxy proto src dst
	local ns=$1 proxy=$2 proto=$3 src=$4 dst=$5 out
	out=$SG_TMP/tp.$RANDOM
	ip netns exec "$ns" "$SG_CLIENT" transparent --proxy "$proxy" \
		--proto "$proto" --source "$src" --dest "$dst" --timeout 15 \
		>"$out" 2>&1 &
	TP_PID=$!
	SG_PIDS+=($TP_PID)
	local end=$(($(now_us) + SG_START_WAIT * 1000000))
	while [ "$(now_us)" -lt $end ]; do
		if grep -q '^bound ' "$out"; then
			read -r _ _ BND_ADDR BND_PORT <"$out"
			return 0
		fi
		kill -0 "$TP_PID" 2>/dev/null || {
			TP_ERR=$(tr '\n' ' ' <"$out")
			return 1
		}
		fsleep 0.02
	done
	TP_ERR="no answer"
	return 1
}

tp_close() {
	kill "$TP_PID" 2>/dev/null
	wait "$TP_PID" 2>/dev/null
}

# The client side of a direction: namespace, its address, the proxy, the
# destination (the other side's host).
fw_side() { # dir fam
	local dir=$1 fam=$2
	if [ "$dir" = lan-wan ]; then
		CNS=$NS_C
		if [ "$fam" = 4 ]; then CA=$C4 PX=$G4 DA=$T4; else CA=$C6 PX="[$G6]" DA=$T6; fi
	else
		CNS=$NS_T
		if [ "$fam" = 4 ]; then CA=$T4 PX=$G4T DA=$C4; else CA=$T6 PX="[$G6T]" DA=$C6; fi
	fi
}

# One TRANSPARENT cell: prints the fate of data through a new association.
fw_cell() { # dir proto fam sport
	local dir=$1 proto=$2 fam=$3 sport=$4 fate
	fw_side "$dir" "$fam"
	if ! tp_open_ns "$CNS" "$PX" "$proto" "$(hp "$CA" $sport)" "$(hp "$DA" 7000)"; then
		case $TP_ERR in
		*refused* | *"timed out"* | *"no answer"*) echo N1-refused ;;
		*) echo "assoc-failed" ;;
		esac
		return
	fi
	fate=$(ip netns exec "$CNS" $PEER $proto-probe "$BND_ADDR" "$BND_PORT" \
		--src "$(hp "$CA" $sport)" --timeout 2 --count 4 --bytes 2000)
	tp_close
	echo "$fate"
}

# CONNECT from the WAN to the LAN host's web page.
fw_connect_wan() { # fam
	local px rc out
	if [ "$1" = 4 ]; then px=$G4T dst=$C4; else px="[$G6T]" dst="[$C6]"; fi
	out=$(ip netns exec "$NS_T" curl -s -m 20 --connect-timeout 10 \
		--socks5 "$px:1080" "http://$dst:8080/" 2>/dev/null)
	rc=$?
	if [ "$out" = lan-page ]; then
		echo pass
	elif [ $rc = 7 ]; then
		echo N1-refused
	elif [ $rc = 28 ]; then
		echo timeout
	else
		echo "curl-$rc"
	fi
}

fw_row() { # label
	local label=$1 fate line=""
	for fam in 4 6; do
		for dir in lan-wan wan-lan; do
			for proto in tcp udp; do
				FW_SPORT=$((FW_SPORT + 1))
				fate=$(fw_cell $dir $proto $fam $FW_SPORT)
				echo "$label|$dir|$proto|$fam|$fate" >>"$SG_TMP/matrix"
				line="$line $dir/$proto/v$fam=$fate"
			done
		done
		fate=$(fw_connect_wan $fam)
		echo "$label|connect-wan|tcp|$fam|$fate" >>"$SG_TMP/matrix"
		line="$line connect-wan/v$fam=$fate"
	done
	log "matrix $label:$line"
	[ -n "${FW_MATRIX_OUT:-}" ] && grep "^$label|" "$SG_TMP/matrix" >>"$FW_MATRIX_OUT"
	return 0
}

# The fate measured for a cell of a row.
fw_fate() { # label dir proto fam
	grep "^$1|$2|$3|$4|" "$SG_TMP/matrix" | tail -1 | cut -d'|' -f5
}

# Asserts every cell of a row (both families) has the given fate.
fw_expect() { # label dir proto fate
	local f
	for fam in 4 6; do
		f=$(fw_fate "$1" "$2" "$3" $fam)
		[ "$f" = "$4" ] || fail "$1: $2 $3 IPv$fam: expected $4, measured $f"
	done
}

# Live flows through every kind of association, kept open (reload tests):
# a TCP and a UDP stream each way and family, each logging the time of
# every echo it gets back to $SG_TMP/stream.NAME.
fw_streams_start() {
	STREAMS=()
	STREAM_PIDS=()
	for fam in 4 6; do
		for dir in lan-wan wan-lan; do
			for proto in tcp udp; do
				fw_side $dir $fam
				FW_SPORT=$((FW_SPORT + 1))
				tp_open_ns "$CNS" "$PX" $proto "$(hp "$CA" $FW_SPORT)" \
					"$(hp "$DA" 7000)" || fail "stream $dir $proto v$fam: $TP_ERR"
				STREAM_PIDS+=("$TP_PID")
				local name=$dir.$proto.$fam
				bg ip netns exec "$CNS" $PEER $proto-stream "$BND_ADDR" \
					"$BND_PORT" --src "$(hp "$CA" $FW_SPORT)" \
					--interval 0.1 --max-time 120 --log "$SG_TMP/stream.$name"
				STREAMS+=("$name")
				STREAM_PIDS+=("$LAST_PID")
			done
		done
	done
	for s in "${STREAMS[@]}"; do
		wait_for 60 '[ -s "$SG_TMP/stream.$s" ]' || fail "stream $s never got an echo"
	done
}

# Called once a reload is done: asserts every stream gets the echo of
# something it sent after that (waited for by deadline: a stream broken by
# the reload never does; a TCP stream gives up after 5 s without echo).
fw_streams_alive() { # what
	local t1
	t1=$(date +%s.%N)
	for s in "${STREAMS[@]}"; do
		wait_for 30 'awk -v t="$t1" '"'"'$2 > t { f = 1 } END { exit !f }'"'"' "$SG_TMP/stream.$s"' ||
			fail "$1: stream $s stopped (last echo: $(tail -1 "$SG_TMP/stream.$s"), reload done at $t1)"
	done
	pass "$1: all ${#STREAMS[@]} live flows (TCP and UDP, both ways, IPv4 and IPv6) kept flowing"
}

# Stops the streams and their associations.
fw_streams_stop() {
	for p in "${STREAM_PIDS[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	STREAM_PIDS=()
}

# Run-time hints (flows dropped after our NAT) in the daemon log so far.
fw_hints() {
	grep -cE "kept no flow|handshake never completed" "$SG_LOG" || true
}

# Waits until the daemon has ended every association (a hint is only
# written for a live one: after this, none can come for those before).
fw_quiet() {
	wait_for 30 '[ "$("$SG_CLIENT" stats --json --control "$SG_TMP/control.sock" |
		$PY -c "import json,sys; print(json.load(sys.stdin)[\"associations\"][\"live\"])")" = 0 ]' ||
		fail "associations still live: $("$SG_CLIENT" stats --control "$SG_TMP/control.sock")"
}
