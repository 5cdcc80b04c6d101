#!/bin/bash
# musl (OpenWrt's C library) from a Debian host: compiles every C source
# of the daemon, the kernel back ends, the codec and the client against
# musl's headers (musl-gcc; the libraries' own headers come from Debian's
# -dev packages, which do not depend on the C library, and libxcrypt's
# crypt.h is put first as OpenWrt's staging directory does), with
# implicit declarations as errors, so that a glibc-only interface fails;
# then links the client library's and the codec's unit tests statically
# with musl (tests/crshim) and runs them: the bounded proxy name lookup
# runs on musl's threads and resolver.  Nothing links the daemon against
# musl here (no musl builds of libnftnl and the others in Debian).
set -uo pipefail
cd "$(dirname "$0")/.."
command -v musl-gcc >/dev/null || { echo "musl-check: musl-gcc missing (apt-get install musl-tools)"; exit 1; }
TMP=$(mktemp -d /tmp/sg-musl.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
inc=$TMP/include
mkdir -p "$inc"
ma=$(gcc -print-multiarch)
for h in libnftnl libmnl libnetfilter_conntrack libnfnetlink linux asm-generic \
	ev.h crypt.h ares.h ares_build.h ares_dns.h ares_nameser.h ares_rules.h ares_version.h; do
	for d in /usr/include /usr/include/$ma; do
		[ -e "$d/$h" ] && { ln -sf "$d/$h" "$inc/$h"; break; }
	done
done
ln -sf "/usr/include/$ma/asm" "$inc/asm"
# Debian's crypt.h (libxcrypt) includes glibc's <sys/cdefs.h>, which musl
# has not; OpenWrt's libxcrypt build does without.  The three macros it
# needs:
mkdir -p "$inc/sys"
cat >"$inc/sys/cdefs.h" <<'H'
#define __BEGIN_DECLS
#define __END_DECLS
#define __THROW
H

CFLAGS=(-std=gnu11 -D_GNU_SOURCE -DSOCKSGATE_VERSION='"musl-check"' -Wall -Werror=implicit-function-declaration
	-Werror=implicit-int -Werror=incompatible-pointer-types -I"$inc"
	-Iproto -Iutil -Idaemon -Inft -Iconntrack -Irtnl -Iclient)
n=0 failn=0
for f in proto/*.c util/*.c daemon/*.c nft/*.c conntrack/*.c client/*.c; do
	[ -e "$f" ] || continue
	n=$((n + 1))
	if ! musl-gcc "${CFLAGS[@]}" -c -o "$TMP/o.o" "$f" 2>"$TMP/err"; then
		failn=$((failn + 1))
		echo "musl-check: $f does not compile against musl:"
		head -20 "$TMP/err"
	fi
done
echo "musl-check: $((n - failn)) of $n sources compile against musl's headers"

for t in test_sgclient test_s5_proto; do
	if ! musl-gcc -static "${CFLAGS[@]}" -Itests/crshim -o "$TMP/$t" "tests/$t.c" \
		client/sgclient.c proto/s5_proto.c proto/ptcl.c tests/crshim/crshim.c \
		-lpthread 2>"$TMP/err"; then
		head -20 "$TMP/err"
		echo "musl-check: $t does not link statically with musl"
		failn=$((failn + 1))
		continue
	fi
	if "$TMP/$t" >"$TMP/$t.log" 2>&1; then
		echo "musl-check: $t (static, musl): $(grep Synthesis "$TMP/$t.log")"
	else
		grep -E "FAIL|Assertion|Synthesis" "$TMP/$t.log" | head -20
		echo "musl-check: $t FAILED on musl"
		failn=$((failn + 1))
	fi
done
[ $failn -eq 0 ]
