/*
 * The admin socket: a Unix stream socket in the data directory that
 * warrenctl talks to, served from the broker's event loop.
 *
 * Protocol: each request is one line of JSON, {"cmd":"list_queues",
 * "args":{...}}, and gets one line back, {"ok":true,"result":...} or
 * {"ok":false,"error":"..."}.  Requests are answered in order; a client may
 * send several.  Lines are bounded (ADMIN_MAX_REQUEST, enough for a large
 * definitions import), so are clients (ADMIN_MAX_CLIENTS), and a client
 * whose output is not drained is not read from until it is.
 *
 * Access: the socket is created mode 0600, and a peer whose uid is neither
 * ours nor root is refused (SO_PEERCRED), so only the broker's own user can
 * administer it.  A stale socket file left by a dead daemon is replaced; a
 * live daemon answering on the path makes admin_open fail.
 *
 * The command set mirrors the rabbitmqctl commands operators use; see
 * warrenctl(1) and admin_commands() for the list.
 */
#ifndef WARREN_ADMIN_ADMIN_H
#define WARREN_ADMIN_ADMIN_H

#include <stddef.h>

struct broker;
struct users;
struct admin;

#define ADMIN_MAX_REQUEST ((size_t)16 << 20)
#define ADMIN_MAX_CLIENTS 32

/*
 * Listen on path (its directory must exist).  Returns the admin object, or
 * NULL with one line in err.  b and u must outlive it; admin_close() before
 * broker_free().
 */
struct admin *admin_open(struct broker *b, struct users *u, const char *path, char *err,
                         size_t errcap);
/* Stop listening, drop clients, remove the socket file (if still ours). */
void admin_close(struct admin *a);

/*
 * Called after every command that changed definitions (users, vhosts,
 * permissions, queues, imports), e.g. so the store can persist them.
 */
typedef void (*admin_changed_fn)(void *ctx);
void admin_set_changed_hook(struct admin *a, admin_changed_fn fn, void *ctx);

/* Run one request line and return the response line (no newline; free()
 * it).  What the socket does per line; exposed for tests and tools. */
char *admin_execute(struct admin *a, const char *line, size_t len, size_t *outlen);

/* The command names, NULL-terminated (for help texts and tests). */
const char *const *admin_commands(void);

#endif
