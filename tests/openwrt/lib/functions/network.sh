# Test stub of OpenWrt's /lib/functions/network.sh (which asks netifd
# over ubus): the interfaces' addresses come from the environment,
#   SG_NET_<iface>_IPADDRS  SG_NET_<iface>_IPADDRS6   (addresses)
#   SG_NET_<iface>_SUBNETS  SG_NET_<iface>_SUBNETS6   (ADDRESS/PREFIX)
# Same calling convention: network_get_* VAR IFACE, false when empty.

_sg_net() {
	local v
	eval "v=\${SG_NET_${3}_${2}}"
	eval "$1=\$v"
	[ -n "$v" ]
}

network_get_ipaddrs() { _sg_net "$1" IPADDRS "$2"; }
network_get_ipaddrs6() { _sg_net "$1" IPADDRS6 "$2"; }
network_get_subnets() { _sg_net "$1" SUBNETS "$2"; }
network_get_subnets6() { _sg_net "$1" SUBNETS6 "$2"; }
