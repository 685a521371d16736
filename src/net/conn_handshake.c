/*
 * The connection-class handshake: connection.start / start-ok (SASL),
 * tune / tune-ok negotiation, open / open-ok, and the other methods a
 * client may send on channel 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/users.h"
#include "broker/broker.h"
#include "broker/vhost.h"
#include "codec/gen_methods.h"
#include "codec/table.h"
#include "net/conn.h"
#include "net/conn_auth.h"
#include "net/conn_int.h"
#include "net/tls.h"
#include "util/xalloc.h"

/* ---- handshake ------------------------------------------------------- */

void conn_send_start(struct conn *c)
{
	if (tls_transport_is(&c->tp) && c->b->log.level >= LOG_DEBUG) {
		char desc[96];
		tls_describe(&c->tp, desc, sizeof(desc));
		const char *cn = tls_peer_cn(&c->tp);
		log_debug(&c->b->log, "connection %s: %s%s%s", c->peer, desc,
		          cn ? ", client certificate CN=" : "", cn ? cn : "");
	}
	struct codec_connection_start m = {
		.version_major = 0,
		.version_minor = 9,
		.server_properties = { c->b->server_props, c->b->server_props_len },
		/* EXTERNAL only where a verified client certificate names the user */
		.mechanisms = bytes_of(tls_peer_cn(&c->tp) ? "PLAIN AMQPLAIN EXTERNAL"
		                                           : "PLAIN AMQPLAIN"),
		.locales = bytes_of("en_US"),
	};
	conn_send_method(c, 0, CODEC_CONNECTION_START, &m);
	c->st = CONN_ST_START_OK;
}

static char *bytes_dup_cstr(struct bytes b)
{
	char *s = xmalloc(b.len + 1);
	if (b.len)
		memcpy(s, b.ptr, b.len);
	s[b.len] = '\0';
	return s;
}

static void conn_read_client_props(struct conn *c, struct ftable props)
{
	struct fvalue v;
	if (ftable_get(props, "connection_name", &v) == 1 && v.type == 'S' && v.v.str.len <= 255)
		c->name = bytes_dup_cstr(v.v.str);
	if (ftable_get(props, "capabilities", &v) != 1 || v.type != 'F')
		return;
	static const struct {
		const char *key;
		uint32_t bit;
	} caps[] = {
		{ "authentication_failure_close", CONN_CAP_AUTH_FAILURE_CLOSE },
		{ "connection.blocked", CONN_CAP_BLOCKED },
		{ "consumer_cancel_notify", CONN_CAP_CANCEL_NOTIFY },
		{ "publisher_confirms", CONN_CAP_PUBLISHER_CONFIRMS },
	};
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		struct fvalue cv;
		if (ftable_get(v.v.table, caps[i].key, &cv) == 1 && cv.type == 't' && cv.v.b)
			c->caps |= caps[i].bit;
	}
}

static void conn_on_start_ok(struct conn *c, const struct codec_connection_start_ok *m)
{
	conn_read_client_props(c, m->client_properties);
	char why[160];
	char *user = NULL;
	int rc;
	if (tls_transport_is(&c->tp) && bytes_eq_str(m->mechanism, "EXTERNAL"))
		rc = conn_auth_external(c->b, tls_peer_cn(&c->tp), c->loopback, &user, why,
		                        sizeof(why));
	else
		rc = conn_auth_check(c->b, m->mechanism, m->response, c->loopback, &user, why,
		                     sizeof(why));
	if (rc != 0) {
		log_warning(&c->b->log, "connection %s: authentication failed: %s", c->peer, why);
		free(user);
		if (rc == CONN_AUTH_BAD_MECHANISM) {
			conn_close_fmt(c, CODEC_ACCESS_REFUSED, CODEC_CONNECTION_START_OK, "%s", why);
			return;
		}
		conn_auth_fail(c, m->mechanism);
		return;
	}
	c->user = user;
	struct codec_connection_tune t = {
		.channel_max = c->b->cfg.channel_max,
		.frame_max = c->b->cfg.frame_max,
		.heartbeat = c->b->cfg.heartbeat,
	};
	conn_send_method(c, 0, CODEC_CONNECTION_TUNE, &t);
	c->st = CONN_ST_TUNE_OK;
}

