/* Connection internals shared by conn.c (I/O, frames, channels) and
 * conn_handshake.c (the connection class). */
#ifndef WARREN_NET_CONN_INT_H
#define WARREN_NET_CONN_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "codec/gen_methods.h"
#include "codec/frame.h"
#include "net/conn.h"

void conn_close_fmt(struct conn *c, uint16_t code, uint32_t method_id, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Nothing more will be read: flush what is queued, then close. */
void conn_finish(struct conn *c);
/* Send close-ok for the client's connection.close and wait for its EOF. */
void conn_close_ok(struct conn *c);
void conn_send_raw(struct conn *c, const void *p, size_t n);
void conn_send_start(struct conn *c);
void conn_on_method0(struct conn *c, uint32_t id, const union codec_method_args *a);
/* Start the failed-login delay: stop reading; the timer then sends the 403
 * (with the authentication_failure_close capability) or hangs up. */
void conn_auth_fail(struct conn *c, struct bytes mechanism);
/* The delay is over: answer the failed login now. */
void conn_auth_fail_answer(struct conn *c);

/* conn.c */
void conn_update_io(struct conn *c);
bool conn_output_full(const struct conn *c);
/* conn_channel.c */
void conn_chans_free(struct conn *c);
void conn_on_frame(struct conn *c, const struct frame *f);

#endif
