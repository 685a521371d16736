/*
 * Definitions import; see defs.h for the contract.
 *
 * Two passes over the parsed document.  The check pass touches nothing: it
 * checks every entry's shape, that each reference (a permission's user and
 * vhost, a binding's source and destination) exists already or is created
 * by the file, and that entries naming something that exists are
 * equivalent to it (declaring an existing exchange or queue only compares,
 * so the vhost's own declare calls do that check).  The apply pass then
 * creates things in dependency order.  What the check pass cannot foresee
 * (a headers binding's x-match on an exchange the file creates, say) stops
 * the apply pass with the entry named in the error.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/defs.h"
#include "auth/users.h"
#include "broker/broker.h"
#include "broker/exchange.h"
#include "broker/names.h"
#include "broker/queue.h"
#include "broker/reply.h"
#include "broker/vhost.h"
#include "util/hmap.h"
#include "util/xalloc.h"

/* Names the file declares, keyed by vhost NUL name. */
struct kset {
	struct hmap m;
	struct kkey *keys;
};

struct kkey {
	struct kkey *next;
	size_t len;
	uint8_t data[];
};

static void kset_init(struct kset *s)
{
	hmap_init(&s->m);
	s->keys = NULL;
}

static void kset_free(struct kset *s)
{
	hmap_free(&s->m);
	for (struct kkey *k = s->keys, *next; k; k = next) {
		next = k->next;
		free(k);
	}
}

static struct kkey *kkey_make(const char *vhost, struct bytes name)
{
	size_t vl = strlen(vhost);
	struct kkey *k = xmalloc(sizeof(*k) + vl + 1 + name.len);
	memcpy(k->data, vhost, vl + 1);
	if (name.len)
		memcpy(k->data + vl + 1, name.ptr, name.len);
	k->len = vl + 1 + name.len;
	return k;
}

static void kset_add(struct kset *s, const char *vhost, struct bytes name)
{
	struct kkey *k = kkey_make(vhost, name);
	struct bytes key = { k->data, k->len };
	if (hmap_get(&s->m, key)) {
		free(k);
		return;
	}
	k->next = s->keys;
	s->keys = k;
	hmap_put(&s->m, key, k);
}

static bool kset_has(const struct kset *s, const char *vhost, struct bytes name)
{
	struct kkey *k = kkey_make(vhost, name);
	bool has = hmap_get(&s->m, (struct bytes){ k->data, k->len }) != NULL;
	free(k);
	return has;
}

struct imp {
	struct broker *b;
	struct users *u;
	const struct json_value *root;
	char *err;
	size_t errcap;
	struct defs_stats st;
	struct kset vhosts, users, exchanges, queues;
	const char *sect; /* section being read, for error texts */
	size_t idx;
};

