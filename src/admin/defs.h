/*
 * Definitions: the broker's topology and users as RabbitMQ's definitions
 * JSON (the format of `rabbitmqctl export_definitions` and the management
 * UI), so a file exported from RabbitMQ 3.x imports into Warren unchanged
 * and the other way round.
 *
 * Export writes users (name, password_hash, hashing_algorithm, tags,
 * limits), vhosts, permissions, exchanges (not the default one, not amq.*),
 * queues (not exclusive ones) and bindings (not the default exchange's
 * implicit ones), with keys sorted and every list sorted by name, so the
 * same state always gives the same bytes.  Unlike RabbitMQ we also export
 * internal exchanges (with "internal": true), since they cannot be
 * recreated any other way.  DEFS_DURABLE_ONLY keeps only what survives a
 * restart (durable exchanges and queues, bindings whose both ends are
 * durable): the store persists definitions through it.
 *
 * Import validates the whole file first (shape, names, types, regular
 * expressions, queue arguments, references between entries, equivalence
 * with what exists) and changes nothing when that fails; then it creates
 * vhosts, users (or updates their hash and tags), permissions, exchanges,
 * queues and bindings, in that order, skipping the default exchange and
 * amq.* names as RabbitMQ does.  What already exists is left alone when
 * equivalent.
 *
 * Arguments map between field tables and JSON as RabbitMQ's do: strings,
 * integers (imported as signed 64-bit), floats (double), booleans, nested
 * objects and arrays; null is refused.  Byte arrays and strings that are
 * not UTF-8 export as "Not UTF-8, base64 is: ...", as RabbitMQ writes them.
 */
#ifndef WARREN_ADMIN_DEFS_H
#define WARREN_ADMIN_DEFS_H

#include <stdbool.h>
#include <stddef.h>

#include "codec/table.h"
#include "util/json.h"

struct broker;
struct users;

enum { DEFS_DURABLE_ONLY = 1 };

/* The definitions as one line of JSON (free() it); *len gets its length. */
char *defs_export(struct broker *b, const struct users *u, int flags, size_t *len);
/* The same, written into w as one value. */
void defs_write(struct json_out *w, struct broker *b, const struct users *u, int flags);

struct defs_stats {
	size_t users, vhosts, permissions, exchanges, queues, bindings;
	size_t skipped; /* default exchange, amq.* names, bindings from "" */
};

/* Import a definitions document; 0, or -1 with one line in err. */
int defs_import(struct broker *b, struct users *u, const char *json, size_t len, char *err,
                size_t errcap);
/* The same from a parsed document, counting what was applied (stats may be NULL). */
int defs_import_value(struct broker *b, struct users *u, const struct json_value *root,
                      struct defs_stats *stats, char *err, size_t errcap);

/* A field table as a JSON object (shared with the admin listings). */
void defs_write_table(struct json_out *w, struct ftable t);
/* A JSON object as field table entries appended to tb; -1 with err on null,
 * keys over 255 bytes or nesting deeper than field tables allow. */
int defs_table_from_json(struct ftable_builder *tb, const struct json_value *obj, char *err,
                         size_t errcap);

#endif
