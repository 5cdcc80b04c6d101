/*
 * Unit tests for conntrack/ct_probe's pure verdict: which PTCLs the kernel
 * can relay, given what the probe found (no kernel needed).
 */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>

#include "ct_probe.h"

Test(ct_probe, tcp_and_udp_need_no_probe)
{
	cr_assert_null(ct_relay_verdict(IPPROTO_TCP, -1, -1));
	cr_assert_null(ct_relay_verdict(IPPROTO_UDP, 0, 1));
	/* ...and are never probed. */
	cr_assert_null(ct_relay_unsupported(IPPROTO_TCP));
	cr_assert_null(ct_relay_unsupported(IPPROTO_UDP));
}

Test(ct_probe, ports_must_be_tracked)
{
	cr_assert_null(ct_relay_verdict(IPPROTO_SCTP, 1, 1));
	cr_assert_null(ct_relay_verdict(IPPROTO_DCCP, 1, 1));
	cr_assert_not_null(strstr(ct_relay_verdict(IPPROTO_DCCP, 0, 0),
				  "no DCCP connection tracking"));
	cr_assert_not_null(strstr(ct_relay_verdict(IPPROTO_SCTP, 0, 0),
				  "no SCTP connection tracking"));
	cr_assert_not_null(strstr(ct_relay_verdict(IPPROTO_UDPLITE, 0, 0),
				  "no UDP-Lite connection tracking"));
	/* Cannot tell: refused (fail closed). */
	cr_assert_not_null(ct_relay_verdict(IPPROTO_SCTP, -1, 0));
}

Test(ct_probe, udplite_needs_checksum_off)
{
	cr_assert_null(ct_relay_verdict(IPPROTO_UDPLITE, 1, 0));
	cr_assert_not_null(strstr(ct_relay_verdict(IPPROTO_UDPLITE, 1, 1),
				  "nf_conntrack_checksum"));
	/* Unreadable setting: assume the kernel's default (on). */
	cr_assert_not_null(ct_relay_verdict(IPPROTO_UDPLITE, 1, -1));
	/* The checksum setting matters to UDP-Lite only. */
	cr_assert_null(ct_relay_verdict(IPPROTO_SCTP, 1, 1));
}
