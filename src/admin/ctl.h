/*
 * warrenctl's output formatting: parsed JSON results as aligned tables,
 * key/value lists, or JSON restricted to chosen columns.  Kept apart from
 * warrenctl.c (options, commands, the socket) so each stays small.
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

#endif
