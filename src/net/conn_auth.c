/* SASL PLAIN / AMQPLAIN parsing, EXTERNAL (TLS client certificates) and the
 * built-in guest account.  A refusal's why text goes to the log: it names
 * the user, escaped because the name is the client's, and never the
 * password. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/users.h"
#include "broker/broker.h"
#include "broker/reply.h"
#include "codec/table.h"
#include "net/conn_auth.h"
#include "util/xalloc.h"

static char *cstr(struct bytes b)
{
	char *s = xmalloc(b.len + 1);
	if (b.len)
		memcpy(s, b.ptr, b.len);
	s[b.len] = '\0';
	return s;
}

/* PLAIN: [authzid] NUL authcid NUL passwd (RFC 4616). */
static int parse_plain(struct bytes r, struct bytes *user, struct bytes *pass)
{
	const uint8_t *nul1 = memchr(r.ptr, 0, r.len);
	if (!nul1)
		return -1;
	size_t off1 = (size_t)(nul1 - r.ptr) + 1;
	const uint8_t *nul2 = memchr(r.ptr + off1, 0, r.len - off1);
	if (!nul2)
		return -1;
	size_t off2 = (size_t)(nul2 - r.ptr) + 1;
	user->ptr = r.ptr + off1;
	user->len = off2 - 1 - off1;
	pass->ptr = r.ptr + off2;
	pass->len = r.len - off2;
	return 0;
}

/* AMQPLAIN: a field table without its length prefix, keys LOGIN and PASSWORD. */
static int parse_amqplain(struct bytes r, struct bytes *user, struct bytes *pass)
{
	if (ftable_validate(r.ptr, r.len, 0) != CODEC_OK)
		return -1;
	struct ftable t = { r.ptr, r.len };
	struct fvalue lv, pv;
	if (ftable_get(t, "LOGIN", &lv) != 1 || ftable_get(t, "PASSWORD", &pv) != 1)
		return -1;
	if (lv.type != 'S' || pv.type != 'S')
		return -1;
	*user = lv.v.str;
	*pass = pv.v.str;
	return 0;
}

int conn_auth_check(struct broker *b, struct bytes mechanism, struct bytes response,
                    bool loopback, char **user, char *why, size_t whycap)
{
	struct bytes u, p;
	int rc;
	if (bytes_eq_str(mechanism, "PLAIN")) {
		rc = parse_plain(response, &u, &p);
	} else if (bytes_eq_str(mechanism, "AMQPLAIN")) {
		rc = parse_amqplain(response, &u, &p);
	} else {
		char m[64];
		snprintf(why, whycap, "unsupported authentication mechanism '%s'",
		         reply_name(m, sizeof(m), mechanism.ptr, mechanism.len));
		return CONN_AUTH_BAD_MECHANISM;
	}
	if (rc != 0) {
		snprintf(why, whycap, "malformed %s response", mechanism.len == 5 ? "PLAIN" : "AMQPLAIN");
		return CONN_AUTH_BAD_MECHANISM;
	}
	*user = cstr(u);
	if (!users_check_password_bytes(b->users, u, p)) {
		/* why is logged: the name escaped (it is the client's, unchecked),
		 * the password never */
		char nb[100];
		snprintf(why, whycap, "user '%s': invalid credentials",
		         reply_name(nb, sizeof(nb), u.ptr, u.len));
		return CONN_AUTH_REFUSED;
	}
	/* RabbitMQ's loopback_users default: guest only from this host */
	if (!loopback && bytes_eq_str(u, "guest")) {
		snprintf(why, whycap, "user 'guest' can only connect via localhost");
		return CONN_AUTH_REFUSED;
	}
	return CONN_AUTH_OK;
}

int conn_auth_external(struct broker *b, const char *cert_cn, bool loopback, char **user,
                       char *why, size_t whycap)
{
	if (!cert_cn) {
		snprintf(why, whycap, "EXTERNAL: connection peer presented no verified TLS (x.509) "
		                      "certificate");
		return CONN_AUTH_REFUSED;
	}
	*user = cstr(bytes_of(cert_cn));
	/* the certificate proves the identity; the name must still be a user */
	if (!users_find(b->users, cert_cn)) {
		char nb[100];
		snprintf(why, whycap, "EXTERNAL: user '%s' (from the certificate CN): "
		                      "no such user",
		         reply_name(nb, sizeof(nb), (const uint8_t *)cert_cn, strlen(cert_cn)));
		return CONN_AUTH_REFUSED;
	}
	if (!loopback && strcmp(cert_cn, "guest") == 0) {
		snprintf(why, whycap, "user 'guest' can only connect via localhost");
		return CONN_AUTH_REFUSED;
	}
	return CONN_AUTH_OK;
}
