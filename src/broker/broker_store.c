/*
 * The broker's side of persistence: opening the store and recovering from
 * it before the listeners open, saving durable definitions before their
 * -ok is sent, and turning queue events into store records.
 *
 * What is persistent: a message with delivery-mode 2 in a durable queue.
 * Each such message is written once (the first durable queue it reaches),
 * each durable queue it enters gets an enqueue record, a delivery gets a
 * delivered marker (so it comes back redelivered after a crash), and an
 * ack, drop or expiry an ack record.  Deleting a durable queue drops all of
 * its records at once.
 *
 * Definitions are saved as {"warren": {version, queue ids}, "definitions":
 * RabbitMQ-format definitions of the durable objects}; queue ids tie the
 * store's records to queue names.  A save writes only when the document
 * changed, so clients re-declaring their topology on every connect cost no
 * fsync.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/defs.h"
#include "broker/broker.h"
#include "broker/message.h"
#include "broker/queue.h"
#include "broker/vhost.h"
#include "store/store.h"
#include "util/json.h"
#include "util/xalloc.h"

#define DEFS_FORMAT_VERSION 1

static bool persists(const struct broker *b, const struct queue *q, const struct message *m)
{
	return b->store && (q->flags & QUEUE_F_DURABLE) && m->persistent;
}

uint32_t broker_queue_store_id(struct broker *b, struct queue *q)
{
	if (q->store_id == 0)
		q->store_id = ++b->next_store_queue_id;
	return q->store_id;
}

void broker_persist_enqueued(void *ctx, struct queue *q, struct message *m)
{
	struct broker *b = ctx;
	if (!persists(b, q, m))
		return;
	if (!m->stored) {
		store_msg_write(b->store, m->id, m->exchange, m->routing_key, m->props, m->body,
		                m->body_len);
		m->stored = true;
	}
	uint64_t t = store_enqueue(b->store, broker_queue_store_id(b, q), m->id);
	if (t > b->publish_ticket)
		b->publish_ticket = t;
}

void broker_persist_removed(void *ctx, struct queue *q, struct message *m)
{
	struct broker *b = ctx;
	if (persists(b, q, m))
		store_ack(b->store, broker_queue_store_id(b, q), m->id);
}

void broker_persist_delivered(struct broker *b, struct queue *q, const struct message *m)
{
	if (persists(b, q, m))
		store_deliver(b->store, broker_queue_store_id(b, q), m->id);
}

void broker_persist_queue_gone(struct broker *b, struct queue *q)
{
	if (!b->store || !(q->flags & QUEUE_F_DURABLE))
		return;
	if (q->store_id)
		store_queue_drop(b->store, q->store_id);
	b->defs_dirty = true;
}

/* ---- definitions ------------------------------------------------------ */

static char *defs_document(struct broker *b, size_t *len)
{
	struct json_out w;
	json_out_init(&w);
	json_obj_begin(&w);
	json_key(&w, "warren");
	json_obj_begin(&w);
	json_key(&w, "version");
	json_int(&w, DEFS_FORMAT_VERSION);
	json_key(&w, "queue_ids");
	json_arr_begin(&w);
	for (size_t i = 0; i < b->nvhosts; i++) {
		struct vhost *vh = b->vhosts[i];
		size_t it = 0;
		struct bytes key;
		void *val;
		while (hmap_next(&vh->queues, &it, &key, &val)) {
			struct queue *q = val;
			if (!(q->flags & QUEUE_F_DURABLE))
				continue;
			json_obj_begin(&w);
			json_key(&w, "vhost");
			json_str(&w, vh->name);
			json_key(&w, "name");
			json_str_n(&w, q->name.ptr, q->name.len);
			json_key(&w, "id");
			json_uint(&w, broker_queue_store_id(b, q));
			json_obj_end(&w);
		}
	}
	json_arr_end(&w);
	json_obj_end(&w);
	json_key(&w, "definitions");
	defs_write(&w, b, b->users, DEFS_DURABLE_ONLY);
	json_obj_end(&w);
	return json_out_take(&w, len);
}

