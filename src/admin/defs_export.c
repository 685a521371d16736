/*
 * Definitions export, and the field table <-> JSON value mapping that
 * export, import and the admin listings share.  See defs.h.
 *
 * Everything is sorted before it is written (hash map order is random per
 * map), so one state always exports to the same bytes.
 */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "admin/defs.h"
#include "auth/users.h"
#include "broker/binding.h"
#include "broker/broker.h"
#include "broker/exchange.h"
#include "broker/names.h"
#include "broker/queue.h"
#include "broker/vhost.h"
#include "util/xalloc.h"

/* The RabbitMQ release whose definitions format this is (import reads the
 * version only to guess a missing hashing_algorithm). */
#define DEFS_RABBIT_VERSION "3.10.8"

/* ---- field values as JSON ---------------------------------------------- */

static void defs_write_array(struct json_out *w, struct ftable a);

static void defs_write_bytes(struct json_out *w, struct bytes s)
{
	if (json_utf8_valid(s.ptr, s.len)) {
		json_str_n(w, s.ptr, s.len);
		return;
	}
	static const char prefix[] = "Not UTF-8, base64 is: ";
	size_t cap = sizeof(prefix) + 4 * ((s.len + 2) / 3) + 1;
	char *buf = xmalloc(cap);
	memcpy(buf, prefix, sizeof(prefix) - 1);
	int n = EVP_EncodeBlock((unsigned char *)buf + sizeof(prefix) - 1, s.ptr, (int)s.len);
	json_str_n(w, buf, sizeof(prefix) - 1 + (size_t)n);
	free(buf);
}

static void defs_write_value(struct json_out *w, const struct fvalue *v)
{
	int64_t i;
	switch (v->type) {
	case 't':
		json_bool(w, v->v.b);
		return;
	case 'f':
		json_double(w, v->v.f);
		return;
	case 'd':
		json_double(w, v->v.d);
		return;
	case 'D': {
		double d = v->v.dec.value;
		for (int k = 0; k < v->v.dec.scale; k++)
			d /= 10;
		json_double(w, d);
		return;
	}
	case 'S':
	case 'x':
		defs_write_bytes(w, v->v.str);
		return;
	case 'T':
		json_uint(w, v->v.ts);
		return;
	case 'F':
		defs_write_table(w, v->v.table);
		return;
	case 'A':
		defs_write_array(w, v->v.array);
		return;
	case 'V':
		json_null(w);
		return;
	default:
		if (fvalue_as_int(v, &i))
			json_int(w, i);
		else
			json_null(w);
		return;
	}
}

void defs_write_table(struct json_out *w, struct ftable t)
{
	struct ftable_iter it;
	struct bytes key;
	struct fvalue v;
	ftable_iter_init(&it, t);
	json_obj_begin(w);
	while (ftable_next(&it, &key, &v) == 1) {
		json_key_n(w, key.ptr, key.len);
		defs_write_value(w, &v);
	}
	json_obj_end(w);
}

static void defs_write_array(struct json_out *w, struct ftable a)
{
	struct ftable_iter it;
	struct fvalue v;
	ftable_iter_init(&it, a);
	json_arr_begin(w);
	while (farray_next(&it, &v) == 1)
		defs_write_value(w, &v);
	json_arr_end(w);
}

/* ---- JSON values as field values --------------------------------------- */

static int defs_value_from_json(const struct json_value *jv, struct fvalue *fv,
                                struct ftable_builder *nested, int depth, char *err,
                                size_t errcap);

static int defs_array_from_json(struct ftable_builder *tb, const struct json_value *arr,
                                int depth, char *err, size_t errcap)
{
	for (size_t i = 0; i < arr->u.arr.n; i++) {
		struct ftable_builder nested;
		struct fvalue fv;
		ftable_builder_init(&nested);
		int rc = defs_value_from_json(&arr->u.arr.items[i], &fv, &nested, depth, err, errcap);
		if (rc == 0)
			farray_add_value(tb, &fv);
		ftable_builder_free(&nested);
		if (rc != 0)
			return -1;
	}
	return 0;
}

static int defs_object_from_json(struct ftable_builder *tb, const struct json_value *obj,
                                 int depth, char *err, size_t errcap)
{
	for (size_t i = 0; i < obj->u.obj.n; i++) {
		const struct json_member *m = &obj->u.obj.members[i];
		if (m->key_len > 255) {
			snprintf(err, errcap, "argument name longer than 255 bytes");
			return -1;
		}
		struct ftable_builder nested;
		struct fvalue fv;
		ftable_builder_init(&nested);
		int rc = defs_value_from_json(&m->value, &fv, &nested, depth, err, errcap);
		if (rc == 0) {
			struct bytes key = { (const uint8_t *)m->key, m->key_len };
			ftable_put_value(tb, key, &fv);
		}
		ftable_builder_free(&nested);
		if (rc != 0)
			return -1;
	}
	return 0;
}

