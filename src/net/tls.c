/*
 * TLS transport and server context (see tls.h for the model).
 *
 * Invariants:
 *  - OpenSSL's per-thread error queue is cleared before every SSL call
 *    whose result goes through SSL_get_error, which only reads the queue
 *    correctly when it was empty beforehand.
 *  - After SSL_ERROR_SSL or SSL_ERROR_SYSCALL the connection is marked
 *    fatal: no further SSL I/O happens on it (not even SSL_shutdown, as
 *    OpenSSL requires), every read and write fails at once.
 *  - A write that blocked is retried from the same stream position by the
 *    caller, so the gather below rebuilds the same leading bytes (maybe
 *    more): OpenSSL's retry rule with ACCEPT_MOVING_WRITE_BUFFER holds.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "net/tls.h"
#include "util/xalloc.h"

/* One TLS record's worth of plaintext: small segments are gathered up to
 * this, larger ones are written in place. */
#define TLS_GATHER 16384

struct tls {
	SSL_CTX *ctx;
	struct tls_settings s; /* owned copies of the strings */
	uint8_t wbuf[TLS_GATHER];
};

enum {
	TLS_F_ESTABLISHED = 1,
	TLS_F_FATAL = 2,
	TLS_F_READ_MORE = 4,        /* last read filled the caller's buffer */
	TLS_F_READ_WANTS_WRITE = 8,
	TLS_F_WRITE_WANTS_READ = 16,
};

struct tls_conn {
	SSL *ssl;
	struct tls *tls;
	unsigned flags;
	char *peer_cn;
	char err[160];
};

static const struct transport_ops tls_ops;

/* ---- helpers --------------------------------------------------------- */

/* The first queued OpenSSL error as text ("no start line"), then clear. */
static const char *tls_ossl_reason(char *buf, size_t cap)
{
	unsigned long e = ERR_get_error();
	ERR_clear_error();
	if (e == 0)
		return "unknown error";
	const char *r = ERR_reason_error_string(e);
	if (r)
		return r;
	ERR_error_string_n(e, buf, cap);
	return buf;
}

static char *tls_strdup_opt(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/*
 * A file name that still works after the daemon changes directory to /
 * (reloads re-read it).  Relative names get the current directory in
 * front; symbolic links are kept, so a link switched to a renewed
 * certificate is followed on the next reload.
 */
static char *tls_abs_path(const char *path)
{
	if (!path)
		return NULL;
	char cwd[4096];
	if (path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		return xstrdup(path);
	size_t n = strlen(cwd) + strlen(path) + 2;
	char *p = xmalloc(n);
	snprintf(p, n, "%s/%s", cwd, path);
	return p;
}

int tls_parse_version(const char *s)
{
	static const struct {
		const char *name;
		int version;
	} v[] = {
		{ "1", TLS1_VERSION }, { "1.0", TLS1_VERSION }, { "1.1", TLS1_1_VERSION },
		{ "1.2", TLS1_2_VERSION }, { "1.3", TLS1_3_VERSION },
	};
	if (strncasecmp(s, "tlsv", 4) == 0)
		s += 4;
	else if (strncasecmp(s, "tls", 3) == 0)
		s += 3;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (strcmp(s, v[i].name) == 0)
			return v[i].version;
	return -1;
}

/* Can we open path for reading?  OpenSSL's own message would not name it. */
static int tls_check_file(const char *what, const char *path, char *err, size_t errcap)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errcap, "tls: %s file %s: %s", what, path, strerror(errno));
		return -1;
	}
	fclose(f);
	return 0;
}

static SSL_CTX *tls_ctx_fail(SSL_CTX *ctx, char *err, size_t errcap, const char *what,
                             const char *path)
{
	char buf[256];
	const char *why = tls_ossl_reason(buf, sizeof(buf));
	if (path)
		snprintf(err, errcap, "tls: %s file %s: %s", what, path, why);
	else
		snprintf(err, errcap, "tls: %s: %s", what, why);
	SSL_CTX_free(ctx);
	return NULL;
}

