/*
 * TLS: the transport against an OpenSSL client over a socketpair
 * (handshakes, partial reads, blocked writes re-gathered from an outq,
 * client certificates and their CN, version floors, context errors and
 * reloads).  The broker-level cases are in tls_test_broker.c.
 *
 * The PKI is made in-process once per test case (unchecked fixture) in a
 * temporary directory: a CA, a server certificate, client certificates for
 * guest and someone, a guest certificate from another CA, and odd ones.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "net/outq.h"
#include "net/tls.h"
#include "runner.h"
#include "tls_test_util.h"

char tt_dir[64];
/* Stable names for settings structs (tt_path() recycles its buffers). */
static char server_pem[128], server_key[128], ca_pem[128];

const char *tt_path(const char *name)
{
	static char buf[8][256];
	static int i;
	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", tt_dir, name);
	return buf[i];
}

/* ---- an in-process PKI ----------------------------------------------- */

static void write_pem(const char *name, X509 *x, EVP_PKEY *k)
{
	char file[96];
	snprintf(file, sizeof(file), "%s.pem", name);
	FILE *f = fopen(tt_path(file), "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(PEM_write_X509(f, x), 1);
	fclose(f);
	snprintf(file, sizeof(file), "%s.key", name);
	f = fopen(tt_path(file), "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v;
	X509V3_set_ctx_nodb(&v);
	X509V3_set_ctx(&v, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v, nid, value);
	ck_assert_ptr_nonnull(e);
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
}

/* A certificate for key with subject CNs cn[0..ncn) (cnlen[i] bytes), signed
 * by issuer/ikey (self-signed when issuer is NULL). */
static X509 *cert_new(EVP_PKEY *key, const char *const *cn, const int *cnlen, int ncn,
                      X509 *issuer, EVP_PKEY *ikey, const char *san)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	X509_NAME *n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"Warren", -1, -1, 0);
	for (int i = 0; i < ncn; i++)
		ck_assert_int_eq(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
		                                             (const unsigned char *)cn[i], cnlen[i],
		                                             -1, 0), 1);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	add_ext(x, issuer ? issuer : x, NID_basic_constraints,
	        issuer ? "critical,CA:FALSE" : "critical,CA:TRUE");
	if (san)
		add_ext(x, issuer ? issuer : x, NID_subject_alt_name, san);
	ck_assert_int_gt(X509_sign(x, ikey ? ikey : key, EVP_sha256()), 0);
	return x;
}

static void leaf(const char *name, const char *cn, int cnlen, X509 *ca, EVP_PKEY *cakey,
                 const char *san)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	const char *cns[] = { cn };
	int lens[] = { cnlen };
	X509 *x = cert_new(k, cns, lens, 1, ca, cakey, san);
	write_pem(name, x, k);
	X509_free(x);
	EVP_PKEY_free(k);
}

void tt_pki_setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	snprintf(tt_dir, sizeof(tt_dir), "/tmp/warren-tls-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tt_dir));
	snprintf(server_pem, sizeof(server_pem), "%s/server.pem", tt_dir);
	snprintf(server_key, sizeof(server_key), "%s/server.key", tt_dir);
	snprintf(ca_pem, sizeof(ca_pem), "%s/ca.pem", tt_dir);
	EVP_PKEY *cakey = EVP_EC_gen("P-256");
	const char *cacn[] = { "Warren test CA" };
	int calen[] = { -1 };
	X509 *ca = cert_new(cakey, cacn, calen, 1, NULL, NULL, NULL);
	write_pem("ca", ca, cakey);
	leaf("server", "localhost", -1, ca, cakey, "DNS:localhost,IP:127.0.0.1");
	leaf("server2", "reloaded", -1, ca, cakey, "DNS:localhost");
	leaf("guest", "guest", -1, ca, cakey, NULL);
	leaf("someone", "someone", -1, ca, cakey, NULL);
	/* "guest\0evil": a name that would read as guest in C */
	leaf("nul", "guest\0evil", 10, ca, cakey, NULL);
	EVP_PKEY *k = EVP_EC_gen("P-256");
	const char *two[] = { "alpha", "beta" };
	int twolen[] = { -1, -1 };
	X509 *x = cert_new(k, two, twolen, 2, ca, cakey, NULL);
	write_pem("multi", x, k);
	X509_free(x);
	EVP_PKEY_free(k);
	/* guest, but from a CA the server does not trust */
	EVP_PKEY *okey = EVP_EC_gen("P-256");
	const char *ocn[] = { "Other CA" };
	X509 *other = cert_new(okey, ocn, calen, 1, NULL, NULL, NULL);
	leaf("rogue", "guest", -1, other, okey, NULL);
	X509_free(other);
	EVP_PKEY_free(okey);
	X509_free(ca);
	EVP_PKEY_free(cakey);
	FILE *f = fopen(tt_path("garbage.pem"), "w");
	fputs("this is not a certificate\n", f);
	fclose(f);
}

