#!/bin/bash
# Builds the Debian packages (dpkg-buildpackage -b, unit tests off:
# DEB_BUILD_OPTIONS=nocheck) from a copy of the work tree, installs them
# with dpkg -i, checks what a user would check, and purges them: the
# machine is left as it was (packages, the socksgate user, policy-rc.d).
# The service is never started: a policy-rc.d that refuses every start is
# in place while the packages are installed.  Root on Debian 12.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PKGS=(socksgated socksgate libsocksgate0 libsocksgate-dev)
t0=$(date +%s)
fail() { echo "test-package: FAILED: $*"; exit 1; }
ok() { echo "  ok: $*"; }

./scripts/deps.sh --package || fail "build dependencies"
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" &&
		fail "$p is already installed: not touching this machine's packages"
done
user_before=$(getent passwd socksgate)
sess_before=$(getent passwd socksgate-session)

TMP=$(mktemp -d /tmp/sg-package.XXXXXX)
POLICY=/usr/sbin/policy-rc.d
cleanup() {
	dpkg --purge "${PKGS[@]}" >/dev/null 2>&1
	if [ -e "$TMP/policy-rc.d.saved" ]; then
		mv "$TMP/policy-rc.d.saved" "$POLICY"
	elif [ -e "$TMP/policy-rc.d.ours" ]; then
		rm -f "$POLICY"
	fi
	if [ -z "$user_before" ] && getent passwd socksgate >/dev/null; then
		echo "test-package: purge left the socksgate user: removing it"
		deluser --system --quiet socksgate
	fi
	if [ -z "$sess_before" ] && getent passwd socksgate-session >/dev/null; then
		echo "test-package: purge left the socksgate-session user: removing it"
		deluser --system --quiet socksgate-session
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

# Build from a copy: dpkg-buildpackage writes beside the source tree.
src=$TMP/socksgate-0.1.0
mkdir -p "$src"
git ls-files -co --exclude-standard | grep -v '^build' | tar -cf - -T - | tar -xf - -C "$src"
echo "test-package: building in $src"
(cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
	dpkg-buildpackage -b -us -uc -Pnocheck >"$TMP/build.log" 2>&1) ||
	{ tail -40 "$TMP/build.log"; fail "dpkg-buildpackage"; }
t_build=$(($(date +%s) - t0))
debs=()
for p in "${PKGS[@]}"; do
	f=$(ls "$TMP"/${p}_*.deb 2>/dev/null | head -1)
	[ -n "$f" ] || fail "no $p .deb"
	debs+=("$f")
done
ok "built: $(cd "$TMP" && ls ./*.deb | tr '\n' ' ')(${t_build}s)"

# Never start the service: refuse every start while we install.
[ -e "$POLICY" ] && cp -p "$POLICY" "$TMP/policy-rc.d.saved"
printf '#!/bin/sh\nexit 101\n' >"$POLICY" && chmod 755 "$POLICY" && touch "$TMP/policy-rc.d.ours"
dpkg -i "${debs[@]}" >"$TMP/install.log" 2>&1 || { cat "$TMP/install.log"; fail "dpkg -i"; }
ok "installed: ${PKGS[*]}"

# The daemon package's files, its conffile and the unit.
for f in /usr/sbin/socksgated /lib/systemd/system/socksgated.service \
	/etc/socksgate/socksgated.conf /usr/share/man/man8/socksgated.8.gz \
	/usr/share/man/man5/socksgated.conf.5.gz; do
	dpkg -S "$f" 2>/dev/null | grep -q '^socksgated:' || fail "$f is not in socksgated"
	[ -e "$f" ] || fail "$f missing"
done
dpkg-query -W -f='${Conffiles}\n' socksgated | grep -q '/etc/socksgate/socksgated.conf' ||
	fail "/etc/socksgate/socksgated.conf is not a conffile"
grep -q '^ExecStart=/usr/sbin/socksgated ' /lib/systemd/system/socksgated.service ||
	fail "the unit does not start /usr/sbin/socksgated"
[ -e /etc/systemd/system/multi-user.target.wants/socksgated.service ] ||
	fail "the unit is not enabled"
ok "socksgated: daemon, unit (enabled, not started), conffile, man pages"
for f in /usr/bin/socksgate /usr/share/man/man1/socksgate.1.gz; do
	dpkg -S "$f" 2>/dev/null | grep -q '^socksgate:' || fail "$f is not in socksgate"
done
socksgate --help >/dev/null 2>&1 || socksgate -h >/dev/null 2>&1 || fail "socksgate does not run"
ok "socksgate: command and man page"

# The system users: the agent's and the session process's.
for name in socksgate socksgate-session; do
	u=$(getent passwd $name) || fail "no $name user"
	case $u in
	*:/usr/sbin/nologin | *:/bin/false) ;;
	*) fail "$name user has a login shell: $u" ;;
	esac
	[ "$(echo "$u" | cut -d: -f3)" -lt 1000 ] || fail "$name is not a system user: $u"
	ok "user: $u"
done

# The installed configuration checks.
/usr/sbin/socksgated -n -c /etc/socksgate/socksgated.conf || fail "socksgated -n"
ok "socksgated -n -c /etc/socksgate/socksgated.conf"

# The library: pkg-config, then a program built and run against it.
flags=$(pkg-config --cflags --libs socksgate) || fail "pkg-config socksgate"
ok "pkg-config --cflags --libs socksgate: $flags"
cat >"$TMP/try.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <sgclient.h>

int main(void)
{
	struct s5_addr a;

	if (sgc_parse_hostport("[2001:db8::1]:1080", &a) != 0 ||
	    a.atyp != S5_ATYP_IPV6 || a.port != 1080)
		return 1;
	if (strcmp(sgc_result_str(SGC_ERR_TIMEOUT), "timeout") != 0)
		return 1;
	printf("libsocksgate: %s\n", s5_rep_str(S5_REP_SUCCEEDED));
	return 0;
}
C
# shellcheck disable=SC2086 # $flags is a list of options
cc -Wall -Werror -o "$TMP/try" "$TMP/try.c" $flags || fail "compiling against libsocksgate"
ldd "$TMP/try" | grep -q "libsocksgate.so.0 => /\(usr/\)\?lib/" || fail "not linked to the installed libsocksgate.so.0"
"$TMP/try" || fail "the program linked to libsocksgate"
ok "a program built with pkg-config socksgate runs against /usr/lib/*/libsocksgate.so.0"

# Purge: nothing of ours may remain.
dpkg --purge "${PKGS[@]}" >"$TMP/purge.log" 2>&1 || { cat "$TMP/purge.log"; fail "dpkg --purge"; }
[ -e /etc/socksgate/socksgated.conf ] && fail "purge left /etc/socksgate/socksgated.conf"
[ -z "$user_before" ] && getent passwd socksgate >/dev/null && fail "purge left the socksgate user"
ok "purged: no file, no user left"
echo "test-package: passed (build ${t_build}s, all $(($(date +%s) - t0))s)"
