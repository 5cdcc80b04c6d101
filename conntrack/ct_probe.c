/*
 * ct_probe: see ct_probe.h.
 *
 * The probe asks ctnetlink for an entry whose tuple names the protocol but
 * no ports.  For a protocol conntrack tracks with ports the kernel parses
 * the tuple with nf_ct_port_nlattr_to_tuple(), which requires both ports:
 * EINVAL.  For a protocol it does not know, the tuple goes to the generic
 * tracker, which has no port attributes, and the lookup simply finds
 * nothing: ENOENT (or the entry, if one exists).  Nothing is created or
 * changed.  Because this reads an error code's meaning, the probe first
 * checks that TCP gives EINVAL and an unassigned protocol (253, RFC 3692
 * experimentation) does not; otherwise it answers "cannot tell".
 */
#include "ct_probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/time.h> /* struct timeval: not implied on musl */
#include <time.h>

#define PROBE_UNASSIGNED 253

/* One GET without ports; returns 0 (found), or -errno. */
static int get_noports(struct mnl_socket *nl, uint8_t proto, uint32_t seq)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfg;
	struct nlattr *tuple, *nest;
	uint32_t lo = htonl(INADDR_LOOPBACK),
		 portid = mnl_socket_get_portid(nl);
	ssize_t n;
	int rc;

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_INET;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
	tuple = mnl_attr_nest_start(nlh, CTA_TUPLE_ORIG);
	nest = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	mnl_attr_put_u32(nlh, CTA_IP_V4_SRC, lo);
	mnl_attr_put_u32(nlh, CTA_IP_V4_DST, lo);
	mnl_attr_nest_end(nlh, nest);
	nest = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, proto);
	mnl_attr_nest_end(nlh, nest);
	mnl_attr_nest_end(nlh, tuple);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		/* An entry (if one exists) comes before the ACK. */
		rc = mnl_cb_run(buf, (size_t)n, seq, portid, NULL, NULL);
		if (rc == MNL_CB_ERROR)
			return errno ? -errno : -EIO;
		if (rc == MNL_CB_STOP)
			return 0;
	}
}

int ct_probe_ports(uint8_t proto)
{
	struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
	uint32_t seq = (uint32_t)time(NULL);
	int tcp, none, p = -1;

	if (nl == NULL)
		return -1;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
		goto out;
	/* Called from the daemon's loop: never wait long for the kernel. */
	struct timeval tv = {.tv_sec = 1};
	setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv,
		   sizeof(tv));
	tcp = get_noports(nl, IPPROTO_TCP, seq++);
	none = get_noports(nl, PROBE_UNASSIGNED, seq++);
	if (tcp != -EINVAL || (none != 0 && none != -ENOENT))
		goto out; /* the kernel does not answer as expected */
	p = get_noports(nl, proto, seq);
	if (p == -EINVAL)
		p = 1;
	else if (p == 0 || p == -ENOENT)
		p = 0;
	else
		p = -1;
out:
	mnl_socket_close(nl);
	return p;
}

int ct_checksum_setting(void)
{
	FILE *f = fopen("/proc/sys/net/netfilter/nf_conntrack_checksum", "re");
	int v = -1;

	if (f == NULL)
		return -1;
	if (fscanf(f, "%d", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

const char *ct_relay_verdict(uint8_t proto, int ports, int checksum)
{
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP)
		return NULL;
	if (ports < 0)
		return "cannot tell whether the kernel's conntrack tracks this "
		       "protocol's ports (ctnetlink probe failed)";
	if (ports == 0) {
		switch (proto) {
		case IPPROTO_DCCP:
			return "this kernel has no DCCP connection tracking "
			       "(CONFIG_NF_CT_PROTO_DCCP; recent kernels "
			       "dropped "
			       "DCCP), so NAT cannot map DCCP ports";
		case IPPROTO_SCTP:
			return "this kernel has no SCTP connection tracking "
			       "(CONFIG_NF_CT_PROTO_SCTP), so NAT cannot map "
			       "SCTP ports";
		case IPPROTO_UDPLITE:
			return "this kernel has no UDP-Lite connection "
			       "tracking (CONFIG_NF_CT_PROTO_UDPLITE), so NAT "
			       "cannot map UDP-Lite ports";
		default:
			return "this kernel's conntrack does not track this "
			       "protocol's ports, so NAT cannot map them";
		}
	}
	if (proto == IPPROTO_UDPLITE && checksum != 0)
		return "conntrack judges every correct UDP-Lite datagram "
		       "invalid while net.netfilter.nf_conntrack_checksum is "
		       "on (it verifies UDP-Lite with UDP's pseudo-header), "
		       "and "
		       "invalid packets are never NATed; set it to 0 in the "
		       "gateway's namespace to relay UDP-Lite";
	return NULL;
}

/* What the kernel's conntrack can track does not change while modules
 * stay loaded: a probe (a netlink socket, three queries) is remembered for
 * a minute per protocol, so a flood of requests does not become a flood
 * of probes.  A per-process cache of a kernel fact. */
#define PROBE_CACHE_SECS 60

const char *ct_relay_unsupported(uint8_t proto)
{
	static struct {
		time_t at;
		int ports;
	} cache[256];
	struct timespec now;
	int ports;

	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP)
		return NULL;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (cache[proto].at != 0 &&
	    now.tv_sec - cache[proto].at < PROBE_CACHE_SECS) {
		ports = cache[proto].ports;
	} else {
		ports = ct_probe_ports(proto);
		if (ports >= 0) {
			cache[proto].at = now.tv_sec ? now.tv_sec : 1;
			cache[proto].ports = ports;
		}
	}
	return ct_relay_verdict(proto, ports,
				proto == IPPROTO_UDPLITE ? ct_checksum_setting()
							 : 0);
}