void tt_pki_teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tt_dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* ---- a transport and an OpenSSL client over a socketpair ------------- */

struct pair {
	struct tls *tls;
	struct transport tp;
	SSL_CTX *cctx;
	SSL *c;
	int sfd, cfd;
};

struct tls_settings tt_settings(void)
{
	struct tls_settings s = { .cert = server_pem, .key = server_key };
	return s;
}

SSL_CTX *tt_client_ctx(const char *cert, int max_version)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
	ck_assert_int_eq(SSL_CTX_load_verify_locations(ctx, tt_path("ca.pem"), NULL), 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (cert) {
		char f[64];
		snprintf(f, sizeof(f), "%s.pem", cert);
		ck_assert_int_eq(SSL_CTX_use_certificate_file(ctx, tt_path(f), SSL_FILETYPE_PEM), 1);
		snprintf(f, sizeof(f), "%s.key", cert);
		ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(ctx, tt_path(f), SSL_FILETYPE_PEM), 1);
	}
	if (max_version) {
		/* old versions need OpenSSL 3's lowest security level to be offered */
		SSL_CTX_set_security_level(ctx, 0);
		SSL_CTX_set_cipher_list(ctx, "DEFAULT@SECLEVEL=0");
		SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
		SSL_CTX_set_max_proto_version(ctx, max_version);
	}
	return ctx;
}

void tt_sockpair(int *s, int *c)
{
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	*s = sv[0];
	*c = sv[1];
}

static void pair_open_tls(struct pair *p, struct tls *tls, const char *cert, int max_version)
{
	char err[256];
	memset(p, 0, sizeof(*p));
	p->tls = tls;
	tt_sockpair(&p->sfd, &p->cfd);
	ck_assert_int_eq(tls_transport_init(tls, &p->tp, p->sfd, err, sizeof(err)), 0);
	ck_assert(tls_transport_is(&p->tp));
	p->cctx = tt_client_ctx(cert, max_version);
	p->c = SSL_new(p->cctx);
	SSL_set_fd(p->c, p->cfd);
	SSL_set_connect_state(p->c);
	SSL_set_tlsext_host_name(p->c, "localhost");
	SSL_set1_host(p->c, "localhost");
}

static void pair_open(struct pair *p, const struct tls_settings *s, const char *cert,
                      int max_version)
{
	char err[256];
	struct tls *tls = tls_new(s, err, sizeof(err));
	ck_assert_msg(tls != NULL, "%s", err);
	pair_open_tls(p, tls, cert, max_version);
}

static void pair_close(struct pair *p, bool free_tls)
{
	p->tp.ops->close(&p->tp);
	SSL_free(p->c);
	SSL_CTX_free(p->cctx);
	close(p->sfd);
	close(p->cfd);
	if (free_tls)
		tls_free(p->tls);
}

