#!/bin/bash
# Checks that built executables carry the hardening SG_HARDEN asks for,
# by reading their ELF headers (readelf, binutils):
#   PIE          ELF type DYN and DF_1_PIE in FLAGS_1
#   full RELRO   a GNU_RELRO segment and BIND_NOW (FLAGS BIND_NOW or
#                FLAGS_1 NOW): the GOT is read-only once loaded
#   stack        __stack_chk_fail imported (-fstack-protector-strong)
#   FORTIFY      some __*_chk function imported (-D_FORTIFY_SOURCE)
#   NX stack     a GNU_STACK segment that is not executable
# Usage: scripts/check-hardening.sh BINARY...   Exit 0 if every check of
# every binary passes, else 1 with one line per failed check.  Meant for
# a Release build without sanitizers (ASan replaces FORTIFY).
set -uo pipefail
[ $# -gt 0 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }
command -v readelf >/dev/null || { echo "check-hardening: readelf (binutils) missing" >&2; exit 2; }
bad=0
for bin in "$@"; do
	if ! head=$(readelf -hW "$bin" 2>&1); then
		echo "$bin: not an ELF file: $head"
		bad=1
		continue
	fi
	dyn=$(readelf -dW "$bin")
	seg=$(readelf -lW "$bin")
	syms=$(readelf --dyn-syms -W "$bin" | awk '$7 == "UND" {print $8}' | sed 's/@.*//')
	fails=()
	grep -qE '^ *Type: *DYN' <<<"$head" && grep -qE '\(FLAGS_1\).*\bPIE\b' <<<"$dyn" ||
		fails+=("not PIE (want ELF type DYN with DF_1_PIE: -fPIE -pie)")
	grep -qE '^ *GNU_RELRO ' <<<"$seg" ||
		fails+=("no RELRO (no GNU_RELRO segment: -Wl,-z,relro)")
	grep -qE '\(BIND_NOW\)|\(FLAGS\).*\bBIND_NOW\b|\(FLAGS_1\).*\bNOW\b' <<<"$dyn" ||
		fails+=("partial RELRO only (no BIND_NOW: -Wl,-z,now)")
	grep -qx '__stack_chk_fail' <<<"$syms" ||
		fails+=("no stack protector (__stack_chk_fail not imported: -fstack-protector-strong)")
	chk=$(grep -E '^__[a-z0-9_]+_chk$' <<<"$syms" | grep -vc '^__stack_chk_fail$')
	[ "$chk" -gt 0 ] ||
		fails+=("not fortified (no __*_chk function imported: -O2 -D_FORTIFY_SOURCE=2)")
	stack=$(grep -E '^ *GNU_STACK ' <<<"$seg")
	if [ -z "$stack" ]; then
		fails+=("no GNU_STACK segment: the stack may be executable (-Wl,-z,noexecstack)")
	elif awk '{ exit !($7 ~ /E/) }' <<<"$stack"; then
		fails+=("executable stack (GNU_STACK $(awk '{print $7}' <<<"$stack"): -Wl,-z,noexecstack)")
	fi
	if [ ${#fails[@]} -eq 0 ]; then
		echo "$bin: PIE, full RELRO, stack protector, FORTIFY ($chk __*_chk functions), NX stack: ok"
	else
		for f in "${fails[@]}"; do echo "$bin: FAIL: $f"; done
		bad=1
	fi
done
exit $bad
