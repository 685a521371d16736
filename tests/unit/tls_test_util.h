/*
 * Shared by the TLS Check tests (tls_test.c: the transport; tls_test_broker.c:
 * EXTERNAL and a broker over TLS): an in-process PKI made once per test case
 * in a temporary directory, and an OpenSSL client context trusting it.
 */
#ifndef WARREN_TESTS_TLS_TEST_UTIL_H
#define WARREN_TESTS_TLS_TEST_UTIL_H

#include <check.h>
#include <openssl/ssl.h>

#include "net/tls.h"

/* The PKI directory; tt_path() names a file in it (the result is one of a
 * few rotating buffers: copy it if it must outlive several calls). */
extern char tt_dir[64];
const char *tt_path(const char *name);
/* Unchecked fixture: make (and remove) the CA, server.pem/key (CN=localhost),
 * server2 (CN=reloaded), guest, someone, multi (two CNs), nul (a NUL in
 * the CN) and rogue (CN=guest from another CA), plus garbage.pem. */
void tt_pki_setup(void);
void tt_pki_teardown(void);
/* Server settings with server.pem and server.key. */
struct tls_settings tt_settings(void);
/* A client trusting the CA, with certificate NAME.pem/NAME.key if cert is
 * not NULL, and at most max_version if not 0. */
SSL_CTX *tt_client_ctx(const char *cert, int max_version);
/* A non-blocking AF_UNIX stream pair: *s for the server, *c for the client. */
void tt_sockpair(int *s, int *c);
/* EXTERNAL and the broker-level cases (tls_test_broker.c). */
TCase *tt_broker_case(void);

#endif
