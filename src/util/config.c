/*
 * warren.conf parser.  Every key, its type, default and bounds come from
 * util/keys.def; this file only knows how to read each type.  Bounds are
 * written in the key's own syntax ("512MiB", "100ms") and parsed with the
 * same code as values, so error messages quote them as the user would write
 * them.  Parsing works on a copy of the configuration and commits it only
 * when the whole file is good (see config.h for the invariants).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "net/listener.h"
#include "util/config.h"
#include "util/log.h"
#include "util/xalloc.h"

/* What keys.def's field column names members of. */
struct config_values {
	struct broker_config cfg;
	int log_level;
};

struct config_str {
	struct config_str *next;
	char s[];
};

/* Reject a keys.def row whose field's C type cannot hold the key's type. */
#define CONFIG_UNSIGNED(x) _Generic((x), unsigned char: 1, unsigned short: 1, \
	unsigned int: 1, unsigned long: 1, unsigned long long: 1, default: 0)
#define CONFIG_FITS_STRING(x) _Generic((x), const char *: 1, default: 0)
#define CONFIG_FITS_UINT(x) CONFIG_UNSIGNED(x)
#define CONFIG_FITS_UINT64(x) (CONFIG_UNSIGNED(x) && sizeof(x) == 8)
#define CONFIG_FITS_DOUBLE(x) _Generic((x), double: 1, default: 0)
#define CONFIG_FITS_BOOL(x) _Generic((x), bool: 1, default: 0)
#define CONFIG_FITS_DURATION(x) (CONFIG_UNSIGNED(x) || CONFIG_FITS_DOUBLE(x))
#define CONFIG_FITS_SIZE(x) CONFIG_UNSIGNED(x)
#define CONFIG_FITS_LISTEN(x) _Generic((x), const char **: 1, default: 0)
#define CONFIG_FITS_LEVEL(x) _Generic((x), int: 1, default: 0)
#define CONFIG_FITS_SYNC(x) _Generic((x), enum store_sync: 1, default: 0)
#define CONFIG_FIELD(f) (((struct config_values *)0)->f)

