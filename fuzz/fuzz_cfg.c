/*
 * libFuzzer target for the configuration parser: any text must give
 * either a configuration or a "file:line: message" error, never a crash
 * or a leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg c;
	char err[512];

	if (cfg_parse_buf((const char *)data, size, "fuzz.conf", &c, err,
			  sizeof(err)) == 0) {
		cfg_free(&c);
	} else if (strncmp(err, "fuzz.conf:", 10) != 0) {
		abort();
	}
	return 0;
}
