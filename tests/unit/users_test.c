/*
 * auth/users: RabbitMQ password hashes (vectors exported by RabbitMQ 3.10.8
 * with `rabbitmqctl add_user` + `export_definitions`), our own hashes, the
 * user list operations and their error texts, and permission expressions
 * with RabbitMQ's unanchored-match semantics.
 */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "auth/users.h"
#include "runner.h"

static struct users *U;
static char err[512];

static void setup(void)
{
	U = users_new();
	err[0] = '\0';
}

static void teardown(void)
{
	users_free(U);
}

/* Hashes exported by a RabbitMQ 3.10.8 node for known passwords. */
static const struct {
	const char *name, *password, *hash, *alg;
} rabbit_vectors[] = {
	{ "guest", "guest", "0dRy+wtV4w37ePY6GrPOOL2BoNa/iNCkzKLcQcJZRSAHFfdZ",
	  "rabbit_password_hashing_sha256" },
	{ "alice", "s3cret-p\xc3\xa4ssword", "wx5yzOeOFcecNDpaIy/unZ5Rr899BVci52S6hQop1cPf2Oh7",
	  "rabbit_password_hashing_sha256" },
	{ "carol", "Carol#512",
	  "j04FuEWWL/JggmBeZCr8fp0pUOjhvJmO/RlA5+dPbNOQ1vAk5Y4AVwYxiibuH/nFZK1N5SsUW7dqDR9Lw78g8EE2In0=",
	  "rabbit_password_hashing_sha512" },
	/* pre-3.6 exports: salt 01020304, MD5 (computed with Python's hashlib) */
	{ "old", "legacy", "AQIDBNvo4BDSCtwH6D3+t011PrY=", "rabbit_password_hashing_md5" },
};

START_TEST(rabbit_hashes_verify)
{
	const char *name = rabbit_vectors[_i].name;
	ck_assert_int_eq(users_put_hashed(U, name, rabbit_vectors[_i].hash, rabbit_vectors[_i].alg,
	                                  err, sizeof(err)),
	                 0);
	ck_assert(users_check_password(U, name, rabbit_vectors[_i].password));
	ck_assert(!users_check_password(U, name, "wrong"));
	ck_assert(!users_check_password(U, name, ""));
	ck_assert(!users_check_password(U, "nobody", rabbit_vectors[_i].password));
	/* exported unchanged */
	char b64[USERS_B64_MAX];
	users_hash_b64(users_find(U, name), b64, sizeof(b64));
	ck_assert_str_eq(b64, rabbit_vectors[_i].hash);
	ck_assert_str_eq(users_alg_name(users_find(U, name)->alg), rabbit_vectors[_i].alg);
	/* the bytes form used by the SASL code */
	struct bytes pw = bytes_of(rabbit_vectors[_i].password);
	ck_assert(users_check_password_bytes(U, bytes_of(name), pw));
	pw.len--;
	ck_assert(!users_check_password_bytes(U, bytes_of(name), pw));
}
END_TEST

START_TEST(blank_password_never_matches)
{
	/* bob was added to RabbitMQ with an empty password: it has a hash, but
	 * RabbitMQ refuses blank passwords at login, and so do we */
	ck_assert_int_eq(users_put_hashed(U, "bob", "8G5GOoCCIMPegXAuzC/0ZLliniqFZyTDQk7l4qBtTknUowMZ",
	                                  NULL, err, sizeof(err)),
	                 0);
	ck_assert(!users_check_password(U, "bob", ""));
	/* no hash at all: nobody logs in */
	ck_assert_int_eq(users_put_hashed(U, "nopw", "", NULL, err, sizeof(err)), 0);
	ck_assert(!users_check_password(U, "nopw", ""));
	ck_assert(!users_check_password(U, "nopw", "x"));
	char b64[USERS_B64_MAX];
	users_hash_b64(users_find(U, "nopw"), b64, sizeof(b64));
	ck_assert_str_eq(b64, "");
}
END_TEST