#define KEY(sec, nm, type, field, def, min, max, rel, help)                  \
	_Static_assert(CONFIG_FITS_##type(CONFIG_FIELD(field)),               \
	               #sec "." #nm ": field type does not hold a " #type);
#include "util/keys.def"
#undef KEY

struct config_row {
	struct config_key key;
	size_t offset, size;
	bool is_double;
};

static const struct config_row config_rows[] = {
#define KEY(sec, nm, type, field, def, min, max, rel, help)                   \
	{ { #sec, #nm, #sec "." #nm, CONFIG_##type, def, min, max, rel, help }, \
	  offsetof(struct config_values, field), sizeof(CONFIG_FIELD(field)),     \
	  _Generic(CONFIG_FIELD(field), double: true, default: false) },
#include "util/keys.def"
#undef KEY
};

#define CONFIG_NKEYS (sizeof(config_rows) / sizeof(config_rows[0]))

size_t config_key_count(void)
{
	return CONFIG_NKEYS;
}

const char *config_key_name(size_t i)
{
	return i < CONFIG_NKEYS ? config_rows[i].key.full_name : NULL;
}

const struct config_key *config_key_get(size_t i)
{
	return i < CONFIG_NKEYS ? &config_rows[i].key : NULL;
}

const char *config_type_name(enum config_type t)
{
	switch (t) {
	case CONFIG_STRING: return "string";
	case CONFIG_UINT: return "integer";
	case CONFIG_UINT64: return "integer";
	case CONFIG_DOUBLE: return "number";
	case CONFIG_BOOL: return "boolean";
	case CONFIG_DURATION: return "duration";
	case CONFIG_SIZE: return "size";
	case CONFIG_LISTEN: return "address";
	case CONFIG_LEVEL: return "level";
	case CONFIG_SYNC: return "sync";
	}
	return "?";
}

/* ---- the string store ------------------------------------------------ */

void config_store_init(struct config_store *st)
{
	st->head = NULL;
}

void config_store_free(struct config_store *st)
{
	struct config_str *s = st->head;
	while (s) {
		struct config_str *next = s->next;
		free(s);
		s = next;
	}
	st->head = NULL;
}

static const char *config_store_add(struct config_store *st, const char *s)
{
	size_t n = strlen(s) + 1;
	struct config_str *e = xmalloc(sizeof(*e) + n);
	memcpy(e->s, s, n);
	e->next = st->head;
	st->head = e;
	return e->s;
}

/* Move everything in from onto the front of to. */
static void config_store_splice(struct config_store *to, struct config_store *from)
{
	struct config_str **tail = &from->head;
	while (*tail)
		tail = &(*tail)->next;
	*tail = to->head;
	to->head = from->head;
	from->head = NULL;
}

/* ---- value syntax ---------------------------------------------------- */

/*
 * A parsed number: integer types use u (with overflow set when the text
 * does not fit in 64 bits), real-valued types use d.
 */
struct config_num {
	uint64_t u;
	double d;
	bool overflow;
};

/* Decimal digits into *u; returns the first byte after them. */
static const char *config_scan_uint(const char *s, uint64_t *u, bool *overflow)
{
	*u = 0;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned digit = (unsigned)(*s - '0');
		if (*u > (UINT64_MAX - digit) / 10)
			*overflow = true;
		else
			*u = *u * 10 + digit;
	}
	return s;
}

/*
 * "[-]digits[.digits]" (either side of the dot may be empty, not both)
 * into *d; returns the first byte after it, or NULL if there is no number.
 * strtod alone would also take hex, exponents, "inf" and "nan".
 */
static const char *config_scan_real(const char *s, double *d)
{
	const char *p = s;
	if (*p == '-' || *p == '+')
		p++;
	size_t digits = strspn(p, "0123456789");
	p += digits;
	if (*p == '.') {
		size_t frac = strspn(p + 1, "0123456789");
		digits += frac;
		p += 1 + frac;
	}
	if (digits == 0)
		return NULL;
	char buf[64];
	size_t n = (size_t)(p - s);
	if (n >= sizeof(buf))
		return NULL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	*d = strtod(buf, NULL);
	return p;
}

static const char *config_skip_space(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

struct config_unit {
	const char *name;
	uint64_t mult;
};

/* Largest first, so config_format_size picks the shortest exact form. */
static const struct config_unit config_size_units[] = {
	{ "PiB", 1ull << 50 }, { "PB", 1000000000000000ull },
	{ "TiB", 1ull << 40 }, { "TB", 1000000000000ull },
	{ "GiB", 1ull << 30 }, { "GB", 1000000000ull },
	{ "MiB", 1ull << 20 }, { "MB", 1000000ull },
	{ "KiB", 1ull << 10 }, { "kB", 1000ull },
	{ "B", 1 },
};

static int config_parse_size(const char *s, struct config_num *n)
{
	if (*s < '0' || *s > '9')
		return -1;
	const char *p = config_scan_uint(s, &n->u, &n->overflow);
	p = config_skip_space(p);
	if (*p == '\0')
		return 0;
	for (size_t i = 0; i < sizeof(config_size_units) / sizeof(config_size_units[0]); i++) {
		const struct config_unit *un = &config_size_units[i];
		if (strcasecmp(p, un->name) != 0)
			continue;
		if (n->u > UINT64_MAX / un->mult)
			n->overflow = true;
		else
			n->u *= un->mult;
		return 0;
	}
	return -1;
}

static int config_parse_duration(const char *s, struct config_num *n)
{
	if (*s == '-' || *s == '+')
		return -1;
	const char *p = config_scan_real(s, &n->d);
	if (!p)
		return -1;
	p = config_skip_space(p);
	if (*p == '\0' || strcmp(p, "s") == 0)
		return 0;
	if (strcmp(p, "ms") == 0)
		n->d /= 1000.0;
	else if (strcmp(p, "m") == 0 || strcmp(p, "min") == 0)
		n->d *= 60.0;
	else if (strcmp(p, "h") == 0)
		n->d *= 3600.0;
	else
		return -1;
	if (!isfinite(n->d))
		n->overflow = true;
	return 0;
}

static int config_parse_bool(const char *s, bool *b)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*b = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*b = false;
			return 0;
		}
	}
	return -1;
}

