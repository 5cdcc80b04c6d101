#!/bin/bash
# Installs everything socksgate needs to build, test, benchmark and demo
# on Debian 12, from Debian's packages.  Idempotent; run as root.
set -euo pipefail
PKGS=(
	# build
	build-essential cmake pkg-config clang libclang-rt-14-dev clang-format
	libnftnl-dev libmnl-dev libnetfilter-conntrack-dev libev-dev
	libc-ares-dev libcriterion-dev libcrypt-dev
	# kernel tools, audit, namespaces; iptables (-nft) for the firewall tests
	nftables conntrack iproute2 procps kmod iptables
	# real peers for the tests and the demo
	curl proxychains4 python3 python3-socks dante-client dante-server
	microsocks iperf3 socat whois
	# unmodified programs under `socksgate run`, and their servers
	ncat bind9-dnsutils openssh-client dropbear-bin dnsmasq-base
	# benchmark charts
	gnuplot-nox
)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Conntrack events and accounting must be available in namespaces.
modprobe nf_conntrack 2>/dev/null || true
echo "deps: ok"
