/*
 * sg_fwscan: the firewall check of nft/fw_scan.c, alone (tests).
 *   sg_fwscan judge          read this namespace's ruleset, print the report
 *   sg_fwscan dump FILE      record the dump's netlink messages in FILE
 *                            (tests/fixtures/: unit-test input)
 *   sg_fwscan replay FILE    judge a recorded dump, print the report
 * The report is one line per forward base chain:
 *   FAMILY TABLE CHAIN kind=K new=FATE est=FATE | WHY-NEW | WHY-EST
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libmnl/libmnl.h>

#include "fw_judge.h"
#include "fw_scan.h"

static const char *kind_str(enum fw_kind k)
{
	static const char *const n[] = {"nft", "fw4", "firewalld", "iptables",
					"docker"};
	return (unsigned)k < sizeof(n) / sizeof(n[0]) ? n[k] : "?";
}

static void print(const struct fw_report *r)
{
	char fix[256];

	printf("tables %zu chains %zu rules %zu blocks-new %d blocks-est %d "
	       "legacy %d %d\n",
	       r->tables, r->chains, r->rules, r->blocks[FW_PKT_NEW],
	       r->blocks[FW_PKT_EST], r->legacy[0], r->legacy[1]);
	for (size_t i = 0; i < r->n; i++) {
		const struct fw_finding *f = &r->f[i];
		fw_judge_fix(f, fix, sizeof(fix));
		printf("%s %s %s kind=%s new=%s est=%s | %s | %s\n  fix: %s\n",
		       fw_judge_family(f->family), f->table, f->chain,
		       kind_str(f->kind),
		       fw_judge_fate_str(f->fate[FW_PKT_NEW]),
		       fw_judge_fate_str(f->fate[FW_PKT_EST]),
		       f->why[FW_PKT_NEW], f->why[FW_PKT_EST], fix);
	}
}

static int write_msg(void *arg, const struct nlmsghdr *nlh)
{
	FILE *f = arg;
	static const char pad[4];
	size_t len = nlh->nlmsg_len;

	if (fwrite(nlh, 1, len, f) != len ||
	    fwrite(pad, 1, NLMSG_ALIGN(len) - len, f) != NLMSG_ALIGN(len) - len)
		return -1;
	return 0;
}

static int replay(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct fw_model *m = fw_model_new();
	struct fw_report r = {0};
	char *buf = NULL;
	long len;

	if (f == NULL || m == NULL || fseek(f, 0, SEEK_END) < 0 ||
	    (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0 ||
	    (buf = malloc((size_t)len + 1)) == NULL ||
	    fread(buf, 1, (size_t)len, f) != (size_t)len) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return 1;
	}
	fclose(f);
	int left = (int)len;
	for (struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
	     mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left))
		if (fw_model_add(m, nlh) < 0) {
			fprintf(stderr, "%s: bad message\n", path);
			return 1;
		}
	if (fw_judge(m, &r) < 0)
		return 1;
	print(&r);
	fw_model_free(m);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	char err[256];

	if (argc == 2 && strcmp(argv[1], "judge") == 0) {
		struct fw_report r;
		if (fw_scan(&r, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		print(&r);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "dump") == 0) {
		FILE *f = fopen(argv[2], "wb");
		if (f == NULL) {
			perror(argv[2]);
			return 1;
		}
		if (fw_scan_dump(write_msg, f, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		return fclose(f) == 0 ? 0 : 1;
	}
	if (argc == 3 && strcmp(argv[1], "replay") == 0)
		return replay(argv[2]);
	fprintf(stderr, "usage: sg_fwscan judge | dump FILE | replay FILE\n");
	return 2;
}
