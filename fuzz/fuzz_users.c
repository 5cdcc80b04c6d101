/*
 * libFuzzer target for the users file parser (auth_parse_buf, what
 * auth_load runs on the file's bytes): any bytes give a database or a
 * "file:line: message" error, never a crash or a leak; a database holds
 * at most one user per line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	size_t lines = 1;
	struct auth_db *db;

	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	db = auth_parse_buf((const char *)data, size, "fuzz.users", err,
			    sizeof(err));
	if (db == NULL) {
		if (strncmp(err, "fuzz.users:", 11) != 0)
			abort();
		return 0;
	}
	if (auth_count(db) > lines)
		abort();
	auth_free(db);
	return 0;
}
