/*
 * The configuration file (warren.conf(5)): an INI-like file of "[section]"
 * headers and "key = value" lines, parsed against the key table in
 * util/keys.def into struct broker_config and the log level.
 *
 * Invariants:
 *  - config_load is all or nothing: on error neither *cfg, *log_level nor the
 *    store change, and err holds one line "FILE:LINE: what is wrong".
 *  - Only keys present in the file are written; everything else keeps what
 *    the caller put there (normally broker_config_defaults()).  The first
 *    line of a listener key ([amqp] listen, [tls] listen) replaces the
 *    caller's list for it, later ones append.
 *  - Strings the config keeps (data_dir, listen entries) are owned by a
 *    struct config_store, which must outlive every use of the config; free
 *    it with config_store_free after the broker is gone.
 */
#ifndef WARREN_UTIL_CONFIG_H
#define WARREN_UTIL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "broker/broker.h"

enum config_type {
	CONFIG_STRING,   /* any non-empty text */
	CONFIG_UINT,     /* decimal integer that fits the field */
	CONFIG_UINT64,   /* decimal integer up to 2^64-1 */
	CONFIG_DOUBLE,   /* decimal number, e.g. 0.4 */
	CONFIG_BOOL,     /* true/false, yes/no, on/off, 1/0 */
	CONFIG_DURATION, /* seconds: "10", "10s", "500ms", "2m", "1h" */
	CONFIG_SIZE,     /* bytes: "4096", "50MB", "128MiB", "1GiB" */
	CONFIG_LISTEN,   /* HOST:PORT, [V6]:PORT or :PORT; the key may repeat;
	                  * "none" where that is the default */
	CONFIG_LEVEL,    /* error, warning, info or debug */
	CONFIG_SYNC,     /* store durability point: always, batch or never */
};

/* One row of keys.def, as data. */
struct config_key {
	const char *section;   /* "amqp" */
	const char *name;      /* "channel_max" */
	const char *full_name; /* "amqp.channel_max" */
	enum config_type type;
	const char *def;       /* default, in file syntax */
	const char *min, *max; /* inclusive bounds in file syntax, "" if none */
	bool reloadable;
	const char *help;
};

/* Owner of the strings a loaded configuration points at. */
struct config_store {
	struct config_str *head;
};

size_t config_key_count(void);
/* "section.name" of key i (i < config_key_count()). */
const char *config_key_name(size_t i);
const struct config_key *config_key_get(size_t i);
/* "duration", "size", ...: how the man page and messages name a type. */
const char *config_type_name(enum config_type t);

void config_store_init(struct config_store *st);
void config_store_free(struct config_store *st);

/*
 * Read path and apply it over *cfg and *log_level.  Returns 0, or -1 with a
 * one-line message in err (errcap bytes, always NUL-terminated), e.g.
 * "warren.conf:12: unknown key 'foo' in section [amqp]".
 */
int config_load(struct config_store *st, const char *path, struct broker_config *cfg,
                int *log_level, char *err, size_t errcap);

/*
 * Print every key with its effective value, in file syntax that config_load
 * reads back to the same settings (used by warrend --check-config).  With no
 * listeners configured it prints the listen default, which warrend falls
 * back to.
 */
void config_dump(FILE *out, const struct broker_config *cfg, int log_level);

#endif