/* Run both sides until both finished (0) or the server failed (-1). */
static int pair_handshake(struct pair *p)
{
	for (int i = 0; i < 1000; i++) {
		if (!tls_established(&p->tp)) {
			uint8_t b[64];
			ssize_t n = p->tp.ops->read(&p->tp, b, sizeof(b));
			if (n < 0 && errno != EAGAIN)
				return -1;
			ck_assert_int_le(n, 0);
		}
		ERR_clear_error();
		int rc = SSL_do_handshake(p->c);
		if (rc == 1 && tls_established(&p->tp))
			return 0;
		if (rc <= 0) {
			int e = SSL_get_error(p->c, rc);
			ck_assert_msg(e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ||
			              !tls_established(&p->tp), "client handshake error %d", e);
		}
	}
	ck_abort_msg("handshake did not finish");
	return -1;
}

static const char *server_error(struct pair *p)
{
	const char *e = p->tp.ops->error(&p->tp);
	return e ? e : "";
}

/* Client writes all of buf, reading nothing (the server reads meanwhile). */
static void client_write(struct pair *p, const void *buf, size_t n)
{
	size_t done = 0;
	while (done < n) {
		size_t k;
		ck_assert_int_eq(SSL_write_ex(p->c, (const uint8_t *)buf + done, n - done, &k), 1);
		done += k;
	}
}

/* Up to n bytes for the client, waiting a little for them. */
static size_t client_read(struct pair *p, void *buf, size_t n)
{
	for (int i = 0; i < 200; i++) {
		size_t k;
		ERR_clear_error();
		if (SSL_read_ex(p->c, buf, n, &k) == 1)
			return k;
		int e = SSL_get_error(p->c, 0);
		if (e != SSL_ERROR_WANT_READ)
			return 0;
		usleep(1000);
	}
	return 0;
}

/* ---- transport ------------------------------------------------------- */

START_TEST(test_handshake_and_echo)
{
	struct tls_settings s = tt_settings();
	struct pair p;
	pair_open(&p, &s, NULL, 0);
	ck_assert(!tls_established(&p.tp));
	ck_assert_int_eq(pair_handshake(&p), 0);
	ck_assert_ptr_null(tls_peer_cn(&p.tp)); /* no client certificate asked for */
	char desc[96];
	tls_describe(&p.tp, desc, sizeof(desc));
	ck_assert_msg(strncmp(desc, "TLSv1.3 ", 8) == 0, "%s", desc);

	client_write(&p, "hello", 5);
	char buf[64];
	ssize_t n = p.tp.ops->read(&p.tp, buf, sizeof(buf));
	ck_assert_int_eq(n, 5);
	ck_assert(memcmp(buf, "hello", 5) == 0);
	ck_assert(!transport_pending(&p.tp));
	n = p.tp.ops->read(&p.tp, buf, sizeof(buf));
	ck_assert_int_eq(n, -1);
	ck_assert_int_eq(errno, EAGAIN);

	struct iovec iov[3] = { { "abc", 3 }, { (void *)"", 0 }, { "defg", 4 } };
	ck_assert_int_eq(p.tp.ops->writev(&p.tp, iov, 3), 7);
	ck_assert_uint_eq(client_read(&p, buf, sizeof(buf)), 7);
	ck_assert(memcmp(buf, "abcdefg", 7) == 0);

	/* the client's close_notify reads as the end of the stream */
	SSL_shutdown(p.c);
	ck_assert_int_eq(p.tp.ops->read(&p.tp, buf, sizeof(buf)), 0);
	pair_close(&p, true);
}
END_TEST

START_TEST(test_partial_reads_leave_pending)
{
	struct tls_settings s = tt_settings();
	struct pair p;
	pair_open(&p, &s, NULL, 0);
	ck_assert_int_eq(pair_handshake(&p), 0);
	static uint8_t out[100000], in[100000];
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (uint8_t)(i * 7 + i / 251);
	/* the whole stream sits in the socket before the server reads */
	client_write(&p, out, sizeof(out));
	size_t got = 0;
	int reads = 0;
	for (;;) {
		ssize_t n = p.tp.ops->read(&p.tp, in + got, 1000);
		if (n < 0) {
			ck_assert_int_eq(errno, EAGAIN);
			break;
		}
		ck_assert_int_eq(n, 1000);
		/* a full buffer: there may be more the socket will not announce */
		ck_assert(transport_pending(&p.tp));
		got += (size_t)n;
		reads++;
	}
	ck_assert_uint_eq(got, sizeof(out));
	ck_assert_int_eq(reads, 100);
	ck_assert(memcmp(in, out, sizeof(out)) == 0);
	ck_assert(!transport_pending(&p.tp));
	pair_close(&p, true);
}
END_TEST

