/*
 * Admin internals shared by the socket code (admin.c) and the commands
 * (admin_list.c: status and listings; admin_ops.c: everything that changes
 * something).
 *
 * A command reads its arguments from r->args (always an object, possibly
 * empty) and writes exactly one JSON value, its result, into r->w; on
 * failure it returns -1 with r->err set and whatever it wrote is dropped.
 */
#ifndef WARREN_ADMIN_ADMIN_INT_H
#define WARREN_ADMIN_ADMIN_INT_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "admin/admin.h"
#include "codec/wire.h"
#include "util/json.h"

struct conn;
struct vhost;

struct admin_client {
	ev_io io; /* first: the callback casts back */
	struct admin *a;
	struct admin_client *prev, *next;
	char *in;             /* bytes received, not yet a whole line */
	size_t inlen, incap;
	char *out;            /* responses not yet written */
	size_t outlen, outoff;
	bool closing;         /* write what is left, then close */
};

struct admin {
	ev_io io; /* listening socket; first */
	struct broker *b;
	struct users *u;
	char *path;
	dev_t dev;            /* the socket file we made, so close removes only ours */
	ino_t ino;
	ev_tstamp started;
	struct admin_client *clients;
	size_t nclients;
	admin_changed_fn changed;
	void *changed_ctx;
};

struct admin_req {
	struct admin *a;
	const struct json_value *args;
	struct json_out *w;
	bool changed;         /* set by commands that changed definitions */
	char err[512];
};

typedef int (*admin_cmd_fn)(struct admin_req *r);

__attribute__((format(printf, 2, 3)))
int admin_fail(struct admin_req *r, const char *fmt, ...);
/* String argument key; NULL (with r->err set when required) if absent. */
const char *admin_arg_str(struct admin_req *r, const char *key, bool required);
/* String argument as bytes (names may hold any byte); -1 if required and absent. */
int admin_arg_bytes(struct admin_req *r, const char *key, bool required, struct bytes *out);
bool admin_arg_bool(struct admin_req *r, const char *key, bool def);
/* The vhost named by args.vhost (default "/"); NULL with r->err if missing. */
struct vhost *admin_arg_vhost(struct admin_req *r);
/* RabbitMQ's connection name "PEER -> LOCAL" into buf. */
void admin_conn_name(const struct conn *c, char *buf, size_t cap);

/* admin_list.c */
int admin_cmd_status(struct admin_req *r);
int admin_cmd_environment(struct admin_req *r);
int admin_cmd_list_queues(struct admin_req *r);
int admin_cmd_list_exchanges(struct admin_req *r);
int admin_cmd_list_bindings(struct admin_req *r);
int admin_cmd_list_connections(struct admin_req *r);
int admin_cmd_list_channels(struct admin_req *r);
int admin_cmd_list_consumers(struct admin_req *r);
int admin_cmd_list_vhosts(struct admin_req *r);
int admin_cmd_list_users(struct admin_req *r);
int admin_cmd_list_permissions(struct admin_req *r);
int admin_cmd_list_user_permissions(struct admin_req *r);

/* admin_ops.c */
int admin_cmd_add_user(struct admin_req *r);
int admin_cmd_delete_user(struct admin_req *r);
int admin_cmd_change_password(struct admin_req *r);
int admin_cmd_set_user_tags(struct admin_req *r);
int admin_cmd_authenticate_user(struct admin_req *r);
int admin_cmd_add_vhost(struct admin_req *r);
int admin_cmd_delete_vhost(struct admin_req *r);
int admin_cmd_set_permissions(struct admin_req *r);
int admin_cmd_clear_permissions(struct admin_req *r);
int admin_cmd_purge_queue(struct admin_req *r);
int admin_cmd_delete_queue(struct admin_req *r);
int admin_cmd_close_connection(struct admin_req *r);
int admin_cmd_export_definitions(struct admin_req *r);
int admin_cmd_import_definitions(struct admin_req *r);
int admin_cmd_log_level(struct admin_req *r);

#endif
