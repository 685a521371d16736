/*
 * The internal user database: users with password hashes and tags, and
 * per-vhost permissions, as RabbitMQ's internal auth backend keeps them.
 *
 * Password hashes use RabbitMQ's scheme so definitions exported by RabbitMQ
 * import unchanged and ours import into RabbitMQ: a 4-byte random salt, then
 * hash = H(salt || UTF-8 password), stored as salt || hash (base64 in
 * definitions), with H one of SHA-256 (rabbit_password_hashing_sha256, what
 * we create), SHA-512 or, for exports older than 3.6, MD5.
 *
 * Permissions are three regular expressions per (user, vhost): configure,
 * write and read.  A resource is allowed when its name matches anywhere in
 * the expression (RabbitMQ uses re:run, which is not anchored: ".*" allows
 * everything, "^amq\.gen" a prefix); an empty expression allows nothing but
 * the empty name (RabbitMQ reads "" as "^$").  Expressions are PCRE in
 * RabbitMQ and POSIX extended here, with the common PCRE escapes (\d \w \s,
 * "(?:") translated; anything that cannot be translated faithfully is
 * refused when set rather than risk granting more than was asked.
 *
 * Invariants: users are kept sorted by name (lookups are binary searches,
 * listings come out sorted); each user's permissions are sorted by vhost;
 * names are non-empty and at most USERS_NAME_MAX bytes.
 *
 * Not thread-safe: owned by the broker and used from its loop only.
 */
#ifndef WARREN_AUTH_USERS_H
#define WARREN_AUTH_USERS_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/wire.h"

#define USERS_NAME_MAX 255
#define USERS_SALT_LEN 4
#define USERS_HASH_MAX (USERS_SALT_LEN + 64)

enum users_alg {
	USERS_ALG_SHA256,
	USERS_ALG_SHA512,
	USERS_ALG_MD5,
};

enum users_perm {
	USERS_PERM_CONFIGURE,
	USERS_PERM_WRITE,
	USERS_PERM_READ,
};

struct users_perms {
	char *vhost;
	char *re[3];      /* as given, indexed by enum users_perm */
	regex_t rx[3];
	uint8_t kind[3];  /* how to match: compiled, match-all (".*") or empty-only ("") */
};

struct users_user {
	char *name;
	enum users_alg alg;
	uint8_t hash[USERS_HASH_MAX]; /* salt || digest */
	size_t hash_len;              /* 0: no password, nobody can log in as this user */
	char **tags;
	size_t ntags;
	struct users_perms *perms;
	size_t nperms;
};

struct users {
	struct users_user **v;
	size_t n, cap;
};

/* An empty database; users_add_default() adds guest. */
struct users *users_new(void);
void users_free(struct users *u);
/* guest/guest, tagged administrator, with ".*" permissions on "/" (RabbitMQ's
 * default; the loopback-only rule for guest belongs to the connection code). */
void users_add_default(struct users *u);

/*
 * Every call that can fail returns 0, or -1 with one line in err (errcap
 * bytes, always NUL-terminated) in rabbitmqctl's words, e.g.
 * User "bob" does not exist.
 */
int users_add(struct users *u, const char *name, const char *password, char *err,
              size_t errcap);
/* Create or update a user from an exported hash: b64 is base64(salt || digest)
 * ("" for no password), alg a hashing_algorithm name (NULL: sha256). */
int users_put_hashed(struct users *u, const char *name, const char *b64, const char *alg,
                     char *err, size_t errcap);
int users_delete(struct users *u, const char *name, char *err, size_t errcap);
int users_change_password(struct users *u, const char *name, const char *password, char *err,
                          size_t errcap);
/* Replace the user's tags (n may be 0). */
int users_set_tags(struct users *u, const char *name, const char *const *tags, size_t n,
                   char *err, size_t errcap);
/* Check the syntax of a hashing_algorithm name and of a base64 hash for it. */
int users_parse_alg(const char *name, enum users_alg *alg);
const char *users_alg_name(enum users_alg alg);
int users_check_hash(const char *b64, enum users_alg alg, char *err, size_t errcap);

const struct users_user *users_find(const struct users *u, const char *name);
static inline size_t users_count(const struct users *u)
{
	return u->n;
}
static inline const struct users_user *users_at(const struct users *u, size_t i)
{
	return u->v[i];
}
bool users_has_tag(const struct users_user *user, const char *tag);
/* base64 of salt || digest into out (at least 4 * (USERS_HASH_MAX + 2) / 3 + 1
 * bytes); "" when the user has no password. */
void users_hash_b64(const struct users_user *user, char *out, size_t cap);
#define USERS_B64_MAX (4 * ((USERS_HASH_MAX + 2) / 3) + 1)

/*
 * True when name exists, has a password, and password matches it.  The
 * digest comparison takes the same time wherever it differs; an empty
 * password never matches (RabbitMQ refuses blank passwords).
 */
bool users_check_password(const struct users *u, const char *name, const char *password);
bool users_check_password_bytes(const struct users *u, struct bytes name, struct bytes password);

/* Validate the three expressions without storing anything. */
int users_check_regex(const char *re, char *err, size_t errcap);
/* Set (replace) the permissions of user on vhost.  The vhost is not checked
 * here: the caller knows which vhosts exist. */
int users_set_permissions(struct users *u, const char *user, const char *vhost,
                          const char *configure, const char *write, const char *read,
                          char *err, size_t errcap);
/* Clearing permissions the user does not have is not an error (RabbitMQ). */
int users_clear_permissions(struct users *u, const char *user, const char *vhost, char *err,
                            size_t errcap);
/* A vhost was deleted: drop every user's permissions on it. */
void users_clear_vhost(struct users *u, const char *vhost);
const struct users_perms *users_permissions(const struct users_user *user, const char *vhost);

/* May user open vhost at all (has any permissions there)? */
bool users_vhost_access(const struct users *u, const char *user, const char *vhost);
/* May user do kind on the resource called name in vhost? */
bool users_permission_check(const struct users *u, const char *user, const char *vhost,
                            enum users_perm kind, const char *name);
bool users_permission_check_bytes(const struct users *u, const char *user, const char *vhost,
                                  enum users_perm kind, struct bytes name);

#endif