START_TEST(test_blocked_writes_regather)
{
	struct tls_settings s = tt_settings();
	struct pair p;
	pair_open(&p, &s, NULL, 0);
	ck_assert_int_eq(pair_handshake(&p), 0);
	int small = 4096;
	setsockopt(p.sfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(p.cfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));

	/* 1 MiB in odd-sized pieces: small ones are gathered into records,
	 * full 16 KiB blocks go out in place */
	enum { TOTAL = 1 << 20 };
	static uint8_t src[TOTAL + 65536], dst[TOTAL + 65536];
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i ^ (i >> 9));
	struct outq_pool pool;
	struct outq q = { 0 };
	outq_pool_init(&pool, 16);
	size_t queued = 0, got = 0;
	int blocked = 0;
	while (queued < TOTAL) {
		size_t k = 1 + (queued * 31) % 3000;
		if (queued % 5 == 0)
			k = OUTQ_BLOCK_SIZE;
		if (k > TOTAL - queued)
			k = TOTAL - queued;
		outq_put(&q, &pool, src + queued, k);
		queued += k;
	}
	size_t extra = 0;
	for (int round = 0; q.bytes > 0 && round < 100000; round++) {
		ssize_t w = outq_flush(&q, &pool, &p.tp);
		ck_assert_msg(w >= 0, "flush: %s", server_error(&p));
		if (q.bytes > 0) {
			blocked++;
			/* more output arrives while a record is stuck: the retry
			 * must offer the same leading bytes, maybe more of them */
			if (extra < 65536 && round % 3 == 0) {
				outq_put(&q, &pool, src + queued, 100);
				queued += 100;
				extra += 100;
			}
			ck_assert_int_eq(transport_want(&p.tp) & TRANSPORT_WANT_READ, 0);
		}
		size_t k;
		while (got < queued && SSL_read_ex(p.c, dst + got, 7000, &k) == 1)
			got += k;
		ERR_clear_error();
	}
	ck_assert_uint_eq(q.bytes, 0);
	ck_assert_int_gt(blocked, 10);
	for (int i = 0; i < 1000 && got < queued; i++) {
		size_t k;
		if (SSL_read_ex(p.c, dst + got, queued - got, &k) == 1)
			got += k;
		else
			usleep(1000);
	}
	ck_assert_uint_eq(got, queued);
	ck_assert(memcmp(src, dst, queued) == 0);
	outq_clear(&q, &pool);
	outq_pool_drain(&pool);
	pair_close(&p, true);
}
END_TEST

START_TEST(test_client_certificate_cn)
{
	struct tls_settings s = tt_settings();
	s.ca = ca_pem;
	s.verify_peer = true;
	static const struct {
		const char *cert;
		const char *cn; /* NULL: none exposed */
	} v[] = {
		{ "guest", "guest" },
		{ "someone", "someone" },
		{ "multi", "alpha,beta" },
		{ "nul", NULL },  /* refused as a name, not as a certificate */
		{ NULL, NULL },   /* no certificate: allowed without fail_if_no_peer_cert */
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct pair p;
		pair_open(&p, &s, v[i].cert, 0);
		ck_assert_msg(pair_handshake(&p) == 0, "%s: %s", v[i].cert, server_error(&p));
		const char *cn = tls_peer_cn(&p.tp);
		if (v[i].cn)
			ck_assert_str_eq(cn, v[i].cn);
		else
			ck_assert_ptr_null(cn);
		pair_close(&p, true);
	}
}
END_TEST