START_TEST(new_hashes_are_rabbit_format)
{
	ck_assert_int_eq(users_add(U, "dave", "pa55", err, sizeof(err)), 0);
	ck_assert_int_eq(users_add(U, "erin", "pa55", err, sizeof(err)), 0);
	const struct users_user *d = users_find(U, "dave"), *e = users_find(U, "erin");
	ck_assert_int_eq(d->alg, USERS_ALG_SHA256);
	ck_assert_uint_eq(d->hash_len, 36);
	/* salted: the same password hashes differently */
	ck_assert(memcmp(d->hash, e->hash, 36) != 0);
	/* base64(salt || SHA-256(salt || password)), recomputed independently */
	char b64[USERS_B64_MAX];
	users_hash_b64(d, b64, sizeof(b64));
	ck_assert_uint_eq(strlen(b64), 48);
	uint8_t raw[48], md[32];
	ck_assert_int_eq(EVP_DecodeBlock(raw, (const unsigned char *)b64, 48), 36);
	uint8_t in[8];
	memcpy(in, raw, 4);
	memcpy(in + 4, "pa55", 4);
	unsigned int mdlen;
	EVP_Digest(in, 8, md, &mdlen, EVP_sha256(), NULL);
	ck_assert(memcmp(md, raw + 4, 32) == 0);
	ck_assert(users_check_password(U, "dave", "pa55"));
	/* change_password replaces the hash */
	ck_assert_int_eq(users_change_password(U, "dave", "n3w", err, sizeof(err)), 0);
	ck_assert(!users_check_password(U, "dave", "pa55"));
	ck_assert(users_check_password(U, "dave", "n3w"));
	/* re-import over an existing user replaces its hash too */
	ck_assert_int_eq(users_put_hashed(U, "dave", rabbit_vectors[0].hash, NULL, err, sizeof(err)), 0);
	ck_assert(users_check_password(U, "dave", "guest"));
	ck_assert_uint_eq(users_count(U), 2);
}
END_TEST

