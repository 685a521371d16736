/*
 * warrenctl's shared pieces: exit codes, the command table's row type and
 * the parsed command line, the output formatting (parsed JSON results as
 * aligned tables, key/value lists, or JSON restricted to chosen columns)
 * and the offline commands.  warrenctl.c keeps options, commands and the
 * socket.
 */
#ifndef WARREN_ADMIN_CTL_H
#define WARREN_ADMIN_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "util/json.h"

/* Re-encode a parsed value as compact JSON into w. */
void ctl_write_value(struct json_out *w, const struct json_value *v);

/* One table cell for v (strings as they are, lists of strings as
 * "[a, b]", other structures as compact JSON); free() the result. */
char *ctl_cell(const struct json_value *v);

/* rows: an array of objects.  Print the columns cols[0..ncols) as a table,
 * aligned, with a header line unless headers is false. */
void ctl_print_table(FILE *f, const struct json_value *rows, const char *const *cols,
                     size_t ncols, bool headers);
/* The same rows as a JSON array of objects holding only those columns,
 * one object per line. */
void ctl_print_json_rows(FILE *f, const struct json_value *rows, const char *const *cols,
                         size_t ncols);
/* An object as "key: value" lines with the values aligned. */
void ctl_print_kv(FILE *f, const struct json_value *obj);

/* ---- the command line's state, shared by warrenctl.c and ctl_offline.c */

enum {
	CTL_OK = 0,
	CTL_FAILED = 1,
	CTL_USAGE = 2,
	CTL_DAMAGED = 3,  /* fsck: damage found and left as it is */
	CTL_REPAIRED = 4, /* fsck --repair: damage found, repaired, re-checked clean */
	CTL_UNAVAILABLE = 69,
};

enum {
	O_VHOST = 1,     /* -p VHOST */
	O_TAGS = 2,      /* --tags T1,T2 */
	O_IF_EMPTY = 4,  /* -e, --if-empty */
	O_IF_UNUSED = 8, /* -u, --if-unused */
	O_DURABLE = 16,  /* --durable-only */
	O_DATA_DIR = 32, /* -d, --data-dir DIR (offline commands) */
	O_REPAIR = 64,   /* --repair */
	O_OFFLINE = 128, /* not an option: the command runs without the daemon */
};

struct ctl_cmd {
	const char *name;
	const char *synopsis;
	int minpos, maxpos; /* positional arguments; -1: no upper bound */
	unsigned opts;
	const char *cols;    /* listings: the columns there are */
	const char *defcols; /* listings: the columns shown by default */
	const char *banner;  /* printed before the output unless -q or JSON */
};

struct ctl {
	const char *socket;
	bool json;
	bool quiet;
	double timeout;
	const struct ctl_cmd *cmd;
	const char *vhost;
	const char *tags;
	bool if_empty, if_unused, durable_only, repair;
	const char *data_dir; /* offline commands: the stopped daemon's data directory */
	char **pos;
	int npos;
	const char *cols[64];
	size_t ncols;
};

/* Read a file ("-": standard input) of at most max bytes; NULL after
 * printing why.  free() the result. */
char *ctl_read_input(const char *path, size_t max, size_t *len);

/* fsck and dump (ctl_offline.c): no daemon, only its idle data directory. */
int ctl_run_offline(struct ctl *c, const char *dir);

#endif
