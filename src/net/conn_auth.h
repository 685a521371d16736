/*
 * SASL for connection.start-ok: PLAIN and AMQPLAIN, and EXTERNAL on TLS
 * connections whose client certificate verified.  Until real users exist
 * the only account is guest/guest, allowed from loopback addresses only
 * (RabbitMQ's default).
 */
#ifndef WARREN_NET_CONN_AUTH_H
#define WARREN_NET_CONN_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "codec/wire.h"

struct broker;

enum {
	CONN_AUTH_OK = 0,
	CONN_AUTH_REFUSED = 1,       /* bad credentials or not allowed from here */
	CONN_AUTH_BAD_MECHANISM = 2, /* unknown mechanism or malformed response */
};

/* On success *user is a heap copy of the authenticated user name. */
int conn_auth_check(struct broker *b, struct bytes mechanism, struct bytes response,
                    bool loopback, char **user, char *why, size_t whycap);
/*
 * EXTERNAL: the user is the one the verified client certificate's subject
 * CN names (cert_cn; NULL when the connection has no verified certificate).
 * The client's response (an authorisation identity) is not used, as in
 * RabbitMQ.  Same results as conn_auth_check.
 */
int conn_auth_external(struct broker *b, const char *cert_cn, bool loopback, char **user,
                       char *why, size_t whycap);

#endif