/* Fill fv from jv; tables and arrays are built into nested, which the
 * caller frees after copying fv. */
static int defs_value_from_json(const struct json_value *jv, struct fvalue *fv,
                                struct ftable_builder *nested, int depth, char *err,
                                size_t errcap)
{
	memset(fv, 0, sizeof(*fv));
	switch (jv->type) {
	case JSON_NULL:
		snprintf(err, errcap, "null is not allowed in arguments");
		return -1;
	case JSON_BOOL:
		fv->type = 't';
		fv->v.b = jv->u.b;
		return 0;
	case JSON_NUMBER:
		if (jv->u.num.is_int) {
			fv->type = 'l';
			fv->v.i64 = jv->u.num.i;
		} else {
			fv->type = 'd';
			fv->v.d = jv->u.num.d;
		}
		return 0;
	case JSON_STRING:
		fv->type = 'S';
		fv->v.str.ptr = (const uint8_t *)jv->u.str.ptr;
		fv->v.str.len = jv->u.str.len;
		return 0;
	case JSON_ARRAY:
	case JSON_OBJECT:
		if (depth + 1 >= FTABLE_MAX_DEPTH) {
			snprintf(err, errcap, "arguments nested deeper than %d levels", FTABLE_MAX_DEPTH);
			return -1;
		}
		if (jv->type == JSON_ARRAY) {
			if (defs_array_from_json(nested, jv, depth + 1, err, errcap) != 0)
				return -1;
			fv->type = 'A';
			fv->v.array = ftable_builder_get(nested);
		} else {
			if (defs_object_from_json(nested, jv, depth + 1, err, errcap) != 0)
				return -1;
			fv->type = 'F';
			fv->v.table = ftable_builder_get(nested);
		}
		if (nested->oom) {
			snprintf(err, errcap, "arguments too large");
			return -1;
		}
		return 0;
	}
	return -1;
}

int defs_table_from_json(struct ftable_builder *tb, const struct json_value *obj, char *err,
                         size_t errcap)
{
	if (!obj || obj->type == JSON_NULL)
		return 0;
	if (obj->type == JSON_ARRAY && obj->u.arr.n == 0)
		return 0; /* RabbitMQ writes empty arguments as [] in places */
	if (obj->type != JSON_OBJECT) {
		snprintf(err, errcap, "arguments must be an object, not %s",
		         json_type_name(obj->type));
		return -1;
	}
	if (defs_object_from_json(tb, obj, 0, err, errcap) != 0)
		return -1;
	if (tb->oom) {
		snprintf(err, errcap, "arguments too large");
		return -1;
	}
	return 0;
}

/* ---- export ------------------------------------------------------------ */

static int cmp_bytes(struct bytes a, struct bytes b)
{
	size_t n = a.len < b.len ? a.len : b.len;
	int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
	if (c)
		return c;
	return a.len < b.len ? -1 : a.len > b.len;
}

static int cmp_vhost(const void *a, const void *b)
{
	return strcmp(vhost_name(*(struct vhost *const *)a), vhost_name(*(struct vhost *const *)b));
}

static int cmp_exchange(const void *a, const void *b)
{
	return cmp_bytes((*(struct exchange *const *)a)->name, (*(struct exchange *const *)b)->name);
}

static int cmp_queue(const void *a, const void *b)
{
	return cmp_bytes((*(struct queue *const *)a)->name, (*(struct queue *const *)b)->name);
}

static struct bytes binding_dest_name(const struct binding *bd)
{
	return bd->dest_q ? bd->dest_q->name : bd->dest_x->name;
}

static int cmp_binding(const void *a, const void *b)
{
	const struct binding *x = *(struct binding *const *)a, *y = *(struct binding *const *)b;
	int c = cmp_bytes(x->source->name, y->source->name);
	if (!c)
		c = (x->dest_q != NULL) - (y->dest_q != NULL);
	if (!c)
		c = cmp_bytes(binding_dest_name(x), binding_dest_name(y));
	if (!c)
		c = cmp_bytes(x->key, y->key);
	if (!c)
		c = cmp_bytes((struct bytes){ x->args.ptr, x->args.len },
		              (struct bytes){ y->args.ptr, y->args.len });
	return c;
}

/* The values of a map, sorted (free() the array). */
static void **sorted_values(const struct hmap *m, size_t *n, int (*cmp)(const void *, const void *))
{
	void **v = xmalloc((hmap_count(m) + 1) * sizeof(*v));
	size_t it = 0, i = 0;
	while (i < hmap_count(m) && hmap_next(m, &it, NULL, &v[i]))
		i++;
	qsort(v, i, sizeof(*v), cmp);
	*n = i;
	return v;
}