/* Parse an ordered (numeric) type; -1 if s is not of that type at all. */
static int config_parse_num(enum config_type t, const char *s, struct config_num *n)
{
	memset(n, 0, sizeof(*n));
	switch (t) {
	case CONFIG_UINT:
	case CONFIG_UINT64:
		if (*s < '0' || *s > '9')
			return -1;
		return *config_scan_uint(s, &n->u, &n->overflow) == '\0' ? 0 : -1;
	case CONFIG_DOUBLE: {
		const char *p = config_scan_real(s, &n->d);
		return p && *p == '\0' ? 0 : -1;
	}
	case CONFIG_DURATION:
		return config_parse_duration(s, n);
	case CONFIG_SIZE:
		return config_parse_size(s, n);
	default:
		return -1;
	}
}

static bool config_real_type(const struct config_row *row)
{
	return row->key.type == CONFIG_DOUBLE || row->key.type == CONFIG_DURATION;
}

/* a < b, in the row's ordering. */
static bool config_num_less(const struct config_row *row, const struct config_num *a,
                            const struct config_num *b)
{
	if (config_real_type(row))
		return a->d < b->d;
	return a->u < b->u;
}

/* Is n inside the row's min..max?  Bounds that are "" do not bind. */
static bool config_in_range(const struct config_row *row, const struct config_num *n)
{
	struct config_num b;
	if (n->overflow)
		return false;
	if (row->key.min[0] && config_parse_num(row->key.type, row->key.min, &b) == 0 &&
	    config_num_less(row, n, &b))
		return false;
	if (row->key.max[0] && config_parse_num(row->key.type, row->key.max, &b) == 0 &&
	    config_num_less(row, &b, n))
		return false;
	return true;
}

static const char *config_expected(const struct config_row *row)
{
	switch (row->key.type) {
	case CONFIG_STRING: return "expected a non-empty string";
	case CONFIG_UINT:
	case CONFIG_UINT64: return "expected a non-negative integer";
	case CONFIG_DOUBLE: return "expected a number";
	case CONFIG_BOOL: return "expected true or false";
	case CONFIG_DURATION:
		return row->is_double ? "expected a duration"
		                      : "expected a duration in whole seconds";
	case CONFIG_SIZE: return "expected a size";
	case CONFIG_LISTEN: return "expected HOST:PORT";
	case CONFIG_LEVEL: return "expected error, warning, info or debug";
	case CONFIG_SYNC: return "expected always, batch or never";
	}
	return "invalid";
}

/* ---- applying one key ------------------------------------------------ */

/* The count that goes with a LISTEN key's array (amqp.listen, tls.listen). */
static int *config_listen_count(struct broker_config *c, const char *const *list)
{
	return list == c->tls_listen ? &c->tls_nlisten : &c->nlisten;
}

static int config_listen_count_of(const struct broker_config *c, const char *const *list)
{
	return list == c->tls_listen ? c->tls_nlisten : c->nlisten;
}

struct config_parser {
	const char *path;
	unsigned line;
	char *err;
	size_t errcap;
	struct config_values v;
	struct config_store tmp;   /* strings of this load, kept only on success */
	unsigned seen[CONFIG_NKEYS]; /* line each key was set on, 0 if not yet */
	int section;               /* index of the first row of it, -1 before any */
};

