/*
 * auth: see auth.h.  crypt_rn(3) from libxcrypt with a per-call
 * struct crypt_data, so the module holds no static state.
 */
#include "auth.h"

#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct auth_user {
	char *name;
	char *hash;
};

struct auth_db {
	struct auth_user *users;
	size_t n;
	char dummy[CRYPT_OUTPUT_SIZE]; /* same-cost hash for unknown users */
};

void auth_free(struct auth_db *db)
{
	if (db == NULL)
		return;
	for (size_t i = 0; i < db->n; i++) {
		free(db->users[i].name);
		explicit_bzero(db->users[i].hash, strlen(db->users[i].hash));
		free(db->users[i].hash);
	}
	free(db->users);
	free(db);
}

size_t auth_count(const struct auth_db *db)
{
	return db ? db->n : 0;
}

struct auth_db *auth_parse_buf(const char *buf, size_t len, const char *fname,
			       char *err, size_t errlen)
{
	struct auth_db *db = calloc(1, sizeof(*db));
	size_t pos = 0, cap = 0;
	int lineno = 0;

	if (db == NULL) {
		snprintf(err, errlen, "%s: out of memory", fname);
		return NULL;
	}
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - (buf + pos)) : len - pos;
		const char *line = buf + pos, *colon;

		lineno++;
		pos += ll + (nl ? 1 : 0);
		while (ll > 0 && (line[ll - 1] == '\r' || line[ll - 1] == ' '))
			ll--;
		if (ll == 0 || line[0] == '#')
			continue;
		colon = memchr(line, ':', ll);
		if (colon == NULL || colon == line || colon == line + ll - 1 ||
		    colon - line > 255 || memchr(line, '\0', ll)) {
			snprintf(err, errlen, "%s:%d: expected name:crypt-hash",
				 fname, lineno);
			goto fail;
		}
		if (colon[1] != '$') {
			snprintf(err, errlen,
				 "%s:%d: hash must be a crypt(3) '$id$...' "
				 "string (e.g. from mkpasswd -m yescrypt)",
				 fname, lineno);
			goto fail;
		}
		if (db->n == cap) {
			cap = cap ? cap * 2 : 8;
			struct auth_user *nu =
				realloc(db->users, cap * sizeof(*nu));
			if (nu == NULL)
				goto oom;
			db->users = nu;
		}
		struct auth_user *u = &db->users[db->n];
		u->name = strndup(line, (size_t)(colon - line));
		u->hash = strndup(colon + 1, ll - (size_t)(colon - line) - 1);
		if (u->name == NULL || u->hash == NULL) {
			free(u->name);
			free(u->hash);
			goto oom;
		}
		db->n++;
		for (size_t i = 0; i + 1 < db->n; i++) {
			if (strcmp(db->users[i].name, u->name) == 0) {
				snprintf(err, errlen,
					 "%s:%d: user '%s' listed twice", fname,
					 lineno, u->name);
				goto fail;
			}
		}
	}
	/* The dummy hash uses the first user's setting so that an unknown
	 * name costs what a known one does. */
	if (db->n > 0) {
		snprintf(db->dummy, sizeof(db->dummy), "%s", db->users[0].hash);
	} else {
		snprintf(db->dummy, sizeof(db->dummy), "%s",
			 "$6$socksgate$invalid");
	}
	return db;
oom:
	snprintf(err, errlen, "%s:%d: out of memory", fname, lineno);
fail:
	auth_free(db);
	return NULL;
}

struct auth_db *auth_load(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, len = 0, got;
	struct auth_db *db;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	do {
		if (cap - len < 4096) {
			char *nb;
			if (cap > 16 * 1024 * 1024 ||
			    (nb = realloc(buf, cap + 65536)) == NULL) {
				snprintf(err, errlen, "%s: too large", path);
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap += 65536;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
	} while (got > 0);
	fclose(f);
	db = auth_parse_buf(buf ? buf : "", len, path, err, errlen);
	if (buf) {
		explicit_bzero(buf, len);
		free(buf);
	}
	return db;
}

bool auth_check(const struct auth_db *db, const char *user, size_t ulen,
		const char *pass, size_t plen)
{
	const char *hash = db->dummy;
	struct crypt_data *cd;
	bool known = false, ok;
	unsigned char diff = 0;
	size_t hl, cl;
	const char *out;

	/* Credentials with NUL bytes cannot match a C-string entry. */
	if (strlen(user) != ulen || strlen(pass) != plen)
		user = NULL;
	for (size_t i = 0; user && i < db->n; i++) {
		if (strcmp(db->users[i].name, user) == 0) {
			hash = db->users[i].hash;
			known = true;
			break;
		}
	}
	cd = calloc(1, sizeof(*cd));
	if (cd == NULL)
		return false;
	out = crypt_rn(pass, hash, cd, sizeof(*cd));
	if (out == NULL || out[0] == '*') {
		free(cd);
		return false;
	}
	hl = strlen(hash);
	cl = strlen(out);
	diff = (unsigned char)(hl != cl);
	for (size_t i = 0; i < hl && i < cl; i++)
		diff |= (unsigned char)(hash[i] ^ out[i]);
	ok = known && diff == 0;
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}
