/*
 * Unit tests for nft/fw_build: the rules, sets and elements socksgated
 * installs, compared against golden expression listings (tests/golden/),
 * which are what `nft --debug=netlink` prints for the equivalent nft
 * syntax in ../shared/DESIGN.md.  No kernel needed.
 *
 * SG_GOLDEN_WRITE=1 rewrites the golden files (review the diff!).
 *
 * libnftnl prints register data as 32-bit words in host byte order, so a
 * big-endian host (s390x under qemu: scripts/cross-build.sh) prints other
 * text for the same bytes and has its own listings, tests/golden/be/.
 * They differ from the little-endian ones only where the bytes are not a
 * host-order u32: byte strings (addresses) and the 1-byte meta nfproto
 * compare print swapped; ct mark and ct state values (host-order u32 in
 * the kernel) print the same.  A byte-order mistake breaks one of the
 * two runs: a u32 where the kernel has a u8, a port or address in host
 * order, a mark in network order.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libnftnl/rule.h>
#include <libnftnl/set.h>

#include "fw_build.h"

#ifndef SG_GOLDEN_DIR
#define SG_GOLDEN_DIR "tests/golden"
#endif
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define GOLDEN_SUBDIR "/be"
#else
#define GOLDEN_SUBDIR ""
#endif

static void render_rules(enum fw_chain_kind k, const struct fw_snat *snat,
			 char *out, size_t cap)
{
	static const int fams[] = {AF_INET, AF_INET6};
	size_t off = 0;

	out[0] = '\0';
	for (int f = 0; f < 2; f++) {
		struct nftnl_rule *r[FW_MAX_RULES];
		size_t n = fw_build_rules(k, fams[f], snat, r, FW_MAX_RULES);
		for (size_t i = 0; i < n; i++) {
			off += (size_t)nftnl_rule_snprintf(out + off, cap - off,
							   r[i], 0, 0);
			off += (size_t)snprintf(out + off, cap - off, "\n");
			nftnl_rule_free(r[i]);
		}
	}
}

static void check_golden(const char *name, const char *got)
{
	char path[512], want[16384];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s%s/%s", SG_GOLDEN_DIR, GOLDEN_SUBDIR,
		 name);
	if (getenv("SG_GOLDEN_WRITE")) {
		f = fopen(path, "w");
		cr_assert_not_null(f);
		fputs(got, f);
		fclose(f);
	}
	f = fopen(path, "r");
	cr_assert_not_null(f, "missing golden file %s", path);
	n = fread(want, 1, sizeof(want) - 1, f);
	want[n] = '\0';
	fclose(f);
	cr_assert_str_eq(got, want, "%s differs:\n--- got\n%s", name, got);
}

Test(fw_build, guard_rules)
{
	char buf[16384];
	struct fw_snat snat = {.mode = FW_SNAT_MASQUERADE};

	render_rules(FW_CHAIN_GUARD, &snat, buf, sizeof(buf));
	check_golden("guard.txt", buf);
}

Test(fw_build, pre_rules)
{
	char buf[16384];
	struct fw_snat snat = {.mode = FW_SNAT_MASQUERADE};

	render_rules(FW_CHAIN_PRE, &snat, buf, sizeof(buf));
	check_golden("pre.txt", buf);
}

Test(fw_build, post_masquerade)
{
	char buf[16384];
	struct fw_snat snat = {.mode = FW_SNAT_MASQUERADE};

	render_rules(FW_CHAIN_POST, &snat, buf, sizeof(buf));
	check_golden("post-masquerade.txt", buf);
}

Test(fw_build, post_snat_address)
{
	char buf[16384];
	struct fw_snat snat = {
		.mode = FW_SNAT_ADDRESS, .has4 = true, .has6 = true};

	inet_pton(AF_INET, "198.18.1.1", snat.addr4);
	inet_pton(AF_INET6, "2001:db8:1::1", snat.addr6);
	render_rules(FW_CHAIN_POST, &snat, buf, sizeof(buf));
	check_golden("post-snat.txt", buf);
}

Test(fw_build, post_none_has_no_rule)
{
	char buf[64];
	struct fw_snat snat = {.mode = FW_SNAT_NONE};

	render_rules(FW_CHAIN_POST, &snat, buf, sizeof(buf));
	cr_assert_str_eq(buf, "");
}

static struct fw_flow flow4(void)
{
	struct fw_flow f = {.family = AF_INET,
			    .proto = 6,
			    .sport = 40000,
			    .bport = 20000,
			    .dport = 7000,
			    .mark = FW_MARK_TAG | 1};
	inet_pton(AF_INET, "198.18.0.2", f.saddr);
	inet_pton(AF_INET, "198.18.0.1", f.baddr);
	inet_pton(AF_INET, "198.18.1.2", f.daddr);
	f.comment = "assoc 1";
	return f;
}

static const uint8_t *elem_key(struct nftnl_set *s, uint32_t *len)
{
	struct nftnl_set_elems_iter *it = nftnl_set_elems_iter_create(s);
	struct nftnl_set_elem *e = nftnl_set_elems_iter_next(it);
	const uint8_t *k = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, len);
	nftnl_set_elems_iter_destroy(it);
	return k;
}

Test(fw_build, assoc_key_layout)
{
	struct fw_flow f = flow4();
	struct nftnl_set *s = fw_build_elem(FW_SET_ASSOC, &f);
	uint32_t len;
	const uint8_t *k = elem_key(s, &len);
	/* saddr . proto(padded) . sport(padded) . baddr . bport(padded) */
	const uint8_t want[] = {198, 18, 0,   2,  6, 0, 0,    0,    0x9c, 0x40,
				0,   0,	 198, 18, 0, 1, 0x4e, 0x20, 0,	  0};

	cr_assert_eq(len, sizeof(want));
	cr_assert_arr_eq(k, want, sizeof(want));
	nftnl_set_free(s);
}

Test(fw_build, bound_key_and_v6_lengths)
{
	struct fw_flow f = flow4();
	struct nftnl_set *s = fw_build_elem(FW_SET_BOUND, &f);
	uint32_t len;
	const uint8_t *k = elem_key(s, &len);
	const uint8_t want[] = {198, 18, 0, 1, 0x4e, 0x20, 0, 0};

	cr_assert_eq(len, 8);
	cr_assert_arr_eq(k, want, 8);
	nftnl_set_free(s);
	f.family = AF_INET6;
	s = fw_build_elem(FW_SET_ASSOC, &f);
	elem_key(s, &len);
	cr_assert_eq(len, 44);
	nftnl_set_free(s);
}

Test(fw_build, set_types_print_in_nft_notation)
{
	struct nftnl_set *s = fw_build_set(FW_SET_DNAT, AF_INET6);

	/* ipv6_addr . inet_proto . inet_service . ipv6_addr . inet_service,
	 * as nft computes it (6 bits per datatype id). */
	cr_assert_eq(nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE), 0x0830d20d);
	cr_assert_eq(nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN), 44);
	cr_assert_eq(nftnl_set_get_u32(s, NFTNL_SET_DATA_TYPE), 0x20d);
	cr_assert_eq(nftnl_set_get_u32(s, NFTNL_SET_DATA_LEN), 20);
	nftnl_set_free(s);
	cr_assert_str_eq(fw_set_name(FW_SET_MARK, AF_INET), "mark4");
}