__attribute__((format(printf, 2, 3)))
static int config_fail(struct config_parser *p, const char *fmt, ...)
{
	int n;
	if (p->line)
		n = snprintf(p->err, p->errcap, "%s:%u: ", p->path, p->line);
	else
		n = snprintf(p->err, p->errcap, "%s: ", p->path);
	if (n >= 0 && (size_t)n < p->errcap) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(p->err + n, p->errcap - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int config_invalid(struct config_parser *p, const struct config_row *row, const char *val)
{
	return config_fail(p, "invalid value '%s' for %s: %s", val, row->key.name,
	                   config_expected(row));
}

static int config_out_of_range(struct config_parser *p, const struct config_row *row,
                               const char *val)
{
	return config_fail(p, "value %s for %s out of range %s..%s", val, row->key.name,
	                   row->key.min, row->key.max);
}

static void config_store_uint(void *field, size_t size, uint64_t u)
{
	switch (size) {
	case 1: *(uint8_t *)field = (uint8_t)u; break;
	case 2: *(uint16_t *)field = (uint16_t)u; break;
	case 4: *(uint32_t *)field = (uint32_t)u; break;
	default: *(uint64_t *)field = u; break;
	}
}

static int config_set_num(struct config_parser *p, const struct config_row *row,
                          void *field, const char *val)
{
	struct config_num n;
	if (config_parse_num(row->key.type, val, &n) != 0)
		return config_invalid(p, row, val);
	if (!config_in_range(row, &n))
		return config_out_of_range(p, row, val);
	if (row->is_double) {
		*(double *)field = config_real_type(row) ? n.d : (double)n.u;
		return 0;
	}
	uint64_t u = n.u;
	if (config_real_type(row)) {
		/* A real value (a duration) bound for an integer field. */
		if (n.d != floor(n.d))
			return config_invalid(p, row, val);
		if (n.d >= 18446744073709551616.0)
			return config_out_of_range(p, row, val);
		u = (uint64_t)n.d;
	}
	if (row->size < 8 && u >> (row->size * 8) != 0)
		return config_out_of_range(p, row, val);
	config_store_uint(field, row->size, u);
	return 0;
}

static int config_set(struct config_parser *p, const struct config_row *row, const char *val)
{
	void *field = (char *)&p->v + row->offset;
	switch (row->key.type) {
	case CONFIG_STRING:
		if (*val == '\0')
			return config_invalid(p, row, val);
		*(const char **)field = config_store_add(&p->tmp, val);
		return 0;
	case CONFIG_BOOL:
		if (config_parse_bool(val, (bool *)field) != 0)
			return config_invalid(p, row, val);
		return 0;
	case CONFIG_LEVEL: {
		int lvl = log_level_parse(val);
		if (lvl < 0)
			return config_invalid(p, row, val);
		*(int *)field = lvl;
		return 0;
	}
	case CONFIG_SYNC:
		if (strcmp(val, "always") == 0)
			*(enum store_sync *)field = STORE_SYNC_ALWAYS;
		else if (strcmp(val, "batch") == 0)
			*(enum store_sync *)field = STORE_SYNC_BATCH_MS;
		else if (strcmp(val, "never") == 0)
			*(enum store_sync *)field = STORE_SYNC_NEVER;
		else
			return config_invalid(p, row, val);
		return 0;
	case CONFIG_LISTEN: {
		const char **list = (const char **)field;
		int *n = config_listen_count(&p->v.cfg, list);
		/* The first line of the key in a file replaces the list. */
		if (!p->seen[row - config_rows])
			*n = 0;
		/* "none" (where it is the default) means no listener at all */
		if (strcmp(val, "none") == 0 && strcmp(row->key.def, "none") == 0)
			return *n == 0 ? 0 : config_fail(p, "%s = none after other %s lines",
			                                 row->key.name, row->key.name);
		/* Same acceptance as the listener that will bind it. */
		struct sockaddr_storage ss;
		socklen_t sl;
		char why[128];
		if (listener_parse_addr(val, &ss, &sl, why, sizeof(why)) != 0)
			return config_invalid(p, row, val);
		if (*n == BROKER_MAX_LISTENERS)
			return config_fail(p, "too many %s entries (at most %d)", row->key.name,
			                   BROKER_MAX_LISTENERS);
		list[(*n)++] = config_store_add(&p->tmp, val);
		return 0;
	}
	default:
		return config_set_num(p, row, field, val);
	}
}

/* ---- lines ----------------------------------------------------------- */

static char *config_trim(char *s)
{
	s = (char *)config_skip_space(s);
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

/* Does s (after trailing blanks) hold nothing but an optional comment? */
static bool config_only_comment(const char *s)
{
	s = config_skip_space(s);
	return *s == '\0' || *s == '#';
}

static int config_find_section(const char *name)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++)
		if (strcmp(config_rows[i].key.section, name) == 0)
			return (int)i;
	return -1;
}

static int config_section_line(struct config_parser *p, char *s)
{
	char *close = strchr(s, ']');
	if (!close)
		return config_fail(p, "unterminated section header '%s'", s);
	if (!config_only_comment(close + 1))
		return config_fail(p, "unexpected text after section header: '%s'",
		                   config_trim(close + 1));
	*close = '\0';
	char *name = config_trim(s + 1);
	p->section = config_find_section(name);
	if (p->section < 0)
		return config_fail(p, "unknown section [%s]", name);
	return 0;
}

/*
 * Split the text after '=' into the value: either "quoted" (taken as is, so
 * it may hold '#' or edge blanks) or bare, ending at a '#' that starts the
 * line's value or follows a blank.  Returns NULL after reporting an error.
 */
static char *config_value(struct config_parser *p, char *s)
{
	s = (char *)config_skip_space(s);
	if (*s == '"') {
		char *close = strchr(s + 1, '"');
		if (!close) {
			config_fail(p, "unterminated quoted value");
			return NULL;
		}
		if (!config_only_comment(close + 1)) {
			config_fail(p, "unexpected text after quoted value: '%s'",
			            config_trim(close + 1));
			return NULL;
		}
		*close = '\0';
		return s + 1;
	}
	for (char *h = strchr(s, '#'); h; h = strchr(h + 1, '#')) {
		if (h == s || h[-1] == ' ' || h[-1] == '\t') {
			*h = '\0';
			break;
		}
	}
	return config_trim(s);
}

static int config_key_line(struct config_parser *p, char *s)
{
	char *eq = strchr(s, '=');
	if (!eq)
		return config_fail(p, "missing '=' in '%s'", config_trim(s));
	*eq = '\0';
	char *name = config_trim(s);
	if (*name == '\0')
		return config_fail(p, "missing key name before '='");
	char *val = config_value(p, eq + 1);
	if (!val)
		return -1;
	if (p->section < 0)
		return config_fail(p, "key '%s' outside any [section]", name);
	const char *section = config_rows[p->section].key.section;
	size_t k = (size_t)p->section;
	while (k < CONFIG_NKEYS && strcmp(config_rows[k].key.section, section) == 0 &&
	       strcmp(config_rows[k].key.name, name) != 0)
		k++;
	if (k == CONFIG_NKEYS || strcmp(config_rows[k].key.section, section) != 0)
		return config_fail(p, "unknown key '%s' in section [%s]", name, section);
	const struct config_row *row = &config_rows[k];
	if (p->seen[k] && row->key.type != CONFIG_LISTEN)
		return config_fail(p, "duplicate key '%s' in section [%s] (first set on line %u)",
		                   name, section, p->seen[k]);
	if (config_set(p, row, val) != 0)
		return -1;
	if (!p->seen[k])
		p->seen[k] = p->line;
	return 0;
}

static int config_line(struct config_parser *p, char *s)
{
	s = (char *)config_skip_space(s);
	if (*s == '\0' || *s == '#')
		return 0;
	if (*s == '[')
		return config_section_line(p, s);
	return config_key_line(p, s);
}

int config_load(struct config_store *st, const char *path, struct broker_config *cfg,
                int *log_level, char *err, size_t errcap)
{
	struct config_parser p = {
		.path = path, .err = err, .errcap = errcap, .section = -1,
		.v = { .cfg = *cfg, .log_level = *log_level },
	};
	if (errcap)
		err[0] = '\0';
	FILE *f = fopen(path, "r");
	if (!f)
		return config_fail(&p, "%s", strerror(errno));
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;
	while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
		p.line++;
		size_t len = (size_t)n;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		char *text = line;
		/* Editors on some systems start UTF-8 files with a byte-order mark. */
		if (p.line == 1 && strncmp(text, "\xEF\xBB\xBF", 3) == 0)
			text += 3;
		if (strlen(line) != len)
			rc = config_fail(&p, "line contains a NUL byte");
		else
			rc = config_line(&p, text);
	}
	if (rc == 0 && ferror(f)) {
		p.line = 0;
		rc = config_fail(&p, "read error: %s", strerror(errno));
	}
	free(line);
	fclose(f);
	if (rc != 0) {
		config_store_free(&p.tmp);
		return -1;
	}
	*cfg = p.v.cfg;
	*log_level = p.v.log_level;
	config_store_splice(st, &p.tmp);
	return 0;
}

