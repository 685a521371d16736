/*
 * Messages: one allocation, properties decoded once (priority, persistence,
 * per-message TTL), body assembly bounds, reference counting and
 * message_with_props copies.  LeakSanitizer checks every reference is
 * dropped.
 */
#include <check.h>
#include <string.h>

#include "broker/message.h"
#include "codec/gen_methods.h"
#include "runner.h"

static struct bytes encode(struct codec_basic_props *p, uint8_t *buf, size_t cap)
{
	struct wr w = wr_init(buf, cap);
	struct bytes out;

	ck_assert_int_eq(codec_encode_basic_props(&w, p), CODEC_OK);
	out.ptr = buf;
	out.len = cap - w.left;
	return out;
}

START_TEST(test_new_layout_and_props)
{
	struct codec_basic_props p;
	uint8_t buf[256];

	memset(&p, 0, sizeof(p));
	p.flags = CODEC_BASIC_PRIORITY_FLAG | CODEC_BASIC_DELIVERY_MODE_FLAG |
	          CODEC_BASIC_EXPIRATION_FLAG | CODEC_BASIC_CONTENT_TYPE_FLAG;
	p.priority = 7;
	p.delivery_mode = 2;
	p.expiration = bytes_of("1500");
	p.content_type = bytes_of("text/plain");
	struct bytes props = encode(&p, buf, sizeof(buf));
	struct message *m = message_new(bytes_of("amq.direct"), bytes_of("a.key"), props, 11);

	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(m->refs, 1);
	ck_assert_uint_eq(m->priority, 7);
	ck_assert(m->persistent);
	ck_assert_int_eq(m->ttl_ms, 1500);
	ck_assert(bytes_eq_str(m->exchange, "amq.direct"));
	ck_assert(bytes_eq_str(m->routing_key, "a.key"));
	ck_assert(bytes_eq(m->props, props));
	ck_assert(m->props.ptr != props.ptr); /* copied into the message */
	/* everything lives in the one allocation, body last */
	ck_assert(m->exchange.ptr >= m->data && m->body > m->props.ptr);
	ck_assert_uint_eq(m->body_len, 11);
	ck_assert_uint_eq(message_body_size(m), 11);
	ck_assert(!message_complete(m));
	ck_assert(message_append_body(m, bytes_of("hello ")));
	ck_assert(!message_append_body(m, bytes_of("world!"))); /* one too many */
	ck_assert(message_append_body(m, bytes_of("world")));
	ck_assert(message_complete(m));
	ck_assert(!message_append_body(m, bytes_of("x")));
	ck_assert(message_append_body(m, bytes_of("")));
	ck_assert_int_eq(memcmp(m->body, "hello world", 11), 0);
	message_unref(m);
}
END_TEST

START_TEST(test_defaults_and_empty)
{
	struct codec_basic_props p;
	uint8_t buf[64];

	memset(&p, 0, sizeof(p));
	p.flags = CODEC_BASIC_DELIVERY_MODE_FLAG;
	p.delivery_mode = 1;
	struct message *m = message_new(bytes_of(""), bytes_of(""), encode(&p, buf, sizeof(buf)), 0);
	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(m->priority, 0);
	ck_assert(!m->persistent);
	ck_assert_int_eq(m->ttl_ms, -1);
	ck_assert(message_complete(m));
	ck_assert_uint_eq(m->exchange.len, 0);
	message_unref(m);
	message_unref(NULL);
}
END_TEST

