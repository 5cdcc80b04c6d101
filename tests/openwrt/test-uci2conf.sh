#!/bin/bash
# The OpenWrt UCI translation (packaging/openwrt/files/socksgate-uci2conf)
# against a stub of OpenWrt's UCI helpers (lib/functions.sh, same API) and
# of netifd's addresses (lib/functions/network.sh, from the environment):
# each case's output must equal the expected socksgated.conf and pass
# `socksgated -n` (the native build, $SG_BUILD, default build/).  Runs
# under busybox sh (OpenWrt's ash) when installed, and under sh.  Also a
# syntax check of the init script and the hotplug hook.  No root or
# namespace needed.  Exit 0 pass, 1 fail.
set -uo pipefail
cd "$(dirname "$0")"
HERE=$PWD
ROOT=$(cd ../.. && pwd)
SG_BUILD=${SG_BUILD:-$ROOT/build}
DAEMON=$SG_BUILD/socksgated
FILES=$ROOT/packaging/openwrt/files
TMP=$(mktemp -d /tmp/sg-uci.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
pass=0 failn=0
ok() { pass=$((pass + 1)); echo "  ok: $*"; }
bad() { failn=$((failn + 1)); echo "  FAIL: $*"; }
[ -x "$DAEMON" ] || { echo "no $DAEMON (build first)"; exit 1; }

shells=(sh)
command -v busybox >/dev/null && busybox sh -c : 2>/dev/null && shells=("busybox sh" sh)

# A users file for `auth password` (socksgated -n reads it).
printf 'alice:%s\n' "$(python3 -c 'import crypt; print(crypt.crypt("pw", crypt.mksalt(crypt.METHOD_SHA512)))' 2>/dev/null)" >"$TMP/users"

# run SHELL UCI_FILE [VAR=VALUE...]: the translation on stdout.
run() {
	local sh=$1 uci=$2
	shift 2
	mkdir -p "$TMP/config"
	sed "s|@USERS@|$TMP/users|" "$uci" >"$TMP/config/socksgate"
	env "$@" SG_OPENWRT_LIB="$HERE/lib" UCI_CONFIG_DIR="$TMP/config" \
		$sh "$FILES/socksgate-uci2conf"
}

LAN_UP=(SG_NET_lan_IPADDRS=192.168.1.1 SG_NET_lan_IPADDRS6=fd00:1::1
	SG_NET_lan_SUBNETS=192.168.1.1/24 SG_NET_lan_SUBNETS6=fd00:1::1/64)

# check NAME SHELL UCI EXPECTED [VAR=VALUE...]
check() {
	local name=$1 sh=$2 uci=$3 want=$4 out=$TMP/out.conf
	shift 4
	if ! run "$sh" "$uci" "$@" >"$out" 2>"$TMP/err"; then
		bad "$name ($sh): exit $? $(cat "$TMP/err")"
		return
	fi
	if ! diff -u <(sed "s|@USERS@|$TMP/users|" "$want") "$out" >"$TMP/diff"; then
		bad "$name ($sh): output differs"
		cat "$TMP/diff"
		return
	fi
	if ! "$DAEMON" -n -c "$out" >"$TMP/n" 2>&1; then
		bad "$name ($sh): socksgated -n: $(cat "$TMP/n")"
		return
	fi
	ok "$name ($sh): as expected, and socksgated -n accepts it"
}

for sh in "${shells[@]}"; do
	check "shipped config, LAN up" "$sh" "$FILES/socksgate.config" cases/shipped-lan-up.conf "${LAN_UP[@]}"
	check "shipped config, LAN without address (no rule widened)" "$sh" \
		"$FILES/socksgate.config" cases/shipped-lan-down.conf
	check "every option, lists, fixed listeners, disabled rule" "$sh" cases/full.uci \
		cases/full.conf "${LAN_UP[@]}"
	# A value with a newline would add a directive: refused.
	printf "config socksgated 'main'\n\toption log_level 'info\nrule allow'\n" >"$TMP/inject.uci"
	if run "$sh" "$TMP/inject.uci" >/dev/null 2>&1; then
		bad "a value with a newline ($sh) was not refused"
	else
		ok "a value with a newline is refused ($sh)"
	fi
done

for f in socksgate.init socksgate.hotplug socksgate-uci2conf; do
	if ${shells[0]} -n "$FILES/$f"; then
		ok "$f: shell syntax (${shells[0]})"
	else
		bad "$f: shell syntax"
	fi
done
echo "uci2conf: $pass passed, $failn failed"
[ $failn -eq 0 ]