/* ---- dumping --------------------------------------------------------- */

static void config_format_size(char *buf, size_t cap, uint64_t u)
{
	if (u != 0) {
		for (size_t i = 0; i < sizeof(config_size_units) / sizeof(config_size_units[0]) - 1;
		     i++) {
			const struct config_unit *un = &config_size_units[i];
			if (u % un->mult == 0) {
				snprintf(buf, cap, "%llu%s", (unsigned long long)(u / un->mult), un->name);
				return;
			}
		}
	}
	snprintf(buf, cap, "%llu", (unsigned long long)u);
}

/* Shortest text that strtod reads back to exactly d. */
static void config_format_real(char *buf, size_t cap, double d)
{
	for (int prec = 6; prec <= 17; prec++) {
		snprintf(buf, cap, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
}

static void config_format_duration(char *buf, size_t cap, double d)
{
	double ms = round(d * 1000.0);
	if (d == floor(d) && d < 1e15) {
		snprintf(buf, cap, "%.0fs", d);
		return;
	}
	if (ms / 1000.0 == d && ms < 1e15) {
		snprintf(buf, cap, "%.0fms", ms);
		return;
	}
	/* Fixed notation: the duration syntax has no exponent. */
	for (int prec = 1; prec <= 20; prec++) {
		snprintf(buf, cap, "%.*fs", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
}

static uint64_t config_load_uint(const void *field, size_t size)
{
	switch (size) {
	case 1: return *(const uint8_t *)field;
	case 2: return *(const uint16_t *)field;
	case 4: return *(const uint32_t *)field;
	default: return *(const uint64_t *)field;
	}
}

/* Strings are quoted when a bare value would not read back the same. */
static void config_put_string(FILE *out, const char *name, const char *s)
{
	size_t n = strlen(s);
	bool quote = n == 0 || s[0] == ' ' || s[0] == '\t' || s[0] == '"' ||
	             s[n - 1] == ' ' || s[n - 1] == '\t' || strchr(s, '#') != NULL;
	fprintf(out, quote ? "%s = \"%s\"\n" : "%s = %s\n", name, s);
}

void config_dump(FILE *out, const struct broker_config *cfg, int log_level)
{
	/* zero-filled first: gcc cannot see that only set fields are read */
	struct config_values v;
	memset(&v, 0, sizeof(v));
	v.cfg = *cfg;
	v.log_level = log_level;
	const char *section = NULL;
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		const struct config_row *row = &config_rows[i];
		const struct config_key *k = &row->key;
		const void *field = (const char *)&v + row->offset;
		char buf[64];
		if (!section || strcmp(section, k->section) != 0) {
			fprintf(out, "%s[%s]\n", section ? "\n" : "", k->section);
			section = k->section;
		}
		switch (k->type) {
		case CONFIG_STRING: {
			/* NULL: broker_config_defaults() left the sentinel default */
			const char *s = *(const char *const *)field;
			config_put_string(out, k->name, s ? s : k->def);
			continue;
		}
		case CONFIG_LISTEN: {
			const char *const *list = (const char *const *)field;
			int n = config_listen_count_of(&v.cfg, list);
			if (n == 0)
				config_put_string(out, k->name, k->def);
			for (int j = 0; j < n; j++)
				config_put_string(out, k->name, list[j]);
			continue;
		}
		case CONFIG_LEVEL:
			snprintf(buf, sizeof(buf), "%s", log_level_name((enum log_level)log_level));
			break;
		case CONFIG_SYNC: {
			enum store_sync m = *(const enum store_sync *)field;
			snprintf(buf, sizeof(buf), "%s", m == STORE_SYNC_ALWAYS ? "always"
			                                 : m == STORE_SYNC_BATCH_MS ? "batch" : "never");
			break;
		}
		case CONFIG_BOOL:
			snprintf(buf, sizeof(buf), "%s", *(const bool *)field ? "true" : "false");
			break;
		case CONFIG_DOUBLE:
			config_format_real(buf, sizeof(buf), *(const double *)field);
			break;
		case CONFIG_DURATION:
			if (row->is_double)
				config_format_duration(buf, sizeof(buf), *(const double *)field);
			else
				snprintf(buf, sizeof(buf), "%llus",
				         (unsigned long long)config_load_uint(field, row->size));
			break;
		case CONFIG_SIZE:
			config_format_size(buf, sizeof(buf), config_load_uint(field, row->size));
			break;
		case CONFIG_UINT:
		case CONFIG_UINT64:
			snprintf(buf, sizeof(buf), "%llu",
			         (unsigned long long)config_load_uint(field, row->size));
			break;
		}
		fprintf(out, "%s = %s\n", k->name, buf);
	}
}
