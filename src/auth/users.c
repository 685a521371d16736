/*
 * The internal user database; see users.h for the hashing scheme and the
 * permission semantics.  Permission expressions are translated from the
 * PCRE dialect RabbitMQ documents into POSIX ERE once, when set, and
 * compiled once, so a check is one regexec (or none, for ".*").
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/users.h"
#include "util/xalloc.h"

enum { PERM_RX, PERM_ALL, PERM_EMPTY };

#define USERS_RE_MAX 4096 /* bytes in one permission expression */

/* ---- hashing ----------------------------------------------------------- */

static const EVP_MD *users_md(enum users_alg alg)
{
	switch (alg) {
	case USERS_ALG_SHA256: return EVP_sha256();
	case USERS_ALG_SHA512: return EVP_sha512();
	case USERS_ALG_MD5: return EVP_md5();
	}
	return NULL;
}

static size_t users_md_len(enum users_alg alg)
{
	switch (alg) {
	case USERS_ALG_SHA256: return 32;
	case USERS_ALG_SHA512: return 64;
	case USERS_ALG_MD5: return 16;
	}
	return 0;
}

/* digest = H(salt || password); false if the library refuses (e.g. no MD5). */
static bool users_digest(enum users_alg alg, const uint8_t *salt, const void *pw, size_t pwlen,
                         uint8_t *digest)
{
	const EVP_MD *md = users_md(alg);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = 0;
	bool ok = md && ctx && EVP_DigestInit_ex(ctx, md, NULL) == 1 &&
	          EVP_DigestUpdate(ctx, salt, USERS_SALT_LEN) == 1 &&
	          EVP_DigestUpdate(ctx, pw, pwlen) == 1 && EVP_DigestFinal_ex(ctx, digest, &n) == 1 &&
	          n == users_md_len(alg);
	EVP_MD_CTX_free(ctx);
	return ok;
}

static void users_hash_new(struct users_user *user, const char *password)
{
	uint8_t salt[USERS_SALT_LEN];
	if (RAND_bytes(salt, sizeof(salt)) != 1) {
		/* the CSPRNG failing is not something to carry on from */
		fprintf(stderr, "warren: RAND_bytes failed\n");
		abort();
	}
	user->alg = USERS_ALG_SHA256;
	memcpy(user->hash, salt, USERS_SALT_LEN);
	if (!users_digest(user->alg, salt, password, strlen(password), user->hash + USERS_SALT_LEN)) {
		fprintf(stderr, "warren: SHA-256 unavailable\n");
		abort();
	}
	user->hash_len = USERS_SALT_LEN + users_md_len(user->alg);
}

int users_parse_alg(const char *name, enum users_alg *alg)
{
	if (!name || strcmp(name, "rabbit_password_hashing_sha256") == 0)
		*alg = USERS_ALG_SHA256;
	else if (strcmp(name, "rabbit_password_hashing_sha512") == 0)
		*alg = USERS_ALG_SHA512;
	else if (strcmp(name, "rabbit_password_hashing_md5") == 0)
		*alg = USERS_ALG_MD5;
	else
		return -1;
	return 0;
}

const char *users_alg_name(enum users_alg alg)
{
	switch (alg) {
	case USERS_ALG_SHA256: return "rabbit_password_hashing_sha256";
	case USERS_ALG_SHA512: return "rabbit_password_hashing_sha512";
	case USERS_ALG_MD5: return "rabbit_password_hashing_md5";
	}
	return "?";
}

/* ---- base64 (RFC 4648, padded, strict) --------------------------------- */

static int b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decode s into out (cap bytes); -1 on bad syntax or overflow. */
static long b64_decode(const char *s, uint8_t *out, size_t cap)
{
	size_t len = strlen(s), n = 0;
	if (len % 4)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		int pad = 0;
		for (int k = 0; k < 4; k++) {
			char c = s[i + k];
			if (c == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
			} else if (pad || (v[k] = b64_val(c)) < 0) {
				return -1;
			}
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
		             (uint32_t)v[3];
		size_t take = 3 - (size_t)pad;
		if (cap - n < take)
			return -1;
		out[n++] = (uint8_t)(w >> 16);
		if (take > 1)
			out[n++] = (uint8_t)(w >> 8);
		if (take > 2)
			out[n++] = (uint8_t)w;
	}
	return (long)n;
}

void users_hash_b64(const struct users_user *user, char *out, size_t cap)
{
	if (cap < USERS_B64_MAX || user->hash_len == 0) {
		if (cap)
			out[0] = '\0';
		return;
	}
	EVP_EncodeBlock((unsigned char *)out, user->hash, (int)user->hash_len);
}