static struct vhost **sorted_vhosts(struct broker *b)
{
	struct vhost **v = xmalloc((b->nvhosts + 1) * sizeof(*v));
	if (b->nvhosts)
		memcpy(v, b->vhosts, b->nvhosts * sizeof(*v));
	qsort(v, b->nvhosts, sizeof(*v), cmp_vhost);
	return v;
}

static const char *queue_type_name(const struct queue *q)
{
	switch (q->args.type) {
	case QUEUE_TYPE_QUORUM: return "quorum";
	case QUEUE_TYPE_STREAM: return "stream";
	default: return "classic";
	}
}

static bool exchange_exported(const struct exchange *x, int flags)
{
	if ((x->flags & EXCHANGE_F_DEFAULT) || names_reserved(x->name))
		return false;
	return !(flags & DEFS_DURABLE_ONLY) || (x->flags & EXCHANGE_F_DURABLE);
}

static bool queue_exported(const struct queue *q, int flags)
{
	if (q->flags & QUEUE_F_EXCLUSIVE)
		return false;
	return !(flags & DEFS_DURABLE_ONLY) || (q->flags & QUEUE_F_DURABLE);
}

static bool binding_exported(const struct binding *bd, int flags)
{
	if (bd->source->flags & EXCHANGE_F_DEFAULT)
		return false;
	if (bd->dest_q && (bd->dest_q->flags & QUEUE_F_EXCLUSIVE))
		return false;
	if (!(flags & DEFS_DURABLE_ONLY))
		return true;
	bool dest_durable = bd->dest_q ? (bd->dest_q->flags & QUEUE_F_DURABLE)
	                               : (bd->dest_x->flags & EXCHANGE_F_DURABLE);
	return (bd->source->flags & EXCHANGE_F_DURABLE) && dest_durable;
}

static void write_users(struct json_out *w, const struct users *u)
{
	json_key(w, "users");
	json_arr_begin(w);
	for (size_t i = 0; u && i < users_count(u); i++) {
		const struct users_user *user = users_at(u, i);
		char b64[USERS_B64_MAX];
		users_hash_b64(user, b64, sizeof(b64));
		json_obj_begin(w);
		json_key(w, "hashing_algorithm");
		json_str(w, users_alg_name(user->alg));
		json_key(w, "limits");
		json_obj_begin(w);
		json_obj_end(w);
		json_key(w, "name");
		json_str(w, user->name);
		json_key(w, "password_hash");
		json_str(w, b64);
		json_key(w, "tags");
		json_arr_begin(w);
		for (size_t t = 0; t < user->ntags; t++)
			json_str(w, user->tags[t]);
		json_arr_end(w);
		json_obj_end(w);
	}
	json_arr_end(w);
}

static void write_permissions(struct json_out *w, const struct users *u)
{
	json_key(w, "permissions");
	json_arr_begin(w);
	for (size_t i = 0; u && i < users_count(u); i++) {
		const struct users_user *user = users_at(u, i);
		for (size_t p = 0; p < user->nperms; p++) {
			const struct users_perms *pm = &user->perms[p];
			json_obj_begin(w);
			json_key(w, "configure");
			json_str(w, pm->re[USERS_PERM_CONFIGURE]);
			json_key(w, "read");
			json_str(w, pm->re[USERS_PERM_READ]);
			json_key(w, "user");
			json_str(w, user->name);
			json_key(w, "vhost");
			json_str(w, pm->vhost);
			json_key(w, "write");
			json_str(w, pm->re[USERS_PERM_WRITE]);
			json_obj_end(w);
		}
	}
	json_arr_end(w);
}

static void write_vhosts(struct json_out *w, struct vhost **vs, size_t n)
{
	json_key(w, "vhosts");
	json_arr_begin(w);
	for (size_t i = 0; i < n; i++) {
		json_obj_begin(w);
		json_key(w, "limits");
		json_arr_begin(w);
		json_arr_end(w);
		json_key(w, "metadata");
		json_obj_begin(w);
		json_key(w, "description");
		json_str(w, strcmp(vhost_name(vs[i]), "/") == 0 ? "Default virtual host" : "");
		json_key(w, "tags");
		json_arr_begin(w);
		json_arr_end(w);
		json_obj_end(w);
		json_key(w, "name");
		json_str(w, vhost_name(vs[i]));
		json_obj_end(w);
	}
	json_arr_end(w);
}