/* A server context from s, or NULL with err set. */
static SSL_CTX *tls_ctx_build(const struct tls_settings *s, char *err, size_t errcap)
{
	const char *minv = s->min_version ? s->min_version : "TLSv1.2";
	int version = tls_parse_version(minv);
	if (version < 0) {
		snprintf(err, errcap, "tls: unknown min_version '%s' (TLSv1.2 or TLSv1.3)", minv);
		return NULL;
	}
	if (!s->cert) {
		snprintf(err, errcap, "tls: a TLS listener needs a certificate (tls.cert or --tls-cert)");
		return NULL;
	}
	if (s->fail_if_no_peer_cert && !s->verify_peer) {
		snprintf(err, errcap, "tls: fail_if_no_peer_cert needs verify_peer");
		return NULL;
	}
	if (s->verify_peer && !s->ca) {
		snprintf(err, errcap, "tls: verify_peer needs a CA file (tls.ca) to verify against");
		return NULL;
	}
	const char *key = s->key ? s->key : s->cert;
	if (tls_check_file("certificate", s->cert, err, errcap) < 0 ||
	    tls_check_file("key", key, err, errcap) < 0 ||
	    (s->ca && tls_check_file("CA", s->ca, err, errcap) < 0))
		return NULL;

	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		return tls_ctx_fail(ctx, err, errcap, "cannot create a context", NULL);
	SSL_CTX_set_min_proto_version(ctx, version);
	long opts = SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET;
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* a client that just closes the socket is a normal end of stream */
	opts |= SSL_OP_IGNORE_UNEXPECTED_EOF;
#endif
	SSL_CTX_set_options(ctx, opts);
	/* Partial writes let the outq account for each record as it goes; a
	 * moving buffer lets retries come from a re-gathered copy.  Idle
	 * connections give their 16 KiB read and write buffers back. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                      SSL_MODE_RELEASE_BUFFERS);
	/* Read whole socket buffers, not a record header then its body. */
	SSL_CTX_set_read_ahead(ctx, 1);
	/* No resumption: AMQP connections are long-lived. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	if (s->ciphers && SSL_CTX_set_cipher_list(ctx, s->ciphers) != 1)
		return tls_ctx_fail(ctx, err, errcap, "ciphers", NULL);
	if (s->ciphersuites && SSL_CTX_set_ciphersuites(ctx, s->ciphersuites) != 1)
		return tls_ctx_fail(ctx, err, errcap, "ciphersuites", NULL);
	if (SSL_CTX_use_certificate_chain_file(ctx, s->cert) != 1)
		return tls_ctx_fail(ctx, err, errcap, "certificate", s->cert);
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		if (ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH)
			return tls_ctx_fail(ctx, err, errcap, "key", key);
		ERR_clear_error();
		snprintf(err, errcap, "tls: key file %s does not match certificate %s", key, s->cert);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (s->ca) {
		if (SSL_CTX_load_verify_locations(ctx, s->ca, NULL) != 1)
			return tls_ctx_fail(ctx, err, errcap, "CA", s->ca);
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(s->ca);
		if (!names)
			return tls_ctx_fail(ctx, err, errcap, "CA", s->ca);
		SSL_CTX_set_client_CA_list(ctx, names);
	}
	int mode = SSL_VERIFY_NONE;
	if (s->verify_peer)
		mode = SSL_VERIFY_PEER;
	if (s->verify_peer && s->fail_if_no_peer_cert)
		mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	SSL_CTX_set_verify(ctx, mode, NULL);
	ERR_clear_error();
	return ctx;
}

/* ---- context --------------------------------------------------------- */

struct tls *tls_new(const struct tls_settings *s, char *err, size_t errcap)
{
	SSL_CTX *ctx = tls_ctx_build(s, err, errcap);
	if (!ctx)
		return NULL;
	struct tls *t = xcalloc(1, sizeof(*t));
	t->ctx = ctx;
	t->s.cert = tls_abs_path(s->cert);
	t->s.key = tls_abs_path(s->key);
	t->s.ca = tls_abs_path(s->ca);
	t->s.ciphers = tls_strdup_opt(s->ciphers);
	t->s.ciphersuites = tls_strdup_opt(s->ciphersuites);
	t->s.min_version = tls_strdup_opt(s->min_version);
	t->s.verify_peer = s->verify_peer;
	t->s.fail_if_no_peer_cert = s->fail_if_no_peer_cert;
	return t;
}

int tls_reload(struct tls *t, char *err, size_t errcap)
{
	SSL_CTX *ctx = tls_ctx_build(&t->s, err, errcap);
	if (!ctx)
		return -1;
	/* open connections hold their own references to the old one */
	SSL_CTX_free(t->ctx);
	t->ctx = ctx;
	return 0;
}

void tls_free(struct tls *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	free((char *)t->s.cert);
	free((char *)t->s.key);
	free((char *)t->s.ca);
	free((char *)t->s.ciphers);
	free((char *)t->s.ciphersuites);
	free((char *)t->s.min_version);
	free(t);
}

/* ---- peer identity --------------------------------------------------- */

/* The subject's CNs as UTF-8, joined with ","; NULL if none or unsafe. */
static char *tls_subject_cn(X509 *cert)
{
	X509_NAME *name = X509_get_subject_name(cert);
	char *out = NULL;
	size_t len = 0;
	for (int i = -1; (i = X509_NAME_get_index_by_NID(name, NID_commonName, i)) >= 0;) {
		X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
		unsigned char *u = NULL;
		int n = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(e));
		/* a NUL inside a name would let "guest\0.evil" pass as "guest" */
		if (n < 0 || memchr(u, '\0', (size_t)n)) {
			OPENSSL_free(u);
			free(out);
			return NULL;
		}
		out = xrealloc(out, len + (len ? 1 : 0) + (size_t)n + 1);
		if (len)
			out[len++] = ',';
		memcpy(out + len, u, (size_t)n);
		len += (size_t)n;
		out[len] = '\0';
		OPENSSL_free(u);
	}
	return out;
}

