# shellcheck shell=bash
# netns-tests/lib.sh: shared setup for the end-to-end tests.
#
# Every test sources this file, calls sg_topology, and gets three network
# namespaces with unique names, removed by an EXIT trap even on failure:
#
#   client  $NS_C  198.18.0.2/24  2001:db8:0::2/64   (+ .3 and ::3 spare)
#       |  veth
#   gateway $NS_G  198.18.0.1/24  2001:db8:0::1/64   runs socksgated
#                  198.18.1.1/24  2001:db8:1::1/64
#       |  veth
#   target  $NS_T  198.18.1.2/24  2001:db8:1::2/64
#
# Only 198.18.0.0/15 and 2001:db8::/32 are used, only inside these
# namespaces.  Exit codes: 0 pass, 77 skip (with the reason), else fail.

set -u
SG_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SG_BUILD=${SG_BUILD:-$SG_ROOT/build}
SG_DAEMON=${SG_DAEMON:-$SG_BUILD/socksgated}
SG_CLIENT=${SG_CLIENT:-$SG_BUILD/socksgate}
PY=/usr/bin/python3
PEER="$PY $SG_ROOT/netns-tests/tools/peer.py"
SG_ID="sg$$x$RANDOM"
NS_C="${SG_ID}c"
NS_G="${SG_ID}g"
NS_T="${SG_ID}t"
SG_TMP=$(mktemp -d "/tmp/${SG_ID}.XXXX")
SG_PIDS=()
SG_NAMESPACES=()
SG_FAILED=0

C4=198.18.0.2 C4B=198.18.0.3 G4=198.18.0.1 G4T=198.18.1.1 T4=198.18.1.2
# The gateway's interfaces toward the client and the target (a test of a
# router firewall names them as the router does: br-lan, wan).
GW_IF_C=${GW_IF_C:-g0}
GW_IF_T=${GW_IF_T:-g1}
C6=2001:db8::2 C6B=2001:db8::3 G6=2001:db8::1 G6T=2001:db8:1::1 T6=2001:db8:1::2

log() { printf '  [%s] %s\n' "$(date +%T)" "$*"; }
fail() {
	printf '  FAIL: %s\n' "$*"
	SG_FAILED=1
	exit 1
}
skip() {
	printf '  SKIP: %s\n' "$*"
	exit 77
}
pass() { printf '  ok: %s\n' "$*"; }

sg_cleanup() {
	local rc=$?
	for pid in "${SG_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	sleep 0.2
	for pid in "${SG_PIDS[@]}"; do
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -n "${SG_LOG:-}" ] && [ -f "$SG_LOG" ]; then
		echo "  --- daemon log (last 40 lines) ---"
		tail -n 40 "$SG_LOG" | sed 's/^/  | /'
	fi
	for ns in "${SG_NAMESPACES[@]}"; do
		ip netns del "$ns" 2>/dev/null
		rm -rf "/etc/netns/$ns"
	done
	if [ -n "${SG_KEEP:-}" ]; then echo "  kept $SG_TMP"; else rm -rf "$SG_TMP"; fi
	exit "$rc"
}
trap sg_cleanup EXIT
trap 'exit 1' INT TERM

inc() { ip netns exec "$NS_C" "$@"; }

# --- time ---------------------------------------------------------------
# Tests never use a fixed sleep as the only synchronisation with the
# daemon: they poll for a condition with a generous deadline (the suite
# runs under ASan on small, loaded machines), or measure when something
# happened and assert on the measured time.  Times are integer
# microseconds since the epoch, read without a fork.

