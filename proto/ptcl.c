/*
 * ptcl: see ptcl.h.
 */
#include "ptcl.h"

#include <stdlib.h>
#include <string.h>

static const struct {
	uint8_t num;
	const char *name;
} ptcls[] = {
#define PTCL_ROW(e, num, name) {num, name},
	PTCL_LIST(PTCL_ROW)
#undef PTCL_ROW
};

int ptcl_parse(const char *s, int allow_zero)
{
	char *end;
	long v;

	for (size_t i = 0; i < sizeof(ptcls) / sizeof(ptcls[0]); i++)
		if (strcmp(s, ptcls[i].name) == 0)
			return ptcls[i].num;
	if (*s < '0' || *s > '9')
		return -1;
	v = strtol(s, &end, 10);
	if (*end != '\0' || v < (allow_zero ? 0 : 1) || v > 255)
		return -1;
	return (int)v;
}

const char *ptcl_name(uint8_t p)
{
	for (size_t i = 0; i < sizeof(ptcls) / sizeof(ptcls[0]); i++)
		if (ptcls[i].num == p)
			return ptcls[i].name;
	return NULL;
}

int ptcl_has_ports(uint8_t p)
{
	return ptcl_name(p) != NULL;
}
