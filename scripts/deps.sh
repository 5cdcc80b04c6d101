#!/bin/bash
# Installs everything socksgate needs to build, test, benchmark and demo
# on Debian 12, from Debian's packages.  Idempotent; run as root.
#   ./scripts/deps.sh                    what the test command needs
#   ./scripts/deps.sh --cross ARCH...    cross compilers, qemu-user and the
#                                        libraries for ARCH (aarch64 armhf
#                                        mipsel s390x): scripts/cross-build.sh
#   ./scripts/deps.sh --package          what dpkg-buildpackage needs
set -euo pipefail
install_missing() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# A foreign architecture's index may be briefly out of sync on the
	# mirror: let the install say whether what we need is there.
	apt-get update -qq || echo "deps: apt-get update reported errors (going on)"
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
if [ "${1:-}" = --cross ]; then
	shift
	pkgs=(qemu-user-static file)
	for a in "$@"; do
		case $a in
		aarch64) d=arm64 t=aarch64-linux-gnu ;;
		armhf) d=armhf t=arm-linux-gnueabihf ;;
		mipsel) d=mipsel t=mipsel-linux-gnu ;;
		s390x) d=s390x t=s390x-linux-gnu ;;
		*) echo "deps: unknown architecture $a"; exit 2 ;;
		esac
		dpkg --print-foreign-architectures | grep -qx "$d" || dpkg --add-architecture "$d"
		# The cross libc (-cross, architecture all) rather than
		# libc6-dev:ARCH, whose linux-libc-dev:ARCH must match the
		# host's version exactly.
		pkgs+=("gcc-$t" "libc6-dev-$d-cross")
		for l in libnftnl-dev libmnl-dev libnetfilter-conntrack-dev libev-dev \
			libc-ares-dev libcrypt-dev; do
			pkgs+=("$l:$d")
		done
	done
	install_missing "${pkgs[@]}"
	echo "deps: cross ok"
	exit 0
fi
if [ "${1:-}" = --package ]; then
	install_missing debhelper dpkg-dev adduser
	echo "deps: package ok"
	exit 0
fi
PKGS=(
	# build
	build-essential cmake pkg-config clang libclang-rt-14-dev clang-format
	libnftnl-dev libmnl-dev libnetfilter-conntrack-dev libev-dev
	libc-ares-dev libcriterion-dev libcrypt-dev
	# the kernel relay's BPF program (SG_SOCKMAP): clang above, and
	bpftool libbpf-dev
	# kernel tools, audit, namespaces; iptables (-nft) for the firewall tests
	nftables conntrack iproute2 procps kmod iptables
	# real peers for the tests and the demo
	curl proxychains4 python3 python3-socks dante-client dante-server
	microsocks iperf3 socat whois
	# unmodified programs under `socksgate run`, and their servers
	ncat bind9-dnsutils openssh-client dropbear-bin dnsmasq-base
	# OpenWrt: its shell (busybox ash) for the UCI translation test, and
	# its C library (musl) for scripts/musl-check.sh
	busybox musl-tools
	# benchmark charts
	gnuplot-nox
)
install_missing "${PKGS[@]}"
# Conntrack events and accounting must be available in namespaces.
modprobe nf_conntrack 2>/dev/null || true
echo "deps: ok"