START_TEST(test_refused_handshakes)
{
	static const struct {
		const char *cert;
		bool fail_if_none;
		int client_max;
		const char *min_version;
		const char *why;
	} v[] = {
		{ NULL, true, 0, NULL, "certificate" },
		{ "rogue", false, 0, NULL, "certificate verify failed" },
		{ NULL, false, TLS1_1_VERSION, NULL, "unsupported protocol" },
		{ NULL, false, TLS1_2_VERSION, "TLSv1.3", "unsupported protocol" },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct tls_settings s = tt_settings();
		s.ca = ca_pem;
		s.verify_peer = true;
		s.fail_if_no_peer_cert = v[i].fail_if_none;
		s.min_version = v[i].min_version;
		struct pair p;
		pair_open(&p, &s, v[i].cert, v[i].client_max);
		ck_assert_int_eq(pair_handshake(&p), -1);
		ck_assert_int_eq(errno, EPROTO);
		const char *e = server_error(&p);
		ck_assert_msg(strstr(e, "TLS handshake failed: ") == e && strstr(e, v[i].why),
		              "case %zu: %s", i, e);
		/* nothing more happens on a failed transport */
		uint8_t b[8];
		ck_assert_int_eq(p.tp.ops->read(&p.tp, b, sizeof(b)), -1);
		struct iovec iov = { b, sizeof(b) };
		ck_assert_int_eq(p.tp.ops->writev(&p.tp, &iov, 1), -1);
		pair_close(&p, true);
	}
	/* TLS 1.2 is still fine by default */
	struct tls_settings s = tt_settings();
	struct pair p;
	pair_open(&p, &s, NULL, TLS1_2_VERSION);
	ck_assert_int_eq(pair_handshake(&p), 0);
	char desc[96];
	tls_describe(&p.tp, desc, sizeof(desc));
	ck_assert_msg(strncmp(desc, "TLSv1.2 ", 8) == 0, "%s", desc);
	pair_close(&p, true);
}
END_TEST

START_TEST(test_context_errors)
{
	static const struct {
		const char *cert, *key, *ca, *minv, *ciphers;
		bool verify, fail;
		const char *want1, *want2;
	} v[] = {
		{ "missing.pem", NULL, NULL, NULL, NULL, false, false,
		  "tls: certificate file ", "missing.pem: No such file or directory" },
		{ "garbage.pem", NULL, NULL, NULL, NULL, false, false,
		  "tls: certificate file ", "garbage.pem: " },
		{ "server.pem", "missing.key", NULL, NULL, NULL, false, false,
		  "tls: key file ", "missing.key: No such file" },
		{ "server.pem", "guest.key", NULL, NULL, NULL, false, false,
		  "guest.key does not match certificate ", "server.pem" },
		{ "server.pem", "server.key", "garbage.pem", NULL, NULL, false, false,
		  "tls: CA file ", "garbage.pem" },
		{ "server.pem", "server.key", NULL, "TLSv9", NULL, false, false,
		  "unknown min_version 'TLSv9'", "" },
		{ "server.pem", "server.key", NULL, NULL, "NOT-A-CIPHER", false, false,
		  "tls: ciphers: ", "" },
		{ "server.pem", "server.key", NULL, NULL, NULL, true, false,
		  "verify_peer needs a CA file", "" },
		{ "server.pem", "server.key", "ca.pem", NULL, NULL, false, true,
		  "fail_if_no_peer_cert needs verify_peer", "" },
		{ NULL, NULL, NULL, NULL, NULL, false, false, "needs a certificate", "" },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct tls_settings s = {
			.cert = v[i].cert ? tt_path(v[i].cert) : NULL,
			.key = v[i].key ? tt_path(v[i].key) : NULL,
			.ca = v[i].ca ? tt_path(v[i].ca) : NULL,
			.min_version = v[i].minv,
			.ciphers = v[i].ciphers,
			.verify_peer = v[i].verify,
			.fail_if_no_peer_cert = v[i].fail,
		};
		char err[512] = "";
		ck_assert_ptr_null(tls_new(&s, err, sizeof(err)));
		ck_assert_msg(strstr(err, v[i].want1) && strstr(err, v[i].want2), "case %zu: %s", i,
		              err);
		ck_assert_ptr_null(strchr(err, '\n'));
	}
	ck_assert_int_eq(tls_parse_version("TLSv1.2"), TLS1_2_VERSION);
	ck_assert_int_eq(tls_parse_version("tls1.3"), TLS1_3_VERSION);
	ck_assert_int_eq(tls_parse_version("1.1"), TLS1_1_VERSION);
	ck_assert_int_eq(tls_parse_version("SSLv3"), -1);
	/* the key may sit in the certificate file */
	char both[256];
	snprintf(both, sizeof(both), "cat '%s' '%s' > '%s'", tt_path("server.pem"),
	         tt_path("server.key"), tt_path("both.pem"));
	ck_assert_int_eq(system(both), 0);
	struct tls_settings s = { .cert = tt_path("both.pem"), .ciphersuites = "TLS_AES_128_GCM_SHA256" };
	struct pair p;
	pair_open(&p, &s, NULL, 0);
	ck_assert_int_eq(pair_handshake(&p), 0);
	ck_assert_str_eq(SSL_get_cipher_name(p.c), "TLS_AES_128_GCM_SHA256");
	pair_close(&p, true);
}
END_TEST

