/*
 * warrenctl output formatting; see ctl.h.  Column widths count UTF-8
 * characters, not bytes, so names outside ASCII still line up.
 */
#include <stdlib.h>
#include <string.h>

#include "admin/ctl.h"
#include "util/xalloc.h"

void ctl_write_value(struct json_out *w, const struct json_value *v)
{
	switch (v->type) {
	case JSON_NULL:
		json_null(w);
		break;
	case JSON_BOOL:
		json_bool(w, v->u.b);
		break;
	case JSON_NUMBER:
		if (v->u.num.is_int)
			json_int(w, v->u.num.i);
		else
			json_double(w, v->u.num.d);
		break;
	case JSON_STRING:
		json_str_n(w, v->u.str.ptr, v->u.str.len);
		break;
	case JSON_ARRAY:
		json_arr_begin(w);
		for (size_t i = 0; i < v->u.arr.n; i++)
			ctl_write_value(w, &v->u.arr.items[i]);
		json_arr_end(w);
		break;
	case JSON_OBJECT:
		json_obj_begin(w);
		for (size_t i = 0; i < v->u.obj.n; i++) {
			json_key_n(w, v->u.obj.members[i].key, v->u.obj.members[i].key_len);
			ctl_write_value(w, &v->u.obj.members[i].value);
		}
		json_obj_end(w);
		break;
	}
}

/* Text with control characters shown as escapes, so a cell stays one line. */
static void put_text(struct json_out *buf, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[8];
		if (c == '\n')
			json_out_put(buf, "\\n", 2);
		else if (c == '\t')
			json_out_put(buf, "\\t", 2);
		else if (c < 0x20 || c == 0x7f)
			json_out_put(buf, esc, (size_t)snprintf(esc, sizeof(esc), "\\x%02x", c));
		else
			json_out_put(buf, &s[i], 1);
	}
}

static bool all_strings(const struct json_value *arr)
{
	for (size_t i = 0; i < arr->u.arr.n; i++)
		if (arr->u.arr.items[i].type != JSON_STRING)
			return false;
	return true;
}

char *ctl_cell(const struct json_value *v)
{
	struct json_out w;
	json_out_init(&w);
	if (!v || v->type == JSON_NULL) {
		/* an empty cell */
	} else if (v->type == JSON_STRING) {
		put_text(&w, v->u.str.ptr, v->u.str.len);
	} else if (v->type == JSON_ARRAY && all_strings(v)) {
		put_text(&w, "[", 1);
		for (size_t i = 0; i < v->u.arr.n; i++) {
			if (i)
				put_text(&w, ", ", 2);
			put_text(&w, v->u.arr.items[i].u.str.ptr, v->u.arr.items[i].u.str.len);
		}
		put_text(&w, "]", 1);
	} else {
		ctl_write_value(&w, v);
	}
	return json_out_take(&w, NULL);
}

static size_t text_width(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

void ctl_print_table(FILE *f, const struct json_value *rows, const char *const *cols,
                     size_t ncols, bool headers)
{
	size_t nrows = rows->type == JSON_ARRAY ? rows->u.arr.n : 0;
	char **cells = xcalloc((nrows + 1) * ncols + 1, sizeof(*cells));
	size_t *width = xcalloc(ncols + 1, sizeof(*width));
	for (size_t c = 0; c < ncols; c++) {
		cells[c] = xstrdup(cols[c]);
		for (size_t r = 0; r < nrows; r++)
			cells[(r + 1) * ncols + c] = ctl_cell(json_get(&rows->u.arr.items[r], cols[c]));
	}
	for (size_t r = headers ? 0 : 1; r <= nrows; r++)
		for (size_t c = 0; c < ncols; c++) {
			size_t tw = text_width(cells[r * ncols + c]);
			if (tw > width[c])
				width[c] = tw;
		}
	for (size_t r = headers ? 0 : 1; r <= nrows; r++) {
		for (size_t c = 0; c < ncols; c++) {
			const char *s = cells[r * ncols + c];
			fputs(s, f);
			if (c + 1 < ncols)
				fprintf(f, "%*s", (int)(width[c] - text_width(s) + 2), "");
		}
		fputc('\n', f);
	}
	for (size_t i = 0; i < (nrows + 1) * ncols; i++)
		free(cells[i]);
	free(cells);
	free(width);
}

void ctl_print_json_rows(FILE *f, const struct json_value *rows, const char *const *cols,
                         size_t ncols)
{
	size_t nrows = rows->type == JSON_ARRAY ? rows->u.arr.n : 0;
	fputs("[", f);
	for (size_t r = 0; r < nrows; r++) {
		const struct json_value *row = &rows->u.arr.items[r];
		struct json_out w;
		json_out_init(&w);
		json_obj_begin(&w);
		for (size_t c = 0; c < ncols; c++) {
			const struct json_value *v = json_get(row, cols[c]);
			json_key(&w, cols[c]);
			if (v)
				ctl_write_value(&w, v);
			else
				json_null(&w);
		}
		json_obj_end(&w);
		fprintf(f, "%s\n%s", r ? "," : "", json_out_str(&w));
		json_out_free(&w);
	}
	fputs(nrows ? "\n]\n" : "]\n", f);
}

void ctl_print_kv(FILE *f, const struct json_value *obj)
{
	if (obj->type != JSON_OBJECT)
		return;
	size_t width = 0;
	for (size_t i = 0; i < obj->u.obj.n; i++)
		if (obj->u.obj.members[i].key_len > width)
			width = obj->u.obj.members[i].key_len;
	for (size_t i = 0; i < obj->u.obj.n; i++) {
		const struct json_member *m = &obj->u.obj.members[i];
		char *cell = ctl_cell(&m->value);
		fprintf(f, "%s:%*s%s\n", m->key, (int)(width - m->key_len + 1), "", cell);
		free(cell);
	}
}