static void tls_on_established(struct tls_conn *tc)
{
	tc->flags |= TLS_F_ESTABLISHED;
	X509 *peer = SSL_get1_peer_certificate(tc->ssl);
	if (!peer)
		return;
	if (SSL_get_verify_result(tc->ssl) == X509_V_OK &&
	    (SSL_get_verify_mode(tc->ssl) & SSL_VERIFY_PEER))
		tc->peer_cn = tls_subject_cn(peer);
	X509_free(peer);
}

/* ---- transport ------------------------------------------------------- */

static void tls_fatal(struct tls_conn *tc, int sslerr, const char *what)
{
	char buf[256];
	tc->flags |= TLS_F_FATAL;
	if (sslerr == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
		int e = errno ? errno : ECONNRESET;
		snprintf(tc->err, sizeof(tc->err), "%s: %s", what, strerror(e));
		ERR_clear_error();
		return;
	}
	const char *why = tls_ossl_reason(buf, sizeof(buf));
	if (tc->flags & TLS_F_ESTABLISHED)
		snprintf(tc->err, sizeof(tc->err), "%s: %.100s", what, why);
	else
		snprintf(tc->err, sizeof(tc->err), "TLS handshake failed: %.100s", why);
}

/* Drive SSL_accept: 0 when done, -1 with errno EAGAIN or EPROTO. */
static int tls_handshake(struct tls_conn *tc)
{
	ERR_clear_error();
	int rc = SSL_accept(tc->ssl);
	if (rc == 1) {
		tls_on_established(tc);
		return 0;
	}
	int e = SSL_get_error(tc->ssl, rc);
	if (e == SSL_ERROR_WANT_READ) {
		errno = EAGAIN;
		return -1;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		tc->flags |= TLS_F_READ_WANTS_WRITE;
		errno = EAGAIN;
		return -1;
	}
	if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0) {
		/* the client hung up halfway through the handshake */
		tc->flags |= TLS_F_FATAL;
		snprintf(tc->err, sizeof(tc->err),
		         "TLS handshake failed: client closed the socket");
		errno = EPROTO;
		return -1;
	}
	tls_fatal(tc, e, "TLS handshake failed");
	errno = EPROTO;
	return -1;
}

