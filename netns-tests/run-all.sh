#!/bin/bash
# Runs every netns-tests/test-*.sh (or the ones named) and prints a
# summary.  Exit 0 only if none failed (skips are reported, not failures).
cd "$(dirname "$0")" || exit 1
# Without arguments, the CONNECT tests run a second time with the kernel
# relay (RELAY_MODE=sockmap: `connect-relay sockmap` in their config); one
# such run by name: RELAY_MODE=sockmap:test-connect-curl.sh.
tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
	tests=(test-*.sh)
	for t in test-connect-curl.sh test-connect-clients.sh test-connect-backpressure.sh \
		test-connect-relay.sh test-robustness.sh test-run.sh; do
		tests+=("RELAY_MODE=sockmap:$t")
	done
fi
pass=0 failn=0 skipn=0 failed=()
for t in "${tests[@]}"; do
	start=$(date +%s)
	echo "== $t"
	case $t in
	RELAY_MODE=*:*) m=${t%%:*}; RELAY_MODE=${m#RELAY_MODE=} timeout 600 "./${t#*:}" ;;
	*) timeout 600 "./$t" ;;
	esac
	rc=$?
	dur=$(($(date +%s) - start))
	case $rc in
	0) pass=$((pass + 1)); echo "== $t: PASS (${dur}s)" ;;
	77) skipn=$((skipn + 1)); echo "== $t: SKIP (${dur}s)" ;;
	*) failn=$((failn + 1)); failed+=("$t"); echo "== $t: FAIL rc=$rc (${dur}s)" ;;
	esac
done
echo "netns tests: $pass passed, $failn failed, $skipn skipped"
[ $failn -eq 0 ] || { echo "failed: ${failed[*]}"; exit 1; }