/*
 * A refused login (bad credentials, guest from afar, unknown certificate
 * user) is answered only after CONN_AUTH_FAIL_DELAY, on this connection's
 * own timer: a guesser gets one try per delay per connection while every
 * other client is served meanwhile.  Nothing more is read until then.
 */
void conn_auth_fail(struct conn *c, struct bytes mechanism)
{
	c->auth_delay = true;
	c->auth_mech[0] = '\0';
	if (c->caps & CONN_CAP_AUTH_FAILURE_CLOSE) {
		/* the mechanism was one we offer, so it fits */
		size_t n = mechanism.len < sizeof(c->auth_mech) - 1 ? mechanism.len
		                                                    : sizeof(c->auth_mech) - 1;
		memcpy(c->auth_mech, mechanism.ptr, n);
		c->auth_mech[n] = '\0';
	}
	ev_timer_stop(c->b->loop, &c->timer);
	ev_timer_set(&c->timer, CONN_AUTH_FAIL_DELAY, 0.);
	ev_timer_start(c->b->loop, &c->timer);
}

void conn_auth_fail_answer(struct conn *c)
{
	c->auth_delay = false;
	if (c->auth_mech[0]) {
		conn_close_fmt(c, CODEC_ACCESS_REFUSED, CODEC_CONNECTION_START_OK,
		               "Login was refused using authentication mechanism %s. "
		               "For details see the broker logfile.", c->auth_mech);
	} else {
		/* without authentication_failure_close a client reads a close
		 * method here as a protocol error; RabbitMQ just hangs up */
		conn_finish(c);
	}
}

static void conn_on_tune_ok(struct conn *c, const struct codec_connection_tune_ok *m)
{
	const struct broker_config *cfg = &c->b->cfg;
	uint32_t fmax = m->frame_max ? m->frame_max : cfg->frame_max;
	uint16_t cmax = m->channel_max ? m->channel_max : cfg->channel_max;
	if (m->frame_max != 0 && m->frame_max < CODEC_FRAME_MIN_SIZE) {
		conn_close_fmt(c, CODEC_NOT_ALLOWED, CODEC_CONNECTION_TUNE_OK,
		               "frame_max=%u < %u min size", m->frame_max, CODEC_FRAME_MIN_SIZE);
		return;
	}
	if (cfg->frame_max && fmax > cfg->frame_max) {
		conn_close_fmt(c, CODEC_NOT_ALLOWED, CODEC_CONNECTION_TUNE_OK,
		               "frame_max=%u > %u max size", fmax, cfg->frame_max);
		return;
	}
	if (cfg->channel_max && cmax > cfg->channel_max) {
		conn_close_fmt(c, CODEC_NOT_ALLOWED, CODEC_CONNECTION_TUNE_OK,
		               "channel_max=%u > %u max", cmax, cfg->channel_max);
		return;
	}
	c->frame_max = fmax;
	c->channel_max = cmax;
	c->heartbeat = m->heartbeat;
	c->st = CONN_ST_OPEN_WAIT;
}

static void conn_arm_heartbeat(struct conn *c)
{
	ev_timer_stop(c->b->loop, &c->timer);
	if (c->heartbeat == 0)
		return;
	/* One repeating timer checks both directions (libev's "method 3"). */
	double iv = c->heartbeat / 2.0;
	ev_timer_set(&c->timer, iv, iv);
	ev_timer_start(c->b->loop, &c->timer);
}

/*
 * Open connections on vh, or of user.  One that is closing no longer
 * counts: it can do nothing more, and a client that closed one connection
 * and opens the next must not race the broker's reading of its EOF.  A walk
 * over all connections rather than counters kept in step with every close
 * path: it runs only at connection.open and only while a per-user or
 * per-vhost limit is set.
 */
static uint32_t conn_count_open(const struct broker *b, const struct vhost *vh, const char *user)
{
	uint32_t n = 0;
	for (const struct conn *o = b->conns; o; o = o->next) {
		if (o->st != CONN_ST_OPEN || !o->vhost)
			continue;
		if (vh ? o->vhost == vh : (user && o->user && strcmp(o->user, user) == 0))
			n++;
	}
	return n;
}

