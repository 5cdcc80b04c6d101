#!/bin/sh
# socksgate-iptables.sh add|remove|check
#
# Lets socksgated's relayed flows (TRANSPARENT: kernel NAT) through an
# iptables firewall whose FORWARD chain drops (policy DROP: every Docker
# host, many Debian hosts).  Inserts, first in the chain, the rule
#   -m connmark --mark 0x5a000000/0xff000000 -j ACCEPT
# for IPv4 and IPv6: in DOCKER-USER when Docker's chain exists (Docker
# leaves it to the administrator and jumps to it first), else in FORWARD.
# Idempotent.  Works with iptables-nft and iptables-legacy: set
# SG_IPTABLES="iptables-legacy ip6tables-legacy" for the latter.
#
#   add     insert the rule where it is missing
#   remove  delete it (every copy)
#   check   exit 0 if every family has it, 1 otherwise
#
# The rule does not survive a reboot or a flush of the filter table: run
# `add` at boot (socksgate-iptables.service) or save it with the host's
# rules (netfilter-persistent save).  See docs/firewalls.md.
set -u
RULE="-m connmark --mark 0x5a000000/0xff000000 -m comment --comment socksgate -j ACCEPT"
rc=0
for ipt in ${SG_IPTABLES:-iptables ip6tables}; do
	command -v "$ipt" >/dev/null 2>&1 || continue
	chain=FORWARD
	"$ipt" -w -n -L DOCKER-USER >/dev/null 2>&1 && chain=DOCKER-USER
	case ${1:-} in
	add)
		# shellcheck disable=SC2086
		"$ipt" -w -C "$chain" $RULE 2>/dev/null ||
			"$ipt" -w -I "$chain" 1 $RULE || rc=1
		;;
	remove)
		# shellcheck disable=SC2086
		while "$ipt" -w -D "$chain" $RULE 2>/dev/null; do :; done
		;;
	check)
		# shellcheck disable=SC2086
		"$ipt" -w -C "$chain" $RULE 2>/dev/null || rc=1
		;;
	*)
		echo "usage: $0 add|remove|check" >&2
		exit 2
		;;
	esac
done
exit $rc