# Bound for things that only have to happen eventually (start, listen).
SG_START_WAIT=${SG_START_WAIT:-30}
now_us() { echo "${EPOCHREALTIME//[!0-9]/}"; }
# Microseconds as seconds with 3 decimals.
us_s() {
	local v=$1 sign=
	[ "$v" -ge 0 ] || { sign=-; v=$((-v)); }
	printf '%s%d.%03d' "$sign" $((v / 1000000)) $((v % 1000000 / 1000))
}
# Decimal seconds (e.g. from a tool's log) as microseconds.
s_us() { awk -v t="$1" 'BEGIN { printf "%.0f", t * 1000000 }'; }
# Sleeps without a fork (read times out on a pipe nobody writes to; the
# daemon is started without this descriptor).
exec {SG_SLEEP_FD}<> <(:)
fsleep() { read -rt "$1" -u "$SG_SLEEP_FD" _ || true; }
# Sleeps until the time $1 (µs), if it is not past.
sleep_until() {
	local d=$(($1 - $(now_us)))
	[ $d -le 0 ] || fsleep "$(us_s $d)"
}
# wait_for SECONDS 'shell condition': evaluates the condition until it
# holds (0) or SECONDS (an integer) have passed (1).
wait_for() { # (the condition sees the caller's variables)
	local _wf_end=$(($(now_us) + $1 * 1000000))
	while ! eval "$2"; do
		[ "$(now_us)" -lt $_wf_end ] || return 1
		fsleep 0.05
	done
}
# wait_exit PID SECONDS: waits for a child to exit; sets EXIT_RC and
# EXIT_US (when the exit was seen, within ~10 ms).  1 if still running.
wait_exit() {
	local end=$(($(now_us) + $2 * 1000000))
	while kill -0 "$1" 2>/dev/null; do
		[ "$(now_us)" -lt $end ] || return 1
		fsleep 0.01
	done
	EXIT_US=$(now_us)
	wait "$1"
	EXIT_RC=$?
	return 0
}
# Daemon log: lines matching a grep pattern; waiting for one.
log_count() { grep -c -- "$1" "$SG_LOG"; }
# Privilege separation (docs/privsep.md): $DAEMON_PID is the supervisor;
# the PIDs of the kernel agent and of the current session process, from
# the log (the latest daemon's).
sg_agent_pid() { sed -n 's/.*started: kernel agent \([0-9]*\),.*/\1/p' "$SG_LOG" | tail -1; }
sg_session_pid() { sed -n 's/.*agent: serving session process \([0-9]*\).*/\1/p' "$SG_LOG" | tail -1; }
# prlimit on the session process, as its own uid and gid (root needs
# CAP_SYS_RESOURCE for another uid's process, which a container may lack).
sg_prlimit() {
	local pid ids
	pid=$(sg_session_pid)
	ids=$(awk '/^Uid:/ {u=$2} /^Gid:/ {g=$2} END {print u, g}' "/proc/$pid/status")
	setpriv --reuid="${ids% *}" --regid="${ids#* }" --clear-groups \
		prlimit --pid "$pid" "$@"
}
wait_log() { # pattern [seconds]
	local _wl_pat=$1
	wait_for "${2:-10}" 'grep -q -- "$_wl_pat" "$SG_LOG"'
}
# The time (µs) of the last daemon log line matching a pattern, from its
# HH:MM:SS.mmm stamp (local time, same clock); empty if none.
log_us() {
	local line hms mid us
	line=$(grep -- "$1" "$SG_LOG" | tail -1)
	[ -n "$line" ] || return 1
	hms=${line%% *}
	mid=$(date -d 'today 00:00:00' +%s)
	us=$(((mid + 10#${hms:0:2} * 3600 + 10#${hms:3:2} * 60 + 10#${hms:6:2}) * 1000000 + 10#${hms:9:3} * 1000))
	# A line stamped before midnight, read after it.
	[ $us -le $(($(now_us) + 60000000)) ] || us=$((us - 86400000000))
	echo $us
}
# Sends SIGHUP and waits until the daemon says it reloaded or kept the
# running configuration.
# SIGHUP to the supervisor; waits until both the session process and the
# kernel agent reloaded (two lines), or the configuration was kept.
sg_reload() {
	local ok='configuration reloaded' kept='keeping the running configuration' n k
	n=$(log_count "$ok")
	k=$(log_count "$kept")
	kill -HUP "$DAEMON_PID"
	wait_for 10 '[ "$(log_count "$ok")" -ge $((n + 2)) ] || [ "$(log_count "$kept")" -gt "$k" ]' ||
		fail "SIGHUP: no reload logged within 10 s"
}

ing() { ip netns exec "$NS_G" "$@"; }
int_() { ip netns exec "$NS_T" "$@"; }

# Starts a background command and remembers its PID for the trap.
bg() {
	"$@" &
	SG_PIDS+=($!)
	LAST_PID=$!
}

sg_topology() {
	[ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces"
	for ns in "$NS_C" "$NS_G" "$NS_T"; do
		ip netns add "$ns" || fail "ip netns add $ns"
		SG_NAMESPACES+=("$ns")
		ip -n "$ns" link set lo up
	done
	ip link add c0 netns "$NS_C" type veth peer name "$GW_IF_C" netns "$NS_G" || fail "veth"
	ip link add t0 netns "$NS_T" type veth peer name "$GW_IF_T" netns "$NS_G" || fail "veth"
	ip -n "$NS_C" addr add $C4/24 dev c0
	ip -n "$NS_C" addr add $C4B/24 dev c0
	ip -n "$NS_C" addr add $C6/64 dev c0 nodad
	ip -n "$NS_C" addr add $C6B/64 dev c0 nodad preferred_lft 0 # never a default source
	ip -n "$NS_G" addr add $G4/24 dev "$GW_IF_C"
	ip -n "$NS_G" addr add $G6/64 dev "$GW_IF_C" nodad
	ip -n "$NS_G" addr add $G4T/24 dev "$GW_IF_T"
	ip -n "$NS_G" addr add $G6T/64 dev "$GW_IF_T" nodad
	ip -n "$NS_T" addr add $T4/24 dev t0
	ip -n "$NS_T" addr add $T6/64 dev t0 nodad
	for l in "$NS_C c0" "$NS_G $GW_IF_C" "$NS_G $GW_IF_T" "$NS_T t0"; do
		set -- $l
		ip -n "$1" link set "$2" up
	done
	ip -n "$NS_C" route add default via $G4
	ip -n "$NS_C" -6 route add default via $G6
	ip -n "$NS_T" route add default via $G4T
	ip -n "$NS_T" -6 route add default via $G6T
	ing sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
	# Names the daemon resolves (c-ares reads the namespace's hosts file).
	mkdir -p "/etc/netns/$NS_G"
	printf '%s target.test\n%s target.test\n%s client.test\n' \
		"$T4" "$T6" "$C4" >"/etc/netns/$NS_G/hosts"
	printf 'nameserver %s\n' "$T4" >"/etc/netns/$NS_G/resolv.conf"
}

# Writes a config to $SG_TMP/socksgated.conf: the base below plus "$@"
# lines.  Callers add rules; the base allows nothing.  RELAY_MODE
# (auto, sockmap, splice; unset: the daemon's default) becomes
# `connect-relay`.
sg_config() {
	{
		echo "listen $G4 1080"
		echo "listen $G6 1080"
		echo "log-level debug"
		echo "control $SG_TMP/control.sock"
		[ -z "${RELAY_MODE:-}" ] || echo "connect-relay $RELAY_MODE"
		for line in "$@"; do echo "$line"; done
	} >"$SG_TMP/socksgated.conf"
}

# Starts the daemon in the gateway namespace and waits until it listens.
sg_daemon() {
	SG_LOG=$SG_TMP/daemon.log
	ip netns exec "$NS_G" "$SG_DAEMON" -f -c "$SG_TMP/socksgated.conf" \
		>>"$SG_LOG" 2>&1 {SG_SLEEP_FD}<&- &
	SG_PIDS+=($!)
	DAEMON_PID=$!
	local end=$(($(now_us) + SG_START_WAIT * 1000000))
	while [ "$(now_us)" -lt $end ]; do
		if ing ss -ltn 2>/dev/null | grep -q "$G4:1080"; then
			return 0
		fi
		if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
			grep -q "connect-relay sockmap: " "$SG_LOG" &&
				skip "$(grep -o 'connect-relay sockmap: .*' "$SG_LOG")"
			fail "daemon exited: $(tail -5 "$SG_LOG")"
		fi
		fsleep 0.05
	done
	fail "daemon did not start listening within ${SG_START_WAIT}s"
}

# Waits until a TCP (or, with u, UDP) port listens in a namespace.
wait_listen() {
	local ns=$1 port=$2 proto=${3:-t}
	wait_for $SG_START_WAIT "ip netns exec '$ns' ss -ln$proto 2>/dev/null | grep -q ':$port '" ||
		fail "nothing listens on $port in $ns within ${SG_START_WAIT}s"
}

nft_table() { ing nft list table inet socksgate 2>/dev/null; }

# Starts `socksgate transparent` in the client namespace in the background;
# waits for its "bound" line and sets BND_ADDR/BND_PORT/TP_PID.
tp_open() { # proto src dst [extra args...]
	local proto=$1 src=$2 dst=$3 out
	shift 3
	local proxy=$G4
	case $src in \[*) proxy="[$G6]" ;; esac
	out=$SG_TMP/tp.$RANDOM
	ip netns exec "$NS_C" "$SG_CLIENT" transparent --proxy "$proxy" \
		--proto "$proto" --source "$src" --dest "$dst" "$@" >"$out" 2>&1 &
	TP_PID=$!
	SG_PIDS+=($TP_PID)
	local end=$(($(now_us) + SG_START_WAIT * 1000000))
	while [ "$(now_us)" -lt $end ]; do
		if grep -q '^bound ' "$out"; then
			read -r _ _ BND_ADDR BND_PORT <"$out"
			return 0
		fi
		kill -0 "$TP_PID" 2>/dev/null || { cat "$out"; return 1; }
		fsleep 0.02
	done
	echo "no bound line within ${SG_START_WAIT}s"
	return 1
}

# Host form of an address for --src/peer arguments: [v6] or v4.
hp() { case $1 in *:*) echo "[$1]:$2" ;; *) echo "$1:$2" ;; esac; }

dropped_packets() {
	ing nft list counter inet socksgate dropped 2>/dev/null |
		awk '/packets/ {print $2}'
}

# Conntrack entries carrying socksgate's mark in the gateway.
ct_ours() {
	ing conntrack -L -m 0x5a000000/0xff000000 2>/dev/null | grep -c . || true
}

# Number of elements in one of our sets or maps (e.g. assoc4, dnat6).
set_count() {
	local kind=set
	case $1 in dnat* | mark*) kind=map ;; esac
	ing nft -j list $kind inet socksgate "$1" 2>/dev/null |
		$PY -c 'import json,sys
d=json.load(sys.stdin)["nftables"]
print(sum(len(o.get("set", o.get("map", {})).get("elem", [])) for o in d))'
}
# Elements of the relay (assoc, dnat, mark) of both families.
relay_elements() {
	local n=0
	for s in assoc4 assoc6 dnat4 dnat6 mark4 mark6; do
		n=$((n + $(set_count $s)))
	done
	echo $n
}

# Starts Dante's danted in the gateway on $1 (default 1081): the anchor and
# differential peer (NO AUTH, every command, clients from 198.18.0.0/24).
sg_danted() {
	local port=${1:-1081}
	cat >"$SG_TMP/danted.conf" <<CONF
logoutput: $SG_TMP/danted.log
internal: $G4 port = $port
external: $G4T
socksmethod: none
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: 198.18.0.0/24 to: 0.0.0.0/0 }
socks pass { from: 0.0.0.0/0 to: 0.0.0.0/0 command: bind connect udpassociate bindreply udpreply }
CONF
	bg ip netns exec "$NS_G" danted -f "$SG_TMP/danted.conf" -p "$SG_TMP/danted.pid"
	wait_listen "$NS_G" "$port"
}

# Starts, in the target, an FTP-like control server on $1 (default 7002):
# it reads "IP PORT" and connects there to send "from-target" (BIND peer).
sg_bind_peer() {
	local port=${1:-7002}
	cat >"$SG_TMP/ctl_server.py" <<PY
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", $port)); s.listen(4)
while True:
    c, _ = s.accept()
    try:
        ip, p = c.makefile().readline().split()
        d = socket.create_connection((ip, int(p)), timeout=10)
        d.sendall(b"from-target")
        d.close()
    except OSError:
        pass
    c.close()
PY
	bg ip netns exec "$NS_T" $PY "$SG_TMP/ctl_server.py"
	wait_listen "$NS_T" "$port"
}