int broker_defs_save(struct broker *b, char *err, size_t errcap)
{
	b->defs_dirty = false;
	if (!b->store || b->loading)
		return 0;
	size_t len;
	char *doc = defs_document(b, &len);
	/* hmap iteration order is fixed for a given map, and defs_write sorts:
	 * an unchanged topology gives the same bytes */
	if (b->defs_saved && b->defs_saved_len == len && memcmp(b->defs_saved, doc, len) == 0) {
		free(doc);
		return 0;
	}
	if (store_defs_write(b->store, (const uint8_t *)doc, len, err, errcap) != 0) {
		free(doc);
		return -1;
	}
	free(b->defs_saved);
	b->defs_saved = doc;
	b->defs_saved_len = len;
	return 0;
}

void broker_defs_changed(void *ctx)
{
	struct broker *b = ctx;
	char err[256];
	if (broker_defs_save(b, err, sizeof(err)) != 0)
		log_error(&b->log, "saving definitions: %s", err);
}

static int defs_load(struct broker *b, char *err, size_t errcap)
{
	uint8_t *data;
	size_t len;
	int rc = store_defs_read(b->store, &data, &len);
	if (rc == 1)
		return 0; /* a new data directory */
	if (rc != 0) {
		snprintf(err, errcap, "cannot read the definitions file");
		return -1;
	}
	struct json_doc doc;
	char jerr[256];
	if (json_parse(&doc, (const char *)data, len, jerr, sizeof(jerr)) != 0) {
		snprintf(err, errcap, "definitions file: %s", jerr);
		free(data);
		return -1;
	}
	const struct json_value *defs = json_get(doc.root, "definitions");
	const struct json_value *meta = json_get(doc.root, "warren");
	const struct json_value *ids = meta ? json_get(meta, "queue_ids") : NULL;
	struct defs_stats st;
	rc = -1;
	if (!defs || !ids || ids->type != JSON_ARRAY) {
		snprintf(err, errcap, "definitions file: not a Warren definitions document");
		goto out;
	}
	/* recovery restores what exists: a lowered queue limit must not refuse it */
	uint32_t limit = b->cfg.max_queues_per_vhost;
	b->cfg.max_queues_per_vhost = 0;
	for (size_t i = 0; i < b->nvhosts; i++)
		b->vhosts[i]->max_queues = 0;
	b->loading = true;
	rc = defs_import_value(b, b->users, defs, &st, err, errcap);
	b->loading = false;
	b->cfg.max_queues_per_vhost = limit;
	for (size_t i = 0; i < b->nvhosts; i++)
		b->vhosts[i]->max_queues = limit;
	if (rc != 0)
		goto out;
	for (size_t i = 0; i < ids->u.arr.n; i++) {
		const struct json_value *e = &ids->u.arr.items[i];
		const char *vn = json_get_str(e, "vhost");
		const char *qn = json_get_str(e, "name");
		const struct json_value *id = json_get(e, "id");
		if (!vn || !qn || !id || id->type != JSON_NUMBER || !id->u.num.is_int ||
		    id->u.num.i <= 0 || id->u.num.i > UINT32_MAX)
			continue;
		struct vhost *vh = broker_vhost_find(b, vn, strlen(vn));
		struct queue *q = vh ? vhost_queue_find(vh, bytes_of(qn)) : NULL;
		if (!q)
			continue;
		q->store_id = (uint32_t)id->u.num.i;
		if (q->store_id > b->next_store_queue_id)
			b->next_store_queue_id = q->store_id;
	}
	b->defs_saved = (char *)data;
	b->defs_saved_len = len;
	data = NULL;
out:
	json_doc_free(&doc);
	free(data);
	return rc;
}

/* ---- recovery --------------------------------------------------------- */

struct recover_ctx {
	struct broker *b;
	struct queue **by_id; /* index: store queue id */
	size_t nids;
	uint64_t restored, orphans;
	uint32_t max_id;      /* highest queue id the store knows */
	uint32_t *gone;       /* ids with records but no queue (deleted before a crash) */
	size_t ngone, capgone;
	int64_t now;
};

/*
 * A queue id in the store that the definitions do not know: the queue's
 * delete reached the definitions file but its drop record had not reached
 * the store.  Its records must go, and its id must never be handed out
 * again, or a new queue would inherit the old messages.
 */
