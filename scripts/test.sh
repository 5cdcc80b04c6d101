#!/bin/bash
# The test command (README): installs the dependencies, builds with
# ASan+UBSan and -Werror, runs the unit tests, a bounded fuzzing run, and
# every end-to-end test in network namespaces.  Run as root on Debian 12.
#   FUZZ_SECONDS=20   seconds per fuzz target, 9 targets (0 skips fuzzing)
#   CROSS=1           unit tests of the aarch64, armhf, mipsel and s390x
#                     (big-endian) builds under qemu-user (0 skips them)
#   PACKAGE=1         build, install, check and purge the Debian packages
#                     (0 skips it)
set -uo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
CROSS=${CROSS:-1}
PACKAGE=${PACKAGE:-1}
t0=$(date +%s)
step() { echo; echo "### $* ($(($(date +%s) - t0))s)"; }
fail() { echo "### FAILED: $*"; exit 1; }

step "dependencies"
./scripts/deps.sh || fail "dependencies"

step "build (ASan+UBSan, -Werror)"
./scripts/build.sh build -DSG_SANITIZE=ON -DSG_WERROR=ON -DSG_BUILD_TOOLS=ON || fail "build"

step "formatting (clang-format)"
if ! git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror 2>&1 | head -20 | grep -q .; then
	echo "clang-format: clean"
else
	git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror 2>&1 | head -20
	fail "clang-format output differs (run: clang-format -i \$(git ls-files '*.c' '*.h'))"
fi

step "module dependencies (no cycle outside the session files)"
/usr/bin/python3 scripts/deps-graph.py | tail -3 || fail "a dependency cycle between modules"

step "unit tests"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build && ctest --output-on-failure) || fail "unit tests"

step "hardening (Release build of socksgated and socksgate, checked with readelf)"
# The sanitizer build above cannot show FORTIFY (ASan replaces it): a
# plain Release build of the two programs people install is checked.
{ cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DSG_TESTS=OFF -DSG_WERROR=ON >/dev/null &&
	cmake --build build-release -j"$(nproc)" --target socksgated socksgate >/dev/null; } ||
	fail "release build"
./scripts/check-hardening.sh build-release/socksgated build-release/socksgate ||
	fail "hardening flags missing from the release build"

step "musl: every source against musl's headers, client tests on musl"
./scripts/musl-check.sh || fail "musl"

step "OpenWrt: UCI to socksgated.conf translation (stubbed UCI helpers)"
SG_BUILD=$PWD/build ./tests/openwrt/test-uci2conf.sh || fail "OpenWrt UCI translation"

if [ "$CROSS" = 1 ]; then
	step "cross builds: unit tests under qemu-user (aarch64 armhf mipsel s390x)"
	./scripts/cross-build.sh --test || fail "cross builds"
fi

if [ "$PACKAGE" = 1 ]; then
	step "Debian packages: build, install, check, purge"
	./scripts/test-package.sh || fail "Debian packages"
fi

if [ "$FUZZ_SECONDS" -gt 0 ]; then
	step "fuzzing (${FUZZ_SECONDS}s per target)"
	./scripts/build.sh build-fuzz -DCMAKE_C_COMPILER=clang -DSG_FUZZ=ON -DSG_TESTS=OFF || fail "fuzz build"
	# Every parser that sees bytes from the network or a file; new inputs
	# go to build-fuzz/corpus-*, the committed seeds (fuzz/corpus/) are
	# only read.
	for f in fuzz_s5 fuzz_s5_auth fuzz_s5_udp fuzz_transparent \
		fuzz_addr_literal fuzz_ctl fuzz_cfg fuzz_users fuzz_kmsg; do
		mkdir -p "build-fuzz/corpus-$f"
		./build-fuzz/fuzz/$f -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 \
			"build-fuzz/corpus-$f" "fuzz/corpus/$f" 2>"build-fuzz/$f.log" ||
			{ tail -30 "build-fuzz/$f.log"; fail "$f found a bug"; }
		echo "$f: $(grep -o 'stat::number_of_executed_units: *[0-9]*' "build-fuzz/$f.log" | grep -o '[0-9]*$') executions, no crash"
	done
fi

step "end-to-end tests in network namespaces"
# The daemon's sanitizer reports go to its log, which the tests check.
export ASAN_OPTIONS=detect_leaks=1:log_path=stderr
SG_BUILD=$PWD/build ./netns-tests/run-all.sh || fail "netns tests"

step "all tests passed"