START_TEST(test_malformed_props)
{
	/* unknown flag bit, truncated list, trailing bytes, bad expiration */
	const uint8_t unknown[] = { 0x00, 0x02 };
	const uint8_t truncated[] = { 0x80, 0x00, 0x05, 't', 'e' };
	const uint8_t trailing[] = { 0x00, 0x00, 0xff };
	struct bytes b1 = { unknown, sizeof(unknown) }, b2 = { truncated, sizeof(truncated) };
	struct bytes b3 = { trailing, sizeof(trailing) };
	struct codec_basic_props p;
	uint8_t buf[64];

	ck_assert_ptr_null(message_new(bytes_of(""), bytes_of("k"), b1, 1));
	ck_assert_ptr_null(message_new(bytes_of(""), bytes_of("k"), b2, 1));
	ck_assert_ptr_null(message_new(bytes_of(""), bytes_of("k"), b3, 1));
	memset(&p, 0, sizeof(p));
	p.flags = CODEC_BASIC_EXPIRATION_FLAG;
	p.expiration = bytes_of("soon");
	ck_assert_ptr_null(message_new(bytes_of(""), bytes_of("k"), encode(&p, buf, sizeof(buf)), 1));
	/* a body size that cannot be allocated is refused, not wrapped */
	memset(&p, 0, sizeof(p));
	ck_assert_ptr_null(message_new(bytes_of("e"), bytes_of("k"), encode(&p, buf, sizeof(buf)),
	                               UINT64_MAX - 8));
}
END_TEST

START_TEST(test_refcount)
{
	struct codec_basic_props p;
	uint8_t buf[64];

	memset(&p, 0, sizeof(p));
	struct message *m = message_new(bytes_of("x"), bytes_of("k"), encode(&p, buf, sizeof(buf)), 1);
	ck_assert_ptr_eq(message_ref(m), m);
	ck_assert_ptr_eq(message_ref(m), m);
	ck_assert_uint_eq(m->refs, 3);
	message_unref(m);
	message_unref(m);
	ck_assert_uint_eq(m->refs, 1);
	message_unref(m);
}
END_TEST

START_TEST(test_with_props)
{
	struct codec_basic_props p;
	uint8_t b1[64], b2[64];

	memset(&p, 0, sizeof(p));
	p.flags = CODEC_BASIC_EXPIRATION_FLAG;
	p.expiration = bytes_of("100");
	struct message *m = message_new(bytes_of("src"), bytes_of("k1"), encode(&p, b1, sizeof(b1)), 3);
	ck_assert(message_append_body(m, bytes_of("abc")));
	m->id = 42;

	memset(&p, 0, sizeof(p));
	p.flags = CODEC_BASIC_PRIORITY_FLAG;
	p.priority = 4;
	struct bytes props = encode(&p, b2, sizeof(b2));
	struct message *n = message_with_props(m, props, bytes_of("dlx"), bytes_of("k2"));
	ck_assert_ptr_nonnull(n);
	ck_assert_uint_eq(n->refs, 1);
	ck_assert_uint_eq(n->id, 0);
	ck_assert(bytes_eq_str(n->exchange, "dlx"));
	ck_assert(bytes_eq_str(n->routing_key, "k2"));
	ck_assert(bytes_eq(n->props, props));
	ck_assert_uint_eq(n->priority, 4);
	ck_assert_int_eq(n->ttl_ms, -1);
	ck_assert(message_complete(n));
	ck_assert(n->body != m->body);
	ck_assert_int_eq(memcmp(n->body, "abc", 3), 0);
	/* the original is untouched */
	ck_assert_int_eq(m->ttl_ms, 100);
	ck_assert_uint_eq(m->refs, 1);
	const uint8_t bad[] = { 0x00, 0x01 };
	struct bytes badp = { bad, sizeof(bad) };
	ck_assert_ptr_null(message_with_props(m, badp, bytes_of(""), bytes_of("")));
	message_unref(n);
	message_unref(m);
}
END_TEST

Suite *unit_suite(void)
{
	Suite *s = suite_create("message");
	TCase *tc = tcase_create("message");

	tcase_add_test(tc, test_new_layout_and_props);
	tcase_add_test(tc, test_defaults_and_empty);
	tcase_add_test(tc, test_malformed_props);
	tcase_add_test(tc, test_refcount);
	tcase_add_test(tc, test_with_props);
	suite_add_tcase(s, tc);
	return s;
}