int users_check_hash(const char *b64, enum users_alg alg, char *err, size_t errcap)
{
	uint8_t buf[USERS_HASH_MAX];
	if (b64[0] == '\0')
		return 0;
	long n = b64_decode(b64, buf, sizeof(buf));
	if (n < 0) {
		snprintf(err, errcap, "password_hash is not valid base64 of a %s hash",
		         users_alg_name(alg));
		return -1;
	}
	if ((size_t)n != USERS_SALT_LEN + users_md_len(alg)) {
		snprintf(err, errcap, "password_hash has %ld bytes, a %s hash has %zu", n,
		         users_alg_name(alg), USERS_SALT_LEN + users_md_len(alg));
		return -1;
	}
	return 0;
}

/* ---- the user list ----------------------------------------------------- */

struct users *users_new(void)
{
	return xcalloc(1, sizeof(struct users));
}

static void perms_clear(struct users_perms *p)
{
	for (int k = 0; k < 3; k++) {
		if (p->kind[k] == PERM_RX)
			regfree(&p->rx[k]);
		free(p->re[k]);
	}
	free(p->vhost);
}

static void user_free(struct users_user *user)
{
	for (size_t i = 0; i < user->nperms; i++)
		perms_clear(&user->perms[i]);
	free(user->perms);
	for (size_t i = 0; i < user->ntags; i++)
		free(user->tags[i]);
	free(user->tags);
	free(user->name);
	OPENSSL_cleanse(user->hash, sizeof(user->hash));
	free(user);
}

void users_free(struct users *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->n; i++)
		user_free(u->v[i]);
	free(u->v);
	free(u);
}