static void write_bindings(struct json_out *w, struct vhost **vs, size_t nv, int flags)
{
	json_key(w, "bindings");
	json_arr_begin(w);
	for (size_t i = 0; i < nv; i++) {
		size_t n;
		struct binding **bs = (struct binding **)sorted_values(&vs[i]->bindings, &n, cmp_binding);
		for (size_t k = 0; k < n; k++) {
			const struct binding *bd = bs[k];
			if (!binding_exported(bd, flags))
				continue;
			struct bytes dest = binding_dest_name(bd);
			json_obj_begin(w);
			json_key(w, "arguments");
			defs_write_table(w, bd->args);
			json_key(w, "destination");
			json_str_n(w, dest.ptr, dest.len);
			json_key(w, "destination_type");
			json_str(w, bd->dest_q ? "queue" : "exchange");
			json_key(w, "routing_key");
			json_str_n(w, bd->key.ptr, bd->key.len);
			json_key(w, "source");
			json_str_n(w, bd->source->name.ptr, bd->source->name.len);
			json_key(w, "vhost");
			json_str(w, vhost_name(vs[i]));
			json_obj_end(w);
		}
		free(bs);
	}
	json_arr_end(w);
}

static void write_exchanges(struct json_out *w, struct vhost **vs, size_t nv, int flags)
{
	json_key(w, "exchanges");
	json_arr_begin(w);
	for (size_t i = 0; i < nv; i++) {
		size_t n;
		struct exchange **xs =
			(struct exchange **)sorted_values(&vs[i]->exchanges, &n, cmp_exchange);
		for (size_t k = 0; k < n; k++) {
			const struct exchange *x = xs[k];
			if (!exchange_exported(x, flags))
				continue;
			json_obj_begin(w);
			json_key(w, "arguments");
			defs_write_table(w, x->args);
			json_key(w, "auto_delete");
			json_bool(w, x->flags & EXCHANGE_F_AUTO_DELETE);
			json_key(w, "durable");
			json_bool(w, x->flags & EXCHANGE_F_DURABLE);
			json_key(w, "internal");
			json_bool(w, x->flags & EXCHANGE_F_INTERNAL);
			json_key(w, "name");
			json_str_n(w, x->name.ptr, x->name.len);
			json_key(w, "type");
			json_str(w, x->type->name);
			json_key(w, "vhost");
			json_str(w, vhost_name(vs[i]));
			json_obj_end(w);
		}
		free(xs);
	}
	json_arr_end(w);
}

static void write_queues(struct json_out *w, struct vhost **vs, size_t nv, int flags)
{
	json_key(w, "queues");
	json_arr_begin(w);
	for (size_t i = 0; i < nv; i++) {
		size_t n;
		struct queue **qs = (struct queue **)sorted_values(&vs[i]->queues, &n, cmp_queue);
		for (size_t k = 0; k < n; k++) {
			const struct queue *q = qs[k];
			if (!queue_exported(q, flags))
				continue;
			json_obj_begin(w);
			json_key(w, "arguments");
			defs_write_table(w, q->raw_args);
			json_key(w, "auto_delete");
			json_bool(w, q->flags & QUEUE_F_AUTO_DELETE);
			json_key(w, "durable");
			json_bool(w, q->flags & QUEUE_F_DURABLE);
			json_key(w, "name");
			json_str_n(w, q->name.ptr, q->name.len);
			json_key(w, "type");
			json_str(w, queue_type_name(q));
			json_key(w, "vhost");
			json_str(w, vhost_name(vs[i]));
			json_obj_end(w);
		}
		free(qs);
	}
	json_arr_end(w);
}

static void write_empty(struct json_out *w, const char *key)
{
	json_key(w, key);
	json_arr_begin(w);
	json_arr_end(w);
}

void defs_write(struct json_out *w, struct broker *b, const struct users *u, int flags)
{
	struct vhost **vs = sorted_vhosts(b);
	json_obj_begin(w);
	write_bindings(w, vs, b->nvhosts, flags);
	write_exchanges(w, vs, b->nvhosts, flags);
	write_empty(w, "global_parameters");
	write_empty(w, "parameters");
	write_permissions(w, u);
	write_empty(w, "policies");
	write_queues(w, vs, b->nvhosts, flags);
	json_key(w, "rabbit_version");
	json_str(w, DEFS_RABBIT_VERSION);
	json_key(w, "rabbitmq_version");
	json_str(w, DEFS_RABBIT_VERSION);
	write_empty(w, "topic_permissions");
	write_users(w, u);
	write_vhosts(w, vs, b->nvhosts);
	json_obj_end(w);
	free(vs);
}

char *defs_export(struct broker *b, const struct users *u, int flags, size_t *len)
{
	struct json_out w;
	json_out_init(&w);
	defs_write(&w, b, u, flags);
	return json_out_take(&w, len);
}