static ssize_t tls_read(struct transport *t, void *buf, size_t n)
{
	struct tls_conn *tc = t->ctx;
	tc->flags &= ~(unsigned)(TLS_F_READ_WANTS_WRITE | TLS_F_READ_MORE);
	if (tc->flags & TLS_F_FATAL) {
		errno = EPROTO;
		return -1;
	}
	if (!(tc->flags & TLS_F_ESTABLISHED) && tls_handshake(tc) < 0)
		return -1;
	uint8_t *p = buf;
	size_t got = 0;
	while (got < n) {
		size_t k = 0;
		errno = 0;
		ERR_clear_error();
		if (SSL_read_ex(tc->ssl, p + got, n - got, &k) == 1) {
			got += k;
			continue;
		}
		int e = SSL_get_error(tc->ssl, 0);
		if (e == SSL_ERROR_WANT_READ)
			break;
		if (e == SSL_ERROR_WANT_WRITE) {
			tc->flags |= TLS_F_READ_WANTS_WRITE;
			break;
		}
		if (e == SSL_ERROR_ZERO_RETURN ||
		    (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0)) {
			/* close_notify or a plain EOF: hand over what came before it */
			ERR_clear_error();
			return (ssize_t)got;
		}
		tls_fatal(tc, e, "TLS read failed");
		if (got > 0)
			return (ssize_t)got; /* the error surfaces on the next read */
		errno = EPROTO;
		return -1;
	}
	if (got == n)
		tc->flags |= TLS_F_READ_MORE;
	if (got == 0) {
		errno = EAGAIN;
		return -1;
	}
	return (ssize_t)got;
}

static ssize_t tls_writev(struct transport *t, const struct iovec *iov, int iovcnt)
{
	struct tls_conn *tc = t->ctx;
	tc->flags &= ~(unsigned)TLS_F_WRITE_WANTS_READ;
	if (tc->flags & TLS_F_FATAL) {
		errno = EPIPE;
		return -1;
	}
	if (!(tc->flags & TLS_F_ESTABLISHED)) {
		/* nothing is queued before the handshake ends; wait if it was */
		errno = EAGAIN;
		return -1;
	}
	size_t total = 0;
	int i = 0;
	size_t off = 0; /* into iov[i] */
	while (i < iovcnt) {
		if (off == iov[i].iov_len) {
			i++;
			off = 0;
			continue;
		}
		const uint8_t *p;
		size_t len;
		size_t rem = iov[i].iov_len - off;
		if (rem >= TLS_GATHER) {
			p = (const uint8_t *)iov[i].iov_base + off;
			len = rem;
		} else {
			/* gather the next record's worth from the following segments */
			uint8_t *w = tc->tls->wbuf;
			len = 0;
			size_t go = off;
			for (int j = i; j < iovcnt && len < TLS_GATHER; j++, go = 0) {
				size_t k = iov[j].iov_len - go;
				if (k > TLS_GATHER - len)
					k = TLS_GATHER - len;
				memcpy(w + len, (const uint8_t *)iov[j].iov_base + go, k);
				len += k;
			}
			p = w;
		}
		size_t done = 0;
		errno = 0;
		ERR_clear_error();
		if (SSL_write_ex(tc->ssl, p, len, &done) != 1) {
			int e = SSL_get_error(tc->ssl, 0);
			if (e == SSL_ERROR_WANT_WRITE)
				break;
			if (e == SSL_ERROR_WANT_READ) {
				tc->flags |= TLS_F_WRITE_WANTS_READ;
				break;
			}
			tls_fatal(tc, e, "TLS write failed");
			if (total > 0)
				return (ssize_t)total;
			errno = EPIPE;
			return -1;
		}
		total += done;
		/* advance (i, off) by done */
		while (done > 0) {
			size_t k = iov[i].iov_len - off;
			if (done < k) {
				off += done;
				done = 0;
			} else {
				done -= k;
				i++;
				off = 0;
			}
		}
	}
	if (total == 0 && i < iovcnt) {
		errno = EAGAIN;
		return -1;
	}
	return (ssize_t)total;
}

