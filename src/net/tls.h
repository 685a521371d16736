/*
 * TLS for AMQP listeners (amqps, port 5671 by convention) with OpenSSL.
 *
 * A struct tls holds the server's SSL_CTX, built from struct tls_settings,
 * and a gather buffer shared by all its connections (one event-loop
 * thread, so one buffer is enough).  tls_reload() builds a fresh SSL_CTX
 * from the same settings (re-reading the certificate, key and CA files) for
 * new connections; connections already open keep the SSL_CTX they were
 * made from, which OpenSSL keeps alive by reference counting.  A failed
 * reload leaves the current SSL_CTX in place.
 *
 * Each connection gets a transport (net/transport.h) whose read performs
 * the server handshake first (non-blocking SSL_accept), then SSL_read;
 * WANT_READ/WANT_WRITE become EAGAIN plus watcher wants.  Writes gather
 * small output segments into TLS-record-sized chunks (SSL_MODE_ENABLE_
 * PARTIAL_WRITE and SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER are set, so a
 * retried write may come from a re-gathered copy of the same bytes).
 *
 * Client certificates: with verify_peer the server asks for one and checks
 * it against the CA file; a connection whose certificate verified exposes
 * its subject CN (tls_peer_cn) for SASL EXTERNAL.
 */
#ifndef WARREN_NET_TLS_H
#define WARREN_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "net/transport.h"

struct tls;

struct tls_settings {
	const char *cert;         /* PEM: server certificate, then any chain */
	const char *key;          /* PEM private key; NULL: it is in cert */
	const char *ca;           /* PEM CA bundle for client certificates; NULL: none */
	const char *ciphers;      /* TLS 1.2 and older cipher list; NULL: OpenSSL's */
	const char *ciphersuites; /* TLS 1.3 suites; NULL: OpenSSL's */
	const char *min_version;  /* "TLSv1.2" (the default when NULL), "TLSv1.3", ... */
	bool verify_peer;         /* ask for a client certificate and verify it */
	bool fail_if_no_peer_cert; /* with verify_peer: refuse clients without one */
};

/*
 * Build the context, copying the settings for later reloads.  Returns NULL
 * with one line in err naming what is wrong (a file, a version, a cipher
 * list) when it cannot.
 */
struct tls *tls_new(const struct tls_settings *s, char *err, size_t errcap);
/* Re-read the files into a fresh context for new connections: 0, or -1
 * with err set and the current context kept. */
int tls_reload(struct tls *t, char *err, size_t errcap);
/* Free the context; connections made from it must be closed first. */
void tls_free(struct tls *t);

/* The protocol version a "min_version" value names (TLS1_2_VERSION ...),
 * or -1; accepts "TLSv1.2", "tlsv1.2", "TLS1.2" and "1.2". */
int tls_parse_version(const char *s);

/* Make t a server-side TLS transport on fd.  -1 (err set) on failure. */
int tls_transport_init(struct tls *tls, struct transport *t, int fd, char *err, size_t errcap);
bool tls_transport_is(const struct transport *t);
/* Has the handshake finished? */
bool tls_established(const struct transport *t);
/*
 * The subject CN of the client's certificate if it sent one and it was
 * verified (several CNs are joined with ","), else NULL.  Valid until the
 * transport closes.
 */
const char *tls_peer_cn(const struct transport *t);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" into buf, for logs. */
void tls_describe(const struct transport *t, char *buf, size_t cap);

#endif
