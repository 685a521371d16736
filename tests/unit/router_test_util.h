/* Fixture and helpers shared by the router test sources (one binary). */
#ifndef WARREN_TEST_ROUTER_TEST_UTIL_H
#define WARREN_TEST_ROUTER_TEST_UTIL_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/binding.h"
#include "broker/queue.h"
#include "broker/vhost.h"
#include "codec/gen_methods.h"
#include "codec/table.h"

extern struct vhost *vh;          /* a fresh vhost "/" per test */
extern struct reply err;
extern const struct ftable none;  /* the empty table */
extern int conn_a, conn_b;        /* their addresses stand in for connections */

void setup(void);
void teardown(void);
/* A table builder freed at teardown. */
struct ftable_builder *tb(void);
struct bytes B(const char *s);
struct queue *declare_q(const char *name);
void declare_x(const char *name, const char *type);
/* Declare an exchange with an alternate-exchange argument. */
void declare_ae(const char *name, const char *type, const char *ae);
void qbind(const char *q, const char *x, const char *key, struct ftable args);
void xbind(const char *dst, const char *src, const char *key);
/* Route on xname; the sorted, comma-separated names of the queues reached. */
const char *route_keys(const char *xname, const struct bytes *keys, size_t n,
                       struct ftable headers);
const char *route(const char *xname, const char *key);
const char *route_h(const char *xname, struct ftable headers);
/* Assert rc is -1 with this code and text, then clear err. */
void expect_err(int rc, uint16_t code, const char *text);

TCase *router_defs_tcase(void);

#endif