static bool tls_pending(const struct transport *t)
{
	const struct tls_conn *tc = t->ctx;
	if (!(tc->flags & TLS_F_ESTABLISHED))
		return false;
	return (tc->flags & (TLS_F_READ_MORE | TLS_F_FATAL)) || SSL_pending(tc->ssl) > 0;
}

static int tls_want(const struct transport *t)
{
	const struct tls_conn *tc = t->ctx;
	int w = 0;
	if (tc->flags & TLS_F_READ_WANTS_WRITE)
		w |= TRANSPORT_WANT_WRITE;
	if (tc->flags & TLS_F_WRITE_WANTS_READ)
		w |= TRANSPORT_WANT_READ;
	return w;
}

static const char *tls_error(const struct transport *t)
{
	const struct tls_conn *tc = t->ctx;
	return tc->err[0] ? tc->err : NULL;
}

static void tls_close(struct transport *t)
{
	struct tls_conn *tc = t->ctx;
	if (!tc)
		return;
	if ((tc->flags & (TLS_F_ESTABLISHED | TLS_F_FATAL)) == TLS_F_ESTABLISHED) {
		/* one polite close_notify; never wait for the answer */
		ERR_clear_error();
		SSL_shutdown(tc->ssl);
	}
	ERR_clear_error();
	SSL_free(tc->ssl);
	free(tc->peer_cn);
	free(tc);
	t->ctx = NULL;
}

static const struct transport_ops tls_ops = {
	.name = "tls",
	.read = tls_read,
	.writev = tls_writev,
	.pending = tls_pending,
	.want = tls_want,
	.error = tls_error,
	.close = tls_close,
};

int tls_transport_init(struct tls *tls, struct transport *t, int fd, char *err, size_t errcap)
{
	ERR_clear_error();
	SSL *ssl = SSL_new(tls->ctx);
	if (!ssl || SSL_set_fd(ssl, fd) != 1) {
		char buf[256];
		snprintf(err, errcap, "TLS: cannot set up the connection: %s",
		         tls_ossl_reason(buf, sizeof(buf)));
		SSL_free(ssl);
		return -1;
	}
	SSL_set_accept_state(ssl);
	struct tls_conn *tc = xcalloc(1, sizeof(*tc));
	tc->ssl = ssl;
	tc->tls = tls;
	t->ops = &tls_ops;
	t->fd = fd;
	t->ctx = tc;
	return 0;
}

bool tls_transport_is(const struct transport *t)
{
	return t->ops == &tls_ops;
}

bool tls_established(const struct transport *t)
{
	if (!tls_transport_is(t))
		return false;
	const struct tls_conn *tc = t->ctx;
	return (tc->flags & TLS_F_ESTABLISHED) != 0;
}

const char *tls_peer_cn(const struct transport *t)
{
	if (!tls_transport_is(t))
		return NULL;
	const struct tls_conn *tc = t->ctx;
	return tc->peer_cn;
}

void tls_describe(const struct transport *t, char *buf, size_t cap)
{
	if (!tls_established(t)) {
		snprintf(buf, cap, "%s", tls_transport_is(t) ? "TLS (handshake)" : "TCP");
		return;
	}
	const struct tls_conn *tc = t->ctx;
	snprintf(buf, cap, "%s %s", SSL_get_version(tc->ssl), SSL_get_cipher_name(tc->ssl));
}