static void copy_file(const char *from, const char *to)
{
	char cmd[320];
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", tt_path(from), tt_path(to));
	ck_assert_int_eq(system(cmd), 0);
}

static char *server_cn(struct pair *p)
{
	X509 *x = SSL_get1_peer_certificate(p->c);
	ck_assert_ptr_nonnull(x);
	static char cn[64];
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
	X509_free(x);
	return cn;
}

START_TEST(test_reload)
{
	copy_file("server.pem", "live.pem");
	copy_file("server.key", "live.key");
	struct tls_settings s = { .cert = tt_path("live.pem"), .key = tt_path("live.key") };
	char err[512];
	struct tls *tls = tls_new(&s, err, sizeof(err));
	ck_assert_msg(tls != NULL, "%s", err);
	struct pair old;
	pair_open_tls(&old, tls, NULL, 0);
	ck_assert_int_eq(pair_handshake(&old), 0);
	ck_assert_str_eq(server_cn(&old), "localhost");

	/* renewed certificate: new connections get it, the old one goes on */
	copy_file("server2.pem", "live.pem");
	copy_file("server2.key", "live.key");
	ck_assert_msg(tls_reload(tls, err, sizeof(err)) == 0, "%s", err);
	struct pair p;
	pair_open_tls(&p, tls, NULL, 0);
	ck_assert_int_eq(pair_handshake(&p), 0);
	ck_assert_str_eq(server_cn(&p), "reloaded");
	pair_close(&p, false);
	client_write(&old, "still", 5);
	char buf[16];
	ck_assert_int_eq(old.tp.ops->read(&old.tp, buf, sizeof(buf)), 5);

	/* a broken file: the reload fails, naming it, and nothing changes */
	copy_file("garbage.pem", "live.pem");
	ck_assert_int_eq(tls_reload(tls, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "live.pem"), "%s", err);
	pair_open_tls(&p, tls, NULL, 0);
	ck_assert_int_eq(pair_handshake(&p), 0);
	ck_assert_str_eq(server_cn(&p), "reloaded");
	pair_close(&p, false);
	pair_close(&old, false);
	tls_free(tls);
}
END_TEST

Suite *unit_suite(void)
{
	Suite *s = suite_create("tls");
	TCase *tc = tcase_create("transport");
	tcase_add_unchecked_fixture(tc, tt_pki_setup, tt_pki_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_handshake_and_echo);
	tcase_add_test(tc, test_partial_reads_leave_pending);
	tcase_add_test(tc, test_blocked_writes_regather);
	tcase_add_test(tc, test_client_certificate_cn);
	tcase_add_test(tc, test_refused_handshakes);
	tcase_add_test(tc, test_context_errors);
	tcase_add_test(tc, test_reload);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, tt_broker_case());
	return s;
}