static void conn_on_open(struct conn *c, const struct codec_connection_open *m)
{
	struct vhost *vh = broker_vhost_find(c->b, (const char *)m->virtual_host.ptr,
	                                     m->virtual_host.len);
	if (!vh) {
		char name[128];
		size_t n = m->virtual_host.len < sizeof(name) - 1 ? m->virtual_host.len : sizeof(name) - 1;
		memcpy(name, m->virtual_host.ptr, n);
		name[n] = '\0';
		conn_close_fmt(c, CODEC_NOT_ALLOWED, CODEC_CONNECTION_OPEN, "vhost %s not found", name);
		return;
	}
	const struct broker_config *cfg = &c->b->cfg;
	if (cfg->max_connections_per_vhost &&
	    conn_count_open(c->b, vh, NULL) >= cfg->max_connections_per_vhost) {
		conn_close_fmt(c, CODEC_NOT_ALLOWED, CODEC_CONNECTION_OPEN,
		               "access to vhost '%s' refused for user '%s': "
		               "connection limit (%u) is reached",
		               vhost_name(vh), c->user, cfg->max_connections_per_vhost);
		return;
	}
	if (cfg->max_connections_per_user &&
	    conn_count_open(c->b, NULL, c->user) >= cfg->max_connections_per_user) {
		conn_close_fmt(c, CODEC_NOT_ALLOWED, CODEC_CONNECTION_OPEN,
		               "connection refused for user '%s': "
		               "user connection limit (%u) is reached",
		               c->user, cfg->max_connections_per_user);
		return;
	}
	if (!users_vhost_access(c->b->users, c->user, vhost_name(vh))) {
		conn_close_fmt(c, CODEC_NOT_ALLOWED, CODEC_CONNECTION_OPEN,
		               "access to vhost '%s' refused for user '%s'", vhost_name(vh), c->user);
		return;
	}
	c->vhost = vh;
	struct codec_connection_open_ok ok = { 0 };
	conn_send_method(c, 0, CODEC_CONNECTION_OPEN_OK, &ok);
	c->st = CONN_ST_OPEN;
	conn_arm_heartbeat(c);
	log_info(&c->b->log, "connection %s%s%s: user '%s' opened vhost '%s'", c->peer,
	         c->name ? " " : "", c->name ? c->name : "", c->user, vhost_name(vh));
	if (c->b->memory_alarm || c->b->disk_alarm)
		conn_alarm_changed(c, true);
}

/* Method frames on channel 0 (connection class). */
void conn_on_method0(struct conn *c, uint32_t id, const union codec_method_args *a)
{
	switch (c->st) {
	case CONN_ST_START_OK:
		if (id == CODEC_CONNECTION_START_OK)
			return conn_on_start_ok(c, &a->connection_start_ok);
		break;
	case CONN_ST_TUNE_OK:
		if (id == CODEC_CONNECTION_TUNE_OK)
			return conn_on_tune_ok(c, &a->connection_tune_ok);
		if (id == CODEC_CONNECTION_SECURE_OK)
			break;
		break;
	case CONN_ST_OPEN_WAIT:
		if (id == CODEC_CONNECTION_OPEN)
			return conn_on_open(c, &a->connection_open);
		break;
	case CONN_ST_OPEN:
		if (id == CODEC_CONNECTION_CLOSE) {
			conn_close_ok(c);
			return;
		}
		if (id == CODEC_CONNECTION_UPDATE_SECRET) {
			/* no expiring credentials yet: accept the new secret */
			struct codec_connection_update_secret_ok ok = { 0 };
			conn_send_method(c, 0, CODEC_CONNECTION_UPDATE_SECRET_OK, &ok);
			return;
		}
		if (id == CODEC_CONNECTION_BLOCKED || id == CODEC_CONNECTION_UNBLOCKED)
			return; /* clients may send these to us (RabbitMQ ignores them) */
		break;
	default:
		break;
	}
	if (id == CODEC_CONNECTION_CLOSE) {
		conn_close_ok(c);
		return;
	}
	conn_close_fmt(c, CODEC_COMMAND_INVALID, id, "unexpected method %s on channel 0",
	               codec_method_name(id));
}

