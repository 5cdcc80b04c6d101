#!/bin/bash
# Cross-builds socksgate for router CPUs with Debian's cross compilers and
# multiarch libraries (cmake/toolchain-ARCH.cmake), MinSizeRel, and prints
# the stripped size of socksgated per architecture.
#   ./scripts/cross-build.sh                 aarch64 armhf mipsel
#   ./scripts/cross-build.sh --test [ARCH..] also runs the unit tests under
#                                            qemu-user (default: aarch64
#                                            armhf mipsel s390x)
# s390x is there for its byte order (big-endian), not as a router: the
# golden netlink-builder listings are checked on it (tests/golden/be/).
# Unit tests use tests/crshim (Debian 12 has no libcriterion for armhf,
# mipsel or s390x); qemu-user cannot do netfilter netlink, and no unit
# test needs it (nft/fw.c is tested against a fake kernel); the
# end-to-end tests stay native.  Builds go to build-cross/ARCH.  Root on
# Debian 12 (installs what it needs: scripts/deps.sh --cross).
set -uo pipefail
cd "$(dirname "$0")/.."
test=0
if [ "${1:-}" = --test ]; then
	test=1
	shift
fi
archs=("$@")
if [ ${#archs[@]} -eq 0 ]; then
	archs=(aarch64 armhf mipsel)
	[ $test = 1 ] && archs+=(s390x)
fi
triple() {
	case $1 in
	aarch64) echo aarch64-linux-gnu ;;
	armhf) echo arm-linux-gnueabihf ;;
	mipsel) echo mipsel-linux-gnu ;;
	s390x) echo s390x-linux-gnu ;;
	*) return 1 ;;
	esac
}
for a in "${archs[@]}"; do
	triple "$a" >/dev/null || { echo "cross-build: unknown architecture $a (aarch64 armhf mipsel s390x)"; exit 2; }
done
./scripts/deps.sh --cross "${archs[@]}" || exit 1

rc=0 sizes=()
for a in "${archs[@]}"; do
	t0=$(date +%s)
	dir=build-cross/$a
	mkdir -p "$dir"
	opts=(-DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-$a.cmake -DCMAKE_BUILD_TYPE=MinSizeRel
		-DSG_WERROR=ON -DSG_TESTS=$([ $test = 1 ] && echo ON || echo OFF) -DSG_TEST_SHIM=ON)
	if ! cmake -S . -B "$dir" "${opts[@]}" >"$dir/build.log" 2>&1 ||
		! cmake --build "$dir" -j"$(nproc)" >>"$dir/build.log" 2>&1; then
		tail -30 "$dir/build.log"
		echo "cross-build: $a: build FAILED ($dir/build.log)"
		rc=1
		continue
	fi
	"$(triple "$a")-strip" -o "$dir/socksgated.stripped" "$dir/socksgated"
	sizes+=("$(printf '%-8s %8d bytes  %s' "$a" "$(stat -c %s "$dir/socksgated.stripped")" \
		"$(file -b "$dir/socksgated" | cut -d, -f1-2)")")
	if [ $test = 1 ]; then
		if (cd "$dir" && ctest --output-on-failure >ctest.log 2>&1); then
			echo "cross-build: $a: $(grep -E 'tests passed' "$dir/ctest.log") ($(($(date +%s) - t0))s with the build)"
		else
			grep -E "FAIL|Assertion|tests passed|Synthesis" "$dir/ctest.log" | head -40
			echo "cross-build: $a: unit tests FAILED under qemu ($dir/ctest.log)"
			rc=1
		fi
	fi
done
echo "stripped socksgated (MinSizeRel, glibc, dynamically linked):"
printf '  %s\n' "${sizes[@]}"
exit $rc