static void recover_orphan(struct recover_ctx *rc, uint32_t id)
{
	rc->orphans++;
	for (size_t i = 0; i < rc->ngone; i++)
		if (rc->gone[i] == id)
			return;
	if (rc->ngone == rc->capgone) {
		rc->capgone = rc->capgone ? rc->capgone * 2 : 8;
		rc->gone = xrealloc(rc->gone, rc->capgone * sizeof(*rc->gone));
	}
	rc->gone[rc->ngone++] = id;
}

static void recover_one(void *ctx, const struct store_recovered *r)
{
	struct recover_ctx *rc = ctx;
	struct queue *q = r->queue_id < rc->nids ? rc->by_id[r->queue_id] : NULL;
	if (r->queue_id > rc->max_id)
		rc->max_id = r->queue_id;
	if (!q) {
		recover_orphan(rc, r->queue_id);
		return;
	}
	struct message *m = message_new(r->exchange, r->routing_key, r->props, r->body_len);
	if (!m) {
		rc->orphans++; /* properties no longer valid: nothing to restore */
		return;
	}
	message_append_body(m, (struct bytes){ r->body, (size_t)r->body_len });
	m->id = r->msg_id;
	m->stored = true;
	queue_restore(q, m, r->delivered, rc->now);
	message_unref(m);
	rc->restored++;
}

static void store_durable_cb(void *ctx, uint64_t upto, int error)
{
	struct broker *b = ctx;
	if (upto > b->store_durable)
		b->store_durable = upto;
	if (error) {
		if (upto > b->store_failed)
			b->store_failed = upto;
		log_error(&b->log, "message store: write failed: %s; publishers are blocked",
		          strerror(error));
		broker_disk_alarm(b, true);
	}
	broker_release_replies(b);
}

int broker_store_open(struct broker *b, enum store_sync sync, char *err, size_t errcap)
{
	struct store_config sc = { .dir = b->cfg.data_dir, .sync = sync };
	if (store_open(&b->store, &sc, b->loop, store_durable_cb, b, err, errcap) != 0)
		return -1;
	if (defs_load(b, err, errcap) != 0)
		return -1;
	struct recover_ctx rc = { .b = b, .now = broker_now_ms(b) };
	rc.nids = (size_t)b->next_store_queue_id + 1;
	rc.by_id = xcalloc(rc.nids, sizeof(*rc.by_id));
	for (size_t i = 0; i < b->nvhosts; i++) {
		size_t it = 0;
		struct bytes key;
		void *val;
		while (hmap_next(&b->vhosts[i]->queues, &it, &key, &val)) {
			struct queue *q = val;
			if (q->store_id && q->store_id < rc.nids)
				rc.by_id[q->store_id] = q;
		}
	}
	struct store_stats st;
	int r = store_recover(b->store, recover_one, &rc, &st);
	free(rc.by_id);
	if (r != 0) {
		snprintf(err, errcap, "message store recovery failed in %s", b->cfg.data_dir);
		return -1;
	}
	for (size_t i = 0; i < rc.ngone; i++)
		store_queue_drop(b->store, rc.gone[i]);
	free(rc.gone);
	if (rc.max_id > b->next_store_queue_id)
		b->next_store_queue_id = rc.max_id;
	uint64_t max_id = store_max_msg_id(b->store);
	if (max_id > b->next_message_id)
		b->next_message_id = max_id;
	log_info(&b->log,
	         "recovered %llu queues, %llu messages (%llu bytes) in %.3f s%s; "
	         "%llu damaged records, %llu bytes of torn tail truncated",
	         (unsigned long long)st.queues, (unsigned long long)rc.restored,
	         (unsigned long long)st.bytes, st.seconds,
	         st.from_checkpoint ? " from the clean-shutdown checkpoint" : "",
	         (unsigned long long)st.damaged_records, (unsigned long long)st.truncated_bytes);
	if (rc.orphans)
		log_warning(&b->log, "%llu stored messages belong to no durable queue; dropped",
		            (unsigned long long)rc.orphans);
	return 0;
}

void broker_store_close(struct broker *b)
{
	if (!b->store)
		return;
	if (b->defs_dirty) {
		char err[256];
		if (broker_defs_save(b, err, sizeof(err)) != 0)
			log_error(&b->log, "saving definitions: %s", err);
	}
	store_close(b->store);
	b->store = NULL;
	free(b->defs_saved);
	b->defs_saved = NULL;
}