/* Index of name, or of where it would go (with *found false). */
static size_t users_index(const struct users *u, const char *name, bool *found)
{
	size_t lo = 0, hi = u->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(u->v[mid]->name, name);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

const struct users_user *users_find(const struct users *u, const char *name)
{
	bool found;
	size_t i = users_index(u, name, &found);
	return found ? u->v[i] : NULL;
}

static struct users_user *users_get(struct users *u, const char *name, char *err, size_t errcap)
{
	bool found;
	size_t i = users_index(u, name, &found);
	if (!found) {
		snprintf(err, errcap, "User \"%s\" does not exist", name);
		return NULL;
	}
	return u->v[i];
}

static int users_check_name(const char *name, char *err, size_t errcap)
{
	size_t n = strlen(name);
	if (n == 0 || n > USERS_NAME_MAX) {
		snprintf(err, errcap, "user name must be 1 to %d bytes", USERS_NAME_MAX);
		return -1;
	}
	return 0;
}

/* Insert a new user called name; NULL (err set) if it exists or is bad. */
static struct users_user *users_insert(struct users *u, const char *name, char *err,
                                       size_t errcap)
{
	if (users_check_name(name, err, errcap) != 0)
		return NULL;
	bool found;
	size_t i = users_index(u, name, &found);
	if (found) {
		snprintf(err, errcap, "User \"%s\" already exists", name);
		return NULL;
	}
	if (u->n == u->cap) {
		u->cap = u->cap ? u->cap * 2 : 8;
		u->v = xrealloc(u->v, u->cap * sizeof(*u->v));
	}
	memmove(u->v + i + 1, u->v + i, (u->n - i) * sizeof(*u->v));
	struct users_user *user = xcalloc(1, sizeof(*user));
	user->name = xstrdup(name);
	u->v[i] = user;
	u->n++;
	return user;
}

int users_add(struct users *u, const char *name, const char *password, char *err, size_t errcap)
{
	struct users_user *user = users_insert(u, name, err, errcap);
	if (!user)
		return -1;
	users_hash_new(user, password);
	return 0;
}

int users_put_hashed(struct users *u, const char *name, const char *b64, const char *alg,
                     char *err, size_t errcap)
{
	enum users_alg a;
	if (users_parse_alg(alg, &a) != 0) {
		snprintf(err, errcap, "unknown hashing_algorithm '%s'", alg);
		return -1;
	}
	if (users_check_name(name, err, errcap) != 0 || users_check_hash(b64, a, err, errcap) != 0)
		return -1;
	bool found;
	size_t i = users_index(u, name, &found);
	struct users_user *user = found ? u->v[i] : users_insert(u, name, err, errcap);
	if (!user)
		return -1;
	long n = b64[0] ? b64_decode(b64, user->hash, sizeof(user->hash)) : 0;
	user->hash_len = (size_t)n;
	user->alg = a;
	return 0;
}

int users_delete(struct users *u, const char *name, char *err, size_t errcap)
{
	bool found;
	size_t i = users_index(u, name, &found);
	if (!found) {
		snprintf(err, errcap, "User \"%s\" does not exist", name);
		return -1;
	}
	user_free(u->v[i]);
	memmove(u->v + i, u->v + i + 1, (u->n - i - 1) * sizeof(*u->v));
	u->n--;
	return 0;
}

int users_change_password(struct users *u, const char *name, const char *password, char *err,
                          size_t errcap)
{
	struct users_user *user = users_get(u, name, err, errcap);
	if (!user)
		return -1;
	users_hash_new(user, password);
	return 0;
}

int users_set_tags(struct users *u, const char *name, const char *const *tags, size_t n,
                   char *err, size_t errcap)
{
	struct users_user *user = users_get(u, name, err, errcap);
	if (!user)
		return -1;
	for (size_t i = 0; i < user->ntags; i++)
		free(user->tags[i]);
	free(user->tags);
	user->tags = n ? xmalloc(n * sizeof(*user->tags)) : NULL;
	user->ntags = 0;
	for (size_t i = 0; i < n; i++) {
		if (tags[i][0] == '\0' || users_has_tag(user, tags[i]))
			continue;
		user->tags[user->ntags++] = xstrdup(tags[i]);
	}
	return 0;
}

bool users_has_tag(const struct users_user *user, const char *tag)
{
	for (size_t i = 0; i < user->ntags; i++)
		if (strcmp(user->tags[i], tag) == 0)
			return true;
	return false;
}

void users_add_default(struct users *u)
{
	char err[128];
	static const char *const admin[] = { "administrator" };
	if (users_find(u, "guest"))
		return;
	users_add(u, "guest", "guest", err, sizeof(err));
	users_set_tags(u, "guest", admin, 1, err, sizeof(err));
	users_set_permissions(u, "guest", "/", ".*", ".*", ".*", err, sizeof(err));
}

/* ---- passwords --------------------------------------------------------- */

static bool users_verify(const struct users_user *user, const void *pw, size_t pwlen)
{
	/* Unknown users and users without a password still cost one digest, so
	 * the answer's timing does not tell which names exist. */
	static const uint8_t zero_salt[USERS_SALT_LEN];
	uint8_t digest[64];
	bool usable = user && user->hash_len == USERS_SALT_LEN + users_md_len(user->alg);
	enum users_alg alg = usable ? user->alg : USERS_ALG_SHA256;
	const uint8_t *salt = usable ? user->hash : zero_salt;
	if (!users_digest(alg, salt, pw, pwlen, digest))
		return false;
	size_t n = users_md_len(alg);
	bool same = usable && CRYPTO_memcmp(digest, user->hash + USERS_SALT_LEN, n) == 0;
	OPENSSL_cleanse(digest, sizeof(digest));
	return same && pwlen > 0;
}

bool users_check_password(const struct users *u, const char *name, const char *password)
{
	return users_verify(users_find(u, name), password, strlen(password));
}

bool users_check_password_bytes(const struct users *u, struct bytes name, struct bytes password)
{
	char buf[USERS_NAME_MAX + 1];
	const struct users_user *user = NULL;
	if (name.len <= USERS_NAME_MAX && !memchr(name.ptr, 0, name.len)) {
		memcpy(buf, name.ptr, name.len);
		buf[name.len] = '\0';
		user = users_find(u, buf);
	}
	return users_verify(user, password.ptr, password.len);
}

/* ---- permission expressions -------------------------------------------- */

struct rxbuf {
	char *p;
	size_t n, cap;
};

static void rx_put(struct rxbuf *b, const char *s)
{
	size_t k = strlen(s);
	if (b->cap - b->n <= k) {
		while (b->cap - b->n <= k)
			b->cap = b->cap ? b->cap * 2 : 64;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, s, k + 1);
	b->n += k;
}

static void rx_putc(struct rxbuf *b, char c)
{
	char s[2] = { c, 0 };
	rx_put(b, s);
}

/*
 * PCRE to POSIX ERE.  Only constructs with the same meaning in both are
 * let through; the rest is refused with a message.  Lazy quantifiers lose
 * their '?': laziness changes what a match captures, never whether there
 * is one.
 */
static char *rx_translate(const char *re, char *err, size_t errcap)
{
	struct rxbuf b = { NULL, 0, 0 };
	bool after_quant = false;
	rx_put(&b, "");
	for (const char *p = re; *p; p++) {
		char c = *p;
		bool quant = false;
		if (c == '\\') {
			char e = *++p;
			if (e == '\0') {
				snprintf(err, errcap, "trailing backslash");
				goto fail;
			}
			switch (e) {
			case 'd': rx_put(&b, "[0-9]"); break;
			case 'D': rx_put(&b, "[^0-9]"); break;
			case 'w': rx_put(&b, "[[:alnum:]_]"); break;
			case 'W': rx_put(&b, "[^[:alnum:]_]"); break;
			case 's': rx_put(&b, "[[:space:]]"); break;
			case 'S': rx_put(&b, "[^[:space:]]"); break;
			case 'n': rx_putc(&b, '\n'); break;
			case 't': rx_putc(&b, '\t'); break;
			case 'r': rx_putc(&b, '\r'); break;
			default:
				if (strchr(".[]()*+?{}|^$\\", e)) {
					rx_putc(&b, '\\');
					rx_putc(&b, e);
				} else if (strchr("/-_:;,!\"#%&'<=>@`~ ", e)) {
					rx_putc(&b, e);
				} else {
					snprintf(err, errcap, "unsupported escape '\\%c'", e);
					goto fail;
				}
			}
		} else if (c == '(' && p[1] == '?') {
			if (p[2] != ':') {
				snprintf(err, errcap, "unsupported group '(?%c'", p[2] ? p[2] : ' ');
				goto fail;
			}
			rx_putc(&b, '(');
			p += 2;
		} else if (c == '[') {
			rx_putc(&b, '[');
			if (p[1] == '^')
				rx_putc(&b, *++p);
			if (p[1] == ']')
				rx_putc(&b, *++p);
			while (p[1] && p[1] != ']') {
				char d = *++p;
				if (d == '[' && p[1] == ':') {
					const char *end = strstr(p, ":]");
					if (!end) {
						snprintf(err, errcap, "unterminated character class");
						goto fail;
					}
					for (; p < end + 1; p++)
						rx_putc(&b, *p);
					rx_putc(&b, *p);
					continue;
				}
				if (d != '\\') {
					rx_putc(&b, d);
					continue;
				}
				char e = *++p;
				switch (e) {
				case 'd': rx_put(&b, "0-9"); break;
				case 'w': rx_put(&b, "[:alnum:]_"); break;
				case 's': rx_put(&b, "[:space:]"); break;
				case 'n': rx_putc(&b, '\n'); break;
				case 't': rx_putc(&b, '\t'); break;
				case '\\': rx_putc(&b, '\\'); break;
				default:
					/* in a POSIX bracket these are literal already */
					if (e && strchr(".*+?(){}|$/_:;,!\"#%&'<=>@`~ ", e)) {
						rx_putc(&b, e);
					} else {
						snprintf(err, errcap,
						         "unsupported escape '\\%c' in a character class",
						         e ? e : ' ');
						goto fail;
					}
				}
			}
			if (p[1] == ']')
				rx_putc(&b, *++p);
		} else if ((c == '?' || c == '+') && after_quant) {
			if (c == '+') {
				snprintf(err, errcap, "possessive quantifiers are not supported");
				goto fail;
			}
			/* lazy: drop the '?' */
		} else {
			rx_putc(&b, c);
			quant = c == '*' || c == '+' || c == '?' || c == '}';
		}
		after_quant = quant;
	}
	return b.p;
fail:
	free(b.p);
	return NULL;
}

/* Fill p->re[k], p->rx[k], p->kind[k] from re; -1 (err set) if refused. */
static int rx_compile(struct users_perms *p, int k, const char *re, char *err, size_t errcap)
{
	if (strlen(re) > USERS_RE_MAX) {
		snprintf(err, errcap, "regular expression longer than %d bytes", USERS_RE_MAX);
		return -1;
	}
	if (re[0] == '\0') {
		p->kind[k] = PERM_EMPTY;
	} else if (strcmp(re, ".*") == 0 || strcmp(re, "^.*") == 0) {
		p->kind[k] = PERM_ALL;
	} else {
		char why[128];
		char *ere = rx_translate(re, why, sizeof(why));
		if (!ere) {
			snprintf(err, errcap, "regular expression '%s' is invalid: %s", re, why);
			return -1;
		}
		int rc = regcomp(&p->rx[k], ere, REG_EXTENDED | REG_NOSUB);
		free(ere);
		if (rc != 0) {
			regerror(rc, &p->rx[k], why, sizeof(why));
			snprintf(err, errcap, "regular expression '%s' is invalid: %s", re, why);
			return -1;
		}
		p->kind[k] = PERM_RX;
	}
	p->re[k] = xstrdup(re);
	return 0;
}

int users_check_regex(const char *re, char *err, size_t errcap)
{
	struct users_perms p;
	memset(&p, 0, sizeof(p));
	if (rx_compile(&p, 0, re, err, errcap) != 0)
		return -1;
	perms_clear(&p);
	return 0;
}

static size_t perms_index(const struct users_user *user, const char *vhost, bool *found)
{
	size_t lo = 0, hi = user->nperms;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(user->perms[mid].vhost, vhost);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

const struct users_perms *users_permissions(const struct users_user *user, const char *vhost)
{
	bool found;
	size_t i = perms_index(user, vhost, &found);
	return found ? &user->perms[i] : NULL;
}

int users_set_permissions(struct users *u, const char *user_name, const char *vhost,
                          const char *configure, const char *write, const char *read,
                          char *err, size_t errcap)
{
	struct users_user *user = users_get(u, user_name, err, errcap);
	if (!user)
		return -1;
	struct users_perms p;
	memset(&p, 0, sizeof(p));
	const char *res[3] = { configure, write, read };
	for (int k = 0; k < 3; k++) {
		if (rx_compile(&p, k, res[k], err, errcap) != 0) {
			for (int j = 0; j < k; j++) {
				if (p.kind[j] == PERM_RX)
					regfree(&p.rx[j]);
				free(p.re[j]);
			}
			return -1;
		}
	}
	p.vhost = xstrdup(vhost);
	bool found;
	size_t i = perms_index(user, vhost, &found);
	if (found) {
		perms_clear(&user->perms[i]);
	} else {
		user->perms = xrealloc(user->perms, (user->nperms + 1) * sizeof(*user->perms));
		memmove(user->perms + i + 1, user->perms + i,
		        (user->nperms - i) * sizeof(*user->perms));
		user->nperms++;
	}
	user->perms[i] = p;
	return 0;
}

static void perms_remove(struct users_user *user, const char *vhost)
{
	bool found;
	size_t i = perms_index(user, vhost, &found);
	if (!found)
		return;
	perms_clear(&user->perms[i]);
	memmove(user->perms + i, user->perms + i + 1, (user->nperms - i - 1) * sizeof(*user->perms));
	user->nperms--;
}

int users_clear_permissions(struct users *u, const char *user_name, const char *vhost, char *err,
                            size_t errcap)
{
	struct users_user *user = users_get(u, user_name, err, errcap);
	if (!user)
		return -1;
	perms_remove(user, vhost);
	return 0;
}

void users_clear_vhost(struct users *u, const char *vhost)
{
	for (size_t i = 0; i < u->n; i++)
		perms_remove(u->v[i], vhost);
}

bool users_vhost_access(const struct users *u, const char *user_name, const char *vhost)
{
	const struct users_user *user = users_find(u, user_name);
	return user && users_permissions(user, vhost) != NULL;
}

static bool perm_match(const struct users_perms *p, enum users_perm kind, struct bytes name)
{
	switch (p->kind[kind]) {
	case PERM_ALL:
		return true;
	case PERM_EMPTY:
		return name.len == 0;
	default:
		break;
	}
#ifdef REG_STARTEND
	/* names are bytes and may hold NUL; REG_STARTEND matches them whole */
	regmatch_t m[1];
	m[0].rm_so = 0;
	m[0].rm_eo = (regoff_t)name.len;
	return regexec(&p->rx[kind], name.len ? (const char *)name.ptr : "", 1, m,
	               REG_STARTEND) == 0;
#else
	char buf[256];
	if (name.len >= sizeof(buf) || memchr(name.ptr, 0, name.len))
		return false;
	memcpy(buf, name.ptr, name.len);
	buf[name.len] = '\0';
	return regexec(&p->rx[kind], buf, 0, NULL, 0) == 0;
#endif
}

bool users_permission_check_bytes(const struct users *u, const char *user_name, const char *vhost,
                                  enum users_perm kind, struct bytes name)
{
	const struct users_user *user = users_find(u, user_name);
	const struct users_perms *p = user ? users_permissions(user, vhost) : NULL;
	if (!p || (unsigned)kind > USERS_PERM_READ)
		return false;
	return perm_match(p, kind, name);
}

bool users_permission_check(const struct users *u, const char *user_name, const char *vhost,
                            enum users_perm kind, const char *name)
{
	return users_permission_check_bytes(u, user_name, vhost, kind, bytes_of(name));
}