START_TEST(user_list_and_errors)
{
	ck_assert_int_eq(users_add(U, "b", "x", err, sizeof(err)), 0);
	ck_assert_int_eq(users_add(U, "c", "x", err, sizeof(err)), 0);
	ck_assert_int_eq(users_add(U, "a", "x", err, sizeof(err)), 0);
	ck_assert_int_eq(users_add(U, "a", "y", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "User \"a\" already exists");
	ck_assert_str_eq(users_at(U, 0)->name, "a");
	ck_assert_str_eq(users_at(U, 1)->name, "b");
	ck_assert_str_eq(users_at(U, 2)->name, "c");
	ck_assert_int_eq(users_add(U, "", "y", err, sizeof(err)), -1);
	char longname[300];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ck_assert_int_eq(users_add(U, longname, "y", err, sizeof(err)), -1);
	ck_assert_int_eq(users_delete(U, "b", err, sizeof(err)), 0);
	ck_assert_int_eq(users_delete(U, "b", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "User \"b\" does not exist");
	ck_assert_int_eq(users_change_password(U, "zz", "p", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "User \"zz\" does not exist");
	ck_assert_uint_eq(users_count(U), 2);
	ck_assert_ptr_null(users_find(U, "b"));
	/* tags: replaced whole, duplicates and empties dropped */
	const char *tags[] = { "monitoring", "management", "monitoring", "" };
	ck_assert_int_eq(users_set_tags(U, "a", tags, 4, err, sizeof(err)), 0);
	const struct users_user *a = users_find(U, "a");
	ck_assert_uint_eq(a->ntags, 2);
	ck_assert(users_has_tag(a, "management"));
	ck_assert(!users_has_tag(a, "administrator"));
	ck_assert_int_eq(users_set_tags(U, "a", NULL, 0, err, sizeof(err)), 0);
	ck_assert_uint_eq(users_find(U, "a")->ntags, 0);
	ck_assert_int_eq(users_set_tags(U, "q", tags, 1, err, sizeof(err)), -1);
}
END_TEST

START_TEST(bad_hashes_refused)
{
	ck_assert_int_eq(users_put_hashed(U, "x", "not base64!", NULL, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not valid base64"));
	/* valid base64, wrong length for SHA-256 */
	ck_assert_int_eq(users_put_hashed(U, "x", "AQIDBNvo4BDSCtwH6D3+t011PrY=", NULL, err,
	                                  sizeof(err)),
	                 -1);
	ck_assert_ptr_nonnull(strstr(err, "has 20 bytes"));
	ck_assert_int_eq(users_put_hashed(U, "x", rabbit_vectors[0].hash, "rabbit_password_hashing_rot13",
	                                  err, sizeof(err)),
	                 -1);
	ck_assert_str_eq(err, "unknown hashing_algorithm 'rabbit_password_hashing_rot13'");
	ck_assert_int_eq(users_put_hashed(U, "x", "AQID=BNv", NULL, err, sizeof(err)), -1);
	ck_assert_uint_eq(users_count(U), 0);
}
END_TEST

START_TEST(default_guest)
{
	users_add_default(U);
	users_add_default(U); /* idempotent */
	ck_assert_uint_eq(users_count(U), 1);
	ck_assert(users_check_password(U, "guest", "guest"));
	ck_assert(users_has_tag(users_find(U, "guest"), "administrator"));
	ck_assert(users_vhost_access(U, "guest", "/"));
	ck_assert(!users_vhost_access(U, "guest", "other"));
	ck_assert(users_permission_check(U, "guest", "/", USERS_PERM_CONFIGURE, "anything"));
	ck_assert(users_permission_check(U, "guest", "/", USERS_PERM_READ, ""));
	ck_assert(!users_permission_check(U, "guest", "other", USERS_PERM_READ, "q"));
}
END_TEST

static bool allowed(const char *re, const char *name)
{
	users_set_permissions(U, "p", "v", re, re, re, err, sizeof(err));
	return users_permission_check(U, "p", "v", USERS_PERM_WRITE, name);
}

/* (expression, name, allowed?) as RabbitMQ's re:run would answer */
static const struct {
	const char *re, *name;
	bool ok;
} rx_cases[] = {
	{ ".*", "anything", true },
	{ ".*", "", true },
	{ "", "", true },
	{ "", "x", false },
	{ "foo", "xfooy", true },       /* not anchored */
	{ "^foo", "xfoo", false },
	{ "^foo", "foobar", true },
	{ "^foo$", "foobar", false },
	{ "^q-.*", "q-1", true },
	{ "^amq\\.gen-.*", "amq.gen-abc", true },
	{ "^amq\\.gen-.*", "amqXgen-abc", false },
	{ "^q\\d+$", "q12", true },
	{ "^q\\d+$", "qa", false },
	{ "^\\w+$", "a_b9", true },
	{ "^\\w+$", "a-b", false },
	{ "^a\\sb$", "a b", true },
	{ "^(?:alice|bob)-", "bob-q", true },
	{ "^(?:alice|bob)-", "carol-q", false },
	{ "^a[\\.]b$", "a.b", true },
	{ "^a[\\.]b$", "a\\b", false },
	{ "^a[\\d_]+$", "a1_2", true },
	{ "^x.*?y$", "xaay", true },
	{ "^[[:alpha:]]+$", "abc", true },
	{ "^[[:alpha:]]+$", "ab1", false },
	{ "^a\\-b\\/c$", "a-b/c", true },
	{ "^(a|b)+$", "abba", true },
	{ "^a{2,3}$", "aaa", true },
	{ "^a{2,3}$", "aaaa", false },
};

START_TEST(permission_expressions)
{
	ck_assert_int_eq(users_add(U, "p", "x", err, sizeof(err)), 0);
	ck_assert_msg(allowed(rx_cases[_i].re, rx_cases[_i].name) == rx_cases[_i].ok,
	              "'%s' on '%s' (%s)", rx_cases[_i].re, rx_cases[_i].name, err);
}
END_TEST

static const char *const rx_refused[] = {
	"(", "a[", "\\", "\\b", "\\1", "(?i)abc", "(?=x)", "a++", "[\\]]", "[\\-]",
};

START_TEST(permission_expressions_refused)
{
	ck_assert_int_eq(users_add(U, "p", "x", err, sizeof(err)), 0);
	ck_assert_int_eq(users_set_permissions(U, "p", "v", ".*", ".*", ".*", err, sizeof(err)), 0);
	ck_assert_int_eq(users_check_regex(rx_refused[_i], err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "is invalid") != NULL, "%s", err);
	ck_assert_int_eq(users_set_permissions(U, "p", "v", ".*", rx_refused[_i], ".*", err,
	                                       sizeof(err)),
	                 -1);
	/* a refused update leaves the old permissions in place */
	ck_assert(users_permission_check(U, "p", "v", USERS_PERM_WRITE, "q"));
}
END_TEST

START_TEST(permissions_per_kind_and_vhost)
{
	ck_assert_int_eq(users_add(U, "p", "x", err, sizeof(err)), 0);
	ck_assert_int_eq(users_set_permissions(U, "nobody", "v", "", "", "", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "User \"nobody\" does not exist");
	ck_assert_int_eq(users_set_permissions(U, "p", "v", "^c", "^w", "^r", err, sizeof(err)), 0);
	ck_assert_int_eq(users_set_permissions(U, "p", "a", ".*", "", "", err, sizeof(err)), 0);
	ck_assert(users_permission_check(U, "p", "v", USERS_PERM_CONFIGURE, "c1"));
	ck_assert(!users_permission_check(U, "p", "v", USERS_PERM_CONFIGURE, "w1"));
	ck_assert(users_permission_check(U, "p", "v", USERS_PERM_WRITE, "w1"));
	ck_assert(users_permission_check(U, "p", "v", USERS_PERM_READ, "r1"));
	ck_assert(!users_permission_check(U, "p", "v", USERS_PERM_READ, "c1"));
	ck_assert(users_permission_check(U, "p", "a", USERS_PERM_CONFIGURE, "c1"));
	ck_assert(!users_permission_check(U, "p", "a", USERS_PERM_READ, "c1"));
	ck_assert(!users_permission_check(U, "p", "zz", USERS_PERM_READ, "r1"));
	ck_assert(!users_permission_check(U, "ghost", "v", USERS_PERM_READ, "r1"));
	/* sorted per vhost, expressions kept as given */
	const struct users_user *p = users_find(U, "p");
	ck_assert_uint_eq(p->nperms, 2);
	ck_assert_str_eq(p->perms[0].vhost, "a");
	ck_assert_str_eq(users_permissions(p, "v")->re[USERS_PERM_WRITE], "^w");
	/* names are bytes: a NUL inside does not end them */
	struct bytes nul = { (const uint8_t *)"r\0x", 3 };
	ck_assert(users_permission_check_bytes(U, "p", "v", USERS_PERM_READ, nul));
	ck_assert_int_eq(users_set_permissions(U, "p", "v", "^c", "^w", "^r$", err, sizeof(err)), 0);
	ck_assert(!users_permission_check_bytes(U, "p", "v", USERS_PERM_READ, nul));
	/* replace, clear, vhost gone */
	ck_assert_int_eq(users_clear_permissions(U, "p", "v", err, sizeof(err)), 0);
	ck_assert_int_eq(users_clear_permissions(U, "p", "v", err, sizeof(err)), 0);
	ck_assert(!users_vhost_access(U, "p", "v"));
	ck_assert_int_eq(users_clear_permissions(U, "q", "v", err, sizeof(err)), -1);
	users_clear_vhost(U, "a");
	ck_assert_uint_eq(users_find(U, "p")->nperms, 0);
	/* deleting a user drops its permissions with it (no leak under ASan) */
	ck_assert_int_eq(users_set_permissions(U, "p", "v", "^x(y|z)", ".*", "", err, sizeof(err)), 0);
	ck_assert_int_eq(users_delete(U, "p", err, sizeof(err)), 0);
}
END_TEST

Suite *unit_suite(void)
{
	Suite *s = suite_create("users");
	TCase *tc = tcase_create("passwords");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, rabbit_hashes_verify, 0,
	                    (int)(sizeof(rabbit_vectors) / sizeof(rabbit_vectors[0])));
	tcase_add_test(tc, blank_password_never_matches);
	tcase_add_test(tc, new_hashes_are_rabbit_format);
	tcase_add_test(tc, user_list_and_errors);
	tcase_add_test(tc, bad_hashes_refused);
	tcase_add_test(tc, default_guest);
	suite_add_tcase(s, tc);
	tc = tcase_create("permissions");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, permission_expressions, 0,
	                    (int)(sizeof(rx_cases) / sizeof(rx_cases[0])));
	tcase_add_loop_test(tc, permission_expressions_refused, 0,
	                    (int)(sizeof(rx_refused) / sizeof(rx_refused[0])));
	tcase_add_test(tc, permissions_per_kind_and_vhost);
	suite_add_tcase(s, tc);
	return s;
}