__attribute__((format(printf, 2, 3)))
static int fail(struct imp *im, const char *fmt, ...)
{
	char what[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (im->sect)
		snprintf(im->err, im->errcap, "%s[%zu]: %s", im->sect, im->idx, what);
	else
		snprintf(im->err, im->errcap, "%s", what);
	return -1;
}

/* The array under key; NULL when absent or null.  -1 in *rc if not an array. */
static const struct json_value *section(struct imp *im, const char *key, int *rc)
{
	const struct json_value *v = json_get(im->root, key);
	*rc = 0;
	if (!v || v->type == JSON_NULL)
		return NULL;
	if (v->type != JSON_ARRAY) {
		im->sect = NULL;
		*rc = fail(im, "'%s' must be an array, not %s", key, json_type_name(v->type));
		return NULL;
	}
	return v;
}

static int get_str(struct imp *im, const struct json_value *o, const char *key, bool required,
                   struct bytes *out)
{
	const struct json_value *v = json_get(o, key);
	out->ptr = NULL;
	out->len = 0;
	if (!v || v->type == JSON_NULL) {
		if (required)
			return fail(im, "missing '%s'", key);
		return 0;
	}
	if (v->type != JSON_STRING)
		return fail(im, "'%s' must be a string, not %s", key, json_type_name(v->type));
	out->ptr = (const uint8_t *)v->u.str.ptr;
	out->len = v->u.str.len;
	return 0;
}

/* A name that is also used as a C string (vhost, user): no NUL inside. */
static int get_cname(struct imp *im, const struct json_value *o, const char *key,
                     const char **out)
{
	struct bytes s;
	if (get_str(im, o, key, true, &s) != 0)
		return -1;
	if (s.len == 0 || s.len > NAMES_MAX || memchr(s.ptr, 0, s.len))
		return fail(im, "'%s' must be 1 to %d bytes without NUL", key, NAMES_MAX);
	*out = (const char *)s.ptr;
	return 0;
}

static int get_name(struct imp *im, const struct json_value *o, const char *key,
                    struct bytes *out)
{
	if (get_str(im, o, key, true, out) != 0)
		return -1;
	if (out->len > NAMES_MAX)
		return fail(im, "'%s' is longer than %d bytes", key, NAMES_MAX);
	return 0;
}

static int get_bool(struct imp *im, const struct json_value *o, const char *key, bool def,
                    bool *out)
{
	const struct json_value *v = json_get(o, key);
	*out = def;
	if (!v || v->type == JSON_NULL)
		return 0;
	if (v->type == JSON_BOOL) {
		*out = v->u.b;
		return 0;
	}
	/* older exports wrote some flags as strings */
	if (v->type == JSON_STRING && (!strcmp(v->u.str.ptr, "true") || !strcmp(v->u.str.ptr, "false"))) {
		*out = v->u.str.ptr[0] == 't';
		return 0;
	}
	return fail(im, "'%s' must be a boolean, not %s", key, json_type_name(v->type));
}

/* The entry's arguments as a field table in tb. */
static int get_args(struct imp *im, const struct json_value *o, struct ftable_builder *tb)
{
	char why[200];
	if (defs_table_from_json(tb, json_get(o, "arguments"), why, sizeof(why)) != 0)
		return fail(im, "%s", why);
	return 0;
}

static struct vhost *find_vhost(struct imp *im, const char *name)
{
	return broker_vhost_find(im->b, name, strlen(name));
}

/* The vhost exists or the file creates it. */
static int check_vhost_ref(struct imp *im, const char *vhost)
{
	if (find_vhost(im, vhost) || kset_has(&im->vhosts, vhost, (struct bytes){ NULL, 0 }))
		return 0;
	return fail(im, "virtual host '%s' does not exist and is not in the definitions", vhost);
}

static const char *render(char buf[NAMES_RENDER_MAX], struct bytes name)
{
	return names_render(buf, name);
}

/* hashing_algorithm of a user entry; files from RabbitMQ before 3.6 have
 * none and used MD5, which their version tells (as RabbitMQ decides). */
static const char *user_alg(struct imp *im, const struct json_value *o)
{
	const char *alg = json_get_str(o, "hashing_algorithm");
	if (alg)
		return alg;
	const char *ver = json_get_str(im->root, "rabbitmq_version");
	if (!ver)
		ver = json_get_str(im->root, "rabbit_version");
	if (ver && strncmp(ver, "3.", 2) == 0 && ver[2] >= '0' && ver[2] <= '5' && ver[3] == '.')
		return "rabbit_password_hashing_md5";
	return NULL;
}

/* ---- check pass -------------------------------------------------------- */

static int check_users(struct imp *im, const struct json_value *arr)
{
	for (im->idx = 0; im->idx < arr->u.arr.n; im->idx++) {
		const struct json_value *o = &arr->u.arr.items[im->idx];
		const char *name;
		struct bytes hash, pw, alg;
		if (o->type != JSON_OBJECT)
			return fail(im, "must be an object, not %s", json_type_name(o->type));
		if (get_cname(im, o, "name", &name) != 0 ||
		    get_str(im, o, "password_hash", false, &hash) != 0 ||
		    get_str(im, o, "password", false, &pw) != 0 ||
		    get_str(im, o, "hashing_algorithm", false, &alg) != 0)
			return -1;
		if (hash.ptr && pw.ptr)
			return fail(im, "both password and password_hash are given");
		enum users_alg a;
		if (users_parse_alg(user_alg(im, o), &a) != 0)
			return fail(im, "unknown hashing_algorithm '%s'", (const char *)alg.ptr);
		char why[200];
		if (hash.ptr && users_check_hash((const char *)hash.ptr, a, why, sizeof(why)) != 0)
			return fail(im, "%s", why);
		if (pw.ptr && memchr(pw.ptr, 0, pw.len))
			return fail(im, "password contains NUL");
		const struct json_value *tags = json_get(o, "tags");
		if (tags && tags->type == JSON_ARRAY) {
			for (size_t t = 0; t < tags->u.arr.n; t++)
				if (tags->u.arr.items[t].type != JSON_STRING)
					return fail(im, "tags must be strings");
		} else if (tags && tags->type != JSON_STRING && tags->type != JSON_NULL) {
			return fail(im, "'tags' must be an array or a string");
		}
		kset_add(&im->users, "", bytes_of(name));
	}
	return 0;
}

static int check_vhosts(struct imp *im, const struct json_value *arr)
{
	for (im->idx = 0; im->idx < arr->u.arr.n; im->idx++) {
		const struct json_value *o = &arr->u.arr.items[im->idx];
		const char *name;
		if (o->type != JSON_OBJECT)
			return fail(im, "must be an object, not %s", json_type_name(o->type));
		if (get_cname(im, o, "name", &name) != 0)
			return -1;
		kset_add(&im->vhosts, name, (struct bytes){ NULL, 0 });
	}
	return 0;
}

static int check_permissions(struct imp *im, const struct json_value *arr)
{
	static const char *const keys[] = { "configure", "write", "read" };
	for (im->idx = 0; im->idx < arr->u.arr.n; im->idx++) {
		const struct json_value *o = &arr->u.arr.items[im->idx];
		const char *user, *vhost;
		if (o->type != JSON_OBJECT)
			return fail(im, "must be an object, not %s", json_type_name(o->type));
		if (get_cname(im, o, "user", &user) != 0 || get_cname(im, o, "vhost", &vhost) != 0)
			return -1;
		for (int k = 0; k < 3; k++) {
			struct bytes re;
			char why[300];
			if (get_str(im, o, keys[k], true, &re) != 0)
				return -1;
			if (users_check_regex((const char *)re.ptr, why, sizeof(why)) != 0)
				return fail(im, "%s: %s", keys[k], why);
		}
		if (!users_find(im->u, user) && !kset_has(&im->users, "", bytes_of(user)))
			return fail(im, "user '%s' does not exist and is not in the definitions", user);
		if (check_vhost_ref(im, vhost) != 0)
			return -1;
	}
	return 0;
}

static int check_exchanges(struct imp *im, const struct json_value *arr)
{
	for (im->idx = 0; im->idx < arr->u.arr.n; im->idx++) {
		const struct json_value *o = &arr->u.arr.items[im->idx];
		const char *vhost;
		struct bytes name, type;
		bool durable, auto_delete, internal;
		if (o->type != JSON_OBJECT)
			return fail(im, "must be an object, not %s", json_type_name(o->type));
		if (get_name(im, o, "name", &name) != 0 || get_cname(im, o, "vhost", &vhost) != 0 ||
		    get_str(im, o, "type", true, &type) != 0 ||
		    get_bool(im, o, "durable", true, &durable) != 0 ||
		    get_bool(im, o, "auto_delete", false, &auto_delete) != 0 ||
		    get_bool(im, o, "internal", false, &internal) != 0 || check_vhost_ref(im, vhost) != 0)
			return -1;
		char nb[NAMES_RENDER_MAX];
		if (!exchange_type_find(type))
			return fail(im, "unknown exchange type '%s'", render(nb, type));
		if (name.len == 0 || names_reserved(name))
			continue; /* skipped at apply time, as RabbitMQ does */
		struct ftable_builder tb;
		ftable_builder_init(&tb);
		int rc = get_args(im, o, &tb);
		struct ftable args = ftable_builder_get(&tb);
		struct vhost *vh = find_vhost(im, vhost);
		struct fvalue ae;
		struct reply r = { 0 };
		if (rc == 0 && vh && vhost_exchange_find(vh, name)) {
			/* an existing exchange: declare only compares */
			if (vhost_exchange_declare(vh, name, type, false, durable, auto_delete, internal,
			                           args, &r) != 0)
				rc = fail(im, "%s", r.text);
		} else if (rc == 0 && ftable_get(args, "alternate-exchange", &ae) == 1 &&
		           ae.type != 'S') {
			rc = fail(im, "alternate-exchange must be a string");
		}
		ftable_builder_free(&tb);
		if (rc != 0)
			return -1;
		kset_add(&im->exchanges, vhost, name);
	}
	return 0;
}

static int check_queues(struct imp *im, const struct json_value *arr)
{
	for (im->idx = 0; im->idx < arr->u.arr.n; im->idx++) {
		const struct json_value *o = &arr->u.arr.items[im->idx];
		const char *vhost;
		struct bytes name;
		bool durable, auto_delete;
		if (o->type != JSON_OBJECT)
			return fail(im, "must be an object, not %s", json_type_name(o->type));
		if (get_name(im, o, "name", &name) != 0 || get_cname(im, o, "vhost", &vhost) != 0 ||
		    get_bool(im, o, "durable", true, &durable) != 0 ||
		    get_bool(im, o, "auto_delete", false, &auto_delete) != 0 ||
		    check_vhost_ref(im, vhost) != 0)
			return -1;
		if (name.len == 0)
			return fail(im, "a queue in definitions needs a name");
		if (names_reserved(name))
			continue;
		struct ftable_builder tb;
		ftable_builder_init(&tb);
		int rc = get_args(im, o, &tb);
		struct ftable args = ftable_builder_get(&tb);
		struct vhost *vh = find_vhost(im, vhost);
		struct reply r = { 0 };
		struct queue *q;
		if (rc == 0 && vh && vhost_queue_find(vh, name)) {
			if (vhost_queue_declare(vh, name, false, durable, false, auto_delete, args, NULL,
			                        NULL, NULL, &q, &r) != 0)
				rc = fail(im, "%s", r.text);
		} else if (rc == 0) {
			struct queue_args qa;
			if (queue_args_parse(args, name, vhost, &qa, &r) != 0) {
				rc = fail(im, "%s", r.text);
			} else {
				if (qa.type != QUEUE_TYPE_CLASSIC && (!durable || auto_delete)) {
					char nb[NAMES_RENDER_MAX];
					rc = fail(im, "invalid property '%s' for queue '%s' in vhost '%s'",
					          auto_delete ? "auto-delete" : "non-durable", render(nb, name),
					          vhost);
				}
				queue_args_free(&qa);
			}
		}
		ftable_builder_free(&tb);
		if (rc != 0)
			return -1;
		kset_add(&im->queues, vhost, name);
	}
	return 0;
}

/* An exchange the binding can use: exists, amq.* (every vhost has those),
 * or created by the file. */
static bool exchange_known(struct imp *im, const char *vhost, struct bytes name)
{
	struct vhost *vh = find_vhost(im, vhost);
	if (vh && vhost_exchange_find(vh, name))
		return true;
	if (!vh && names_reserved(name))
		return true; /* a new vhost gets the amq.* exchanges; declare finds out which */
	return kset_has(&im->exchanges, vhost, name);
}

static int check_bindings(struct imp *im, const struct json_value *arr)
{
	for (im->idx = 0; im->idx < arr->u.arr.n; im->idx++) {
		const struct json_value *o = &arr->u.arr.items[im->idx];
		const char *vhost;
		struct bytes source, dest, dtype, key;
		char nb[NAMES_RENDER_MAX];
		if (o->type != JSON_OBJECT)
			return fail(im, "must be an object, not %s", json_type_name(o->type));
		if (get_name(im, o, "source", &source) != 0 || get_cname(im, o, "vhost", &vhost) != 0 ||
		    get_name(im, o, "destination", &dest) != 0 ||
		    get_str(im, o, "destination_type", true, &dtype) != 0 ||
		    get_name(im, o, "routing_key", &key) != 0 || check_vhost_ref(im, vhost) != 0)
			return -1;
		bool to_queue = bytes_eq_str(dtype, "queue");
		if (!to_queue && !bytes_eq_str(dtype, "exchange"))
			return fail(im, "destination_type must be \"queue\" or \"exchange\"");
		struct ftable_builder tb;
		ftable_builder_init(&tb);
		int rc = get_args(im, o, &tb);
		ftable_builder_free(&tb);
		if (rc != 0)
			return -1;
		if (source.len == 0)
			continue; /* the default exchange's bindings are implicit */
		if (!exchange_known(im, vhost, source))
			return fail(im, "source exchange '%s' does not exist in vhost '%s'",
			            render(nb, source), vhost);
		if (to_queue) {
			struct vhost *vh = find_vhost(im, vhost);
			if (!(vh && vhost_queue_find(vh, dest)) && !kset_has(&im->queues, vhost, dest))
				return fail(im, "destination queue '%s' does not exist in vhost '%s'",
				            render(nb, dest), vhost);
		} else if (dest.len == 0 || !exchange_known(im, vhost, dest)) {
			return fail(im, "destination exchange '%s' does not exist in vhost '%s'",
			            render(nb, dest), vhost);
		}
	}
	return 0;
}

/* ---- apply pass -------------------------------------------------------- */

static void apply_vhosts(struct imp *im, const struct json_value *arr)
{
	for (size_t i = 0; arr && i < arr->u.arr.n; i++) {
		const char *name = json_get_str(&arr->u.arr.items[i], "name");
		if (!find_vhost(im, name))
			broker_vhost_add(im->b, name);
		im->st.vhosts++;
	}
}

static int apply_users(struct imp *im, const struct json_value *arr)
{
	for (im->idx = 0; arr && im->idx < arr->u.arr.n; im->idx++) {
		const struct json_value *o = &arr->u.arr.items[im->idx];
		const char *name = json_get_str(o, "name");
		const char *hash = json_get_str(o, "password_hash");
		const char *pw = json_get_str(o, "password");
		char why[200];
		int rc;
		if (pw && users_find(im->u, name))
			rc = users_change_password(im->u, name, pw, why, sizeof(why));
		else if (pw)
			rc = users_add(im->u, name, pw, why, sizeof(why));
		else
			rc = users_put_hashed(im->u, name, hash ? hash : "", user_alg(im, o), why,
			                      sizeof(why));
		/* tags: a list, or RabbitMQ's older comma-separated string */
		const struct json_value *tv = json_get(o, "tags");
		const char *tags[64];
		size_t n = 0;
		char *copy = NULL;
		if (tv && tv->type == JSON_ARRAY) {
			for (size_t t = 0; t < tv->u.arr.n && n < 64; t++)
				tags[n++] = tv->u.arr.items[t].u.str.ptr;
		} else if (tv && tv->type == JSON_STRING) {
			copy = xstrdup(tv->u.str.ptr);
			for (char *save, *tok = strtok_r(copy, ", ", &save); tok && n < 64;
			     tok = strtok_r(NULL, ", ", &save))
				tags[n++] = tok;
		}
		if (rc == 0)
			rc = users_set_tags(im->u, name, tags, n, why, sizeof(why));
		free(copy);
		if (rc != 0)
			return fail(im, "%s", why);
		im->st.users++;
	}
	return 0;
}

static int apply_permissions(struct imp *im, const struct json_value *arr)
{
	for (im->idx = 0; arr && im->idx < arr->u.arr.n; im->idx++) {
		const struct json_value *o = &arr->u.arr.items[im->idx];
		char why[300];
		if (users_set_permissions(im->u, json_get_str(o, "user"), json_get_str(o, "vhost"),
		                          json_get_str(o, "configure"), json_get_str(o, "write"),
		                          json_get_str(o, "read"), why, sizeof(why)) != 0)
			return fail(im, "%s", why);
		im->st.permissions++;
	}
	return 0;
}

static int apply_exchanges(struct imp *im, const struct json_value *arr)
{
	for (im->idx = 0; arr && im->idx < arr->u.arr.n; im->idx++) {
		const struct json_value *o = &arr->u.arr.items[im->idx];
		struct bytes name, type;
		const char *vhost;
		bool durable, auto_delete, internal;
		get_name(im, o, "name", &name);
		get_str(im, o, "type", true, &type);
		get_cname(im, o, "vhost", &vhost);
		get_bool(im, o, "durable", true, &durable);
		get_bool(im, o, "auto_delete", false, &auto_delete);
		get_bool(im, o, "internal", false, &internal);
		if (name.len == 0 || names_reserved(name)) {
			im->st.skipped++;
			continue;
		}
		struct ftable_builder tb;
		ftable_builder_init(&tb);
		get_args(im, o, &tb);
		struct reply r = { 0 };
		int rc = vhost_exchange_declare(find_vhost(im, vhost), name, type, false, durable,
		                                auto_delete, internal, ftable_builder_get(&tb), &r);
		ftable_builder_free(&tb);
		if (rc != 0)
			return fail(im, "%s", r.text);
		im->st.exchanges++;
	}
	return 0;
}

static int apply_queues(struct imp *im, const struct json_value *arr)
{
	for (im->idx = 0; arr && im->idx < arr->u.arr.n; im->idx++) {
		const struct json_value *o = &arr->u.arr.items[im->idx];
		struct bytes name;
		const char *vhost;
		bool durable, auto_delete;
		get_name(im, o, "name", &name);
		get_cname(im, o, "vhost", &vhost);
		get_bool(im, o, "durable", true, &durable);
		get_bool(im, o, "auto_delete", false, &auto_delete);
		if (names_reserved(name)) {
			im->st.skipped++;
			continue;
		}
		struct ftable_builder tb;
		ftable_builder_init(&tb);
		get_args(im, o, &tb);
		struct reply r = { 0 };
		struct queue *q;
		int rc = vhost_queue_declare(find_vhost(im, vhost), name, false, durable, false,
		                             auto_delete, ftable_builder_get(&tb), NULL,
		                             broker_queue_hooks(), im->b, &q, &r);
		ftable_builder_free(&tb);
		if (rc != 0)
			return fail(im, "%s", r.text);
		queue_touch(q, broker_now_ms(im->b));
		im->st.queues++;
	}
	return 0;
}

static int apply_bindings(struct imp *im, const struct json_value *arr)
{
	for (im->idx = 0; arr && im->idx < arr->u.arr.n; im->idx++) {
		const struct json_value *o = &arr->u.arr.items[im->idx];
		struct bytes source, dest, dtype, key;
		const char *vhost;
		get_name(im, o, "source", &source);
		get_cname(im, o, "vhost", &vhost);
		get_name(im, o, "destination", &dest);
		get_str(im, o, "destination_type", true, &dtype);
		get_name(im, o, "routing_key", &key);
		if (source.len == 0) {
			im->st.skipped++;
			continue;
		}
		struct ftable_builder tb;
		ftable_builder_init(&tb);
		get_args(im, o, &tb);
		struct reply r = { 0 };
		struct vhost *vh = find_vhost(im, vhost);
		int rc;
		if (bytes_eq_str(dtype, "queue"))
			rc = vhost_queue_bind(vh, dest, source, key, ftable_builder_get(&tb), &r);
		else
			rc = vhost_exchange_bind(vh, dest, source, key, ftable_builder_get(&tb), &r);
		ftable_builder_free(&tb);
		if (rc != 0)
			return fail(im, "%s", r.text);
		im->st.bindings++;
	}
	return 0;
}

int defs_import_value(struct broker *b, struct users *u, const struct json_value *root,
                      struct defs_stats *stats, char *err, size_t errcap)
{
	struct imp im = { .b = b, .u = u, .root = root, .err = err, .errcap = errcap };
	if (errcap)
		err[0] = '\0';
	if (!root || root->type != JSON_OBJECT) {
		snprintf(err, errcap, "definitions must be a JSON object");
		return -1;
	}
	kset_init(&im.vhosts);
	kset_init(&im.users);
	kset_init(&im.exchanges);
	kset_init(&im.queues);
	/* every section is looked up first so a malformed one fails before any check */
	static const char *const names[] = { "users", "vhosts", "permissions", "exchanges",
	                                     "queues", "bindings" };
	const struct json_value *sec[6];
	int rc = 0;
	for (int i = 0; i < 6 && rc == 0; i++)
		sec[i] = section(&im, names[i], &rc);
	static int (*const check[6])(struct imp *, const struct json_value *) = {
		check_users, check_vhosts, check_permissions, check_exchanges, check_queues,
		check_bindings,
	};
	/* vhosts before users' permissions need them: check vhosts first */
	static const int order[6] = { 1, 0, 2, 3, 4, 5 };
	for (int k = 0; k < 6 && rc == 0; k++) {
		int i = order[k];
		im.sect = names[i];
		if (sec[i])
			rc = check[i](&im, sec[i]);
	}
	if (rc == 0) {
		im.sect = names[1];
		apply_vhosts(&im, sec[1]);
		im.sect = names[0];
		rc = apply_users(&im, sec[0]);
	}
	if (rc == 0) {
		im.sect = names[2];
		rc = apply_permissions(&im, sec[2]);
	}
	if (rc == 0) {
		im.sect = names[3];
		rc = apply_exchanges(&im, sec[3]);
	}
	if (rc == 0) {
		im.sect = names[4];
		rc = apply_queues(&im, sec[4]);
	}
	if (rc == 0) {
		im.sect = names[5];
		rc = apply_bindings(&im, sec[5]);
	}
	kset_free(&im.vhosts);
	kset_free(&im.users);
	kset_free(&im.exchanges);
	kset_free(&im.queues);
	if (stats)
		*stats = im.st;
	return rc;
}

int defs_import(struct broker *b, struct users *u, const char *json, size_t len, char *err,
                size_t errcap)
{
	struct json_doc doc;
	char why[256];
	if (json_parse(&doc, json, len, why, sizeof(why)) != 0) {
		snprintf(err, errcap, "definitions are not valid JSON: %s", why);
		json_doc_free(&doc);
		return -1;
	}
	int rc = defs_import_value(b, u, doc.root, NULL, err, errcap);
	json_doc_free(&doc);
	return rc;
}
