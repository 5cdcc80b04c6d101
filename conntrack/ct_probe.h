/*
 * ct_probe: can the kernel of this network namespace relay a PTCL?
 *
 * A TRANSPARENT relay is the kernel's NAT, and NAT maps ports only for
 * protocols conntrack tracks with ports (TCP and UDP always; SCTP, DCCP and
 * UDP-Lite only when built in: DCCP is gone from recent kernels (around
 * 6.16), and UDP-Lite conntrack is being removed too).  Any other protocol is
 * tracked "generic": the DNAT would rewrite the address but not the port, and
 * every flow between two hosts would share one entry.  So the daemon asks
 * before granting.
 *
 * UDP-Lite has a second condition: conntrack verifies its checksum with
 * UDP's pseudo-header (protocol 17, and on IPv4 with the length and
 * protocol arguments swapped), so every correct UDP-Lite datagram is
 * judged invalid, and invalid packets are never NATed.  Only with
 * net.netfilter.nf_conntrack_checksum=0 (no checksum verification in
 * prerouting) does it relay.  See docs/transparent.md.
 *
 * Must not: include libev or daemon headers.
 */
#ifndef SOCKSGATE_CT_PROBE_H
#define SOCKSGATE_CT_PROBE_H

#include <stdint.h>

/* Does conntrack track proto's ports?  1 yes, 0 no (generic tracking),
 * -1 cannot tell (no ctnetlink, or the kernel did not answer as the probe
 * expects for TCP and for an unassigned protocol). */
int ct_probe_ports(uint8_t proto);
/* net.netfilter.nf_conntrack_checksum: 0 or 1; -1 if unreadable. */
int ct_checksum_setting(void);
/* Pure: given those two facts, NULL if the kernel can relay proto, else
 * why not (a static string for the log). */
const char *ct_relay_verdict(uint8_t proto, int ports, int checksum);
/* Probes and decides (TCP and UDP need no probe).  NULL if proto can be
 * relayed, else why not. */
const char *ct_relay_unsupported(uint8_t proto);

#endif
