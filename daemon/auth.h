/*
 * auth: RFC 1929 credentials from a users file of `name:crypt-hash` lines
 * (yescrypt, SHA-512 or any other hash crypt(3) knows).  Blank lines and
 * `#` comments are allowed; errors are reported as "file:line: message".
 */
#ifndef SOCKSGATE_AUTH_H
#define SOCKSGATE_AUTH_H

#include <stdbool.h>
#include <stddef.h>

struct auth_db;

/* Returns a new database or NULL with err set. */
struct auth_db *auth_load(const char *path, char *err, size_t errlen);
struct auth_db *auth_parse_buf(const char *buf, size_t len, const char *fname,
			       char *err, size_t errlen);
void auth_free(struct auth_db *db);
size_t auth_count(const struct auth_db *db);
/*
 * True if user/pass are valid.  The work done does not depend on whether
 * the user exists or where the hashes differ: an unknown user is checked
 * against a dummy hash, and the hash comparison has no early exit.
 */
bool auth_check(const struct auth_db *db, const char *user, size_t ulen,
		const char *pass, size_t plen);

#endif
