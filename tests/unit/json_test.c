/*
 * util/json: the writer's escaping and number forms, the parser on valid
 * documents, every kind of malformed input, and the depth and size bounds.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "util/json.h"

static char *written(struct json_out *w)
{
	return json_out_take(w, NULL);
}

START_TEST(writer_escapes_strings)
{
	struct json_out w;
	json_out_init(&w);
	json_str_n(&w, "q\"b\\s\n\t\r\b\f\x01\x1f/\x7f", 14);
	char *s = written(&w);
	ck_assert_str_eq(s, "\"q\\\"b\\\\s\\n\\t\\r\\b\\f\\u0001\\u001f/\x7f\"");
	free(s);
	/* well-formed UTF-8 passes, bad bytes become U+FFFD */
	json_str(&w, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	s = written(&w);
	ck_assert_str_eq(s, "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
	free(s);
	json_str_n(&w, "a\xff" "b\xc0\x80" "c\xed\xa0\x80", 9);
	s = written(&w);
	ck_assert_str_eq(s, "\"a\\ufffdb\\ufffd\\ufffdc\\ufffd\\ufffd\\ufffd\"");
	free(s);
	/* NUL inside a name */
	json_str_n(&w, "a\0b", 3);
	s = written(&w);
	ck_assert_str_eq(s, "\"a\\u0000b\"");
	free(s);
}
END_TEST

START_TEST(writer_structure_and_numbers)
{
	struct json_out w;
	json_out_init(&w);
	json_obj_begin(&w);
	json_key(&w, "a");
	json_arr_begin(&w);
	json_int(&w, INT64_MIN);
	json_uint(&w, UINT64_MAX);
	json_double(&w, 1.5);
	json_double(&w, 2.0);
	json_double(&w, 0.1);
	json_double(&w, 1e300);
	json_double(&w, NAN);
	json_bool(&w, true);
	json_null(&w);
	json_obj_begin(&w);
	json_obj_end(&w);
	json_arr_begin(&w);
	json_arr_end(&w);
	json_arr_end(&w);
	json_key_n(&w, "k\"", 2);
	json_raw(&w, "{\"x\":1}", 7);
	json_obj_end(&w);
	size_t len;
	char *s = json_out_take(&w, &len);
	ck_assert_str_eq(s, "{\"a\":[-9223372036854775808,18446744073709551615,1.5,2.0,0.1,"
	                    "1e+300,null,true,null,{},[]],\"k\\\"\":{\"x\":1}}");
	ck_assert_uint_eq(len, strlen(s));
	/* and it reads back */
	struct json_doc doc;
	char err[128];
	ck_assert_int_eq(json_parse(&doc, s, len, err, sizeof(err)), 0);
	const struct json_value *a = json_get(doc.root, "a");
	ck_assert_int_eq(a->u.arr.n, 11);
	ck_assert(a->u.arr.items[0].u.num.is_int);
	ck_assert(a->u.arr.items[0].u.num.i == INT64_MIN);
	ck_assert(!a->u.arr.items[1].u.num.is_int); /* beyond int64: a double */
	ck_assert(!a->u.arr.items[3].u.num.is_int); /* 2.0 stays a float */
	ck_assert(a->u.arr.items[4].u.num.d == 0.1);
	ck_assert_ptr_nonnull(json_get(doc.root, "k\""));
	json_doc_free(&doc);
	free(s);
	/* an empty writer still gives a string */
	json_out_init(&w);
	ck_assert_str_eq(json_out_str(&w), "");
	json_out_free(&w);
}
END_TEST

START_TEST(parser_valid)
{
	static const char text[] =
		" \t\r\n{\"s\":\"caf\\u00e9 \\ud83d\\ude00 \\\"\\\\\\/\\b\\f\\n\\r\\t\",\"n\":[0,-0,12,"
		"-3.25e2,1E-2,9223372036854775807,-9223372036854775808,9223372036854775808],"
		"\"t\":true,\"f\":false,\"z\":null,\"o\":{\"dup\":1,\"dup\":2},\"e\":[],"
		"\"nul\":\"a\\u0000b\",\"raw\":\"\xc3\xa9\"} \n";
	struct json_doc doc;
	char err[128];
	ck_assert_int_eq(json_parse(&doc, text, sizeof(text) - 1, err, sizeof(err)), 0);
	const struct json_value *r = doc.root;
	ck_assert_int_eq(r->type, JSON_OBJECT);
	ck_assert_str_eq(json_get_str(r, "s"), "caf\xc3\xa9 \xf0\x9f\x98\x80 \"\\/\b\f\n\r\t");
	const struct json_value *n = json_get(r, "n");
	ck_assert_int_eq(n->type, JSON_ARRAY);
	ck_assert_uint_eq(n->u.arr.n, 8);
	ck_assert(n->u.arr.items[0].u.num.is_int && n->u.arr.items[0].u.num.i == 0);
	ck_assert(n->u.arr.items[2].u.num.i == 12);
	ck_assert(!n->u.arr.items[3].u.num.is_int && n->u.arr.items[3].u.num.d == -325.0);
	ck_assert(n->u.arr.items[4].u.num.d == 0.01);
	ck_assert(n->u.arr.items[5].u.num.is_int && n->u.arr.items[5].u.num.i == INT64_MAX);
	ck_assert(n->u.arr.items[6].u.num.is_int && n->u.arr.items[6].u.num.i == INT64_MIN);
	ck_assert(!n->u.arr.items[7].u.num.is_int);
	ck_assert(json_get(r, "t")->u.b && !json_get(r, "f")->u.b);
	ck_assert_int_eq(json_get(r, "z")->type, JSON_NULL);
	/* repeated keys: the last one wins */
	ck_assert_int_eq(json_get(json_get(r, "o"), "dup")->u.num.i, 2);
	ck_assert_uint_eq(json_get(r, "e")->u.arr.n, 0);
	const struct json_value *nul = json_get(r, "nul");
	ck_assert_uint_eq(nul->u.str.len, 3);
	ck_assert(memcmp(nul->u.str.ptr, "a\0b", 3) == 0);
	ck_assert_str_eq(json_get_str(r, "raw"), "\xc3\xa9");
	ck_assert_ptr_null(json_get(r, "missing"));
	ck_assert_ptr_null(json_get_str(r, "t"));
	ck_assert_ptr_null(json_get(n, "x")); /* not an object */
	json_doc_free(&doc);
	/* scalars at top level */
	ck_assert_int_eq(json_parse(&doc, "\"x\"", 3, err, sizeof(err)), 0);
	ck_assert_int_eq(doc.root->type, JSON_STRING);
	json_doc_free(&doc);
	ck_assert_int_eq(json_parse(&doc, "-1", 2, err, sizeof(err)), 0);
	ck_assert(doc.root->u.num.i == -1);
	json_doc_free(&doc);
}
END_TEST

static const struct {
	const char *text;
	size_t len; /* 0: strlen */
} bad_docs[] = {
	{ "", 0 },
	{ " \n ", 0 },
	{ "{", 0 },
	{ "}", 0 },
	{ "[1,]", 0 },
	{ "[,1]", 0 },
	{ "{\"a\":1,}", 0 },
	{ "{a:1}", 0 },
	{ "{\"a\" 1}", 0 },
	{ "{\"a\":}", 0 },
	{ "{1:2}", 0 },
	{ "'x'", 0 },
	{ "01", 0 },
	{ "-01", 0 },
	{ "1.", 0 },
	{ ".5", 0 },
	{ "-", 0 },
	{ "+1", 0 },
	{ "1e", 0 },
	{ "1e+", 0 },
	{ "0x10", 0 },
	{ "NaN", 0 },
	{ "Infinity", 0 },
	{ "1e999", 0 },
	{ "tru", 0 },
	{ "nulll", 0 },
	{ "True", 0 },
	{ "[1 2]", 0 },
	{ "1 2", 0 },
	{ "[]]", 0 },
	{ "/*c*/1", 0 },
	{ "[1]//", 0 },
	{ "\"abc", 0 },
	{ "\"abc\\\"", 0 },
	{ "\"\\x\"", 0 },
	{ "\"\\u12\"", 0 },
	{ "\"\\u12G4\"", 0 },
	{ "\"\\ud800\"", 0 },
	{ "\"\\ud800\\u0041\"", 0 },
	{ "\"\\udc00\"", 0 },
	{ "\"a\x01\"", 0 },
	{ "\"a\tb\"", 0 },
	{ "\"\xff\"", 0 },
	{ "\"\xc0\x80\"", 0 },
	{ "\"\xed\xa0\x80\"", 0 },
	{ "\"\xf4\x90\x80\x80\"", 0 },
	{ "\"\xe2\x82\"", 0 },
	{ "\"a\"\0", 4 },
	{ "\0", 1 },
	{ "[\"a\",\0]", 7 },
	{ "\xef\xbb\xbf{}", 0 }, /* a byte-order mark is not JSON */
};

START_TEST(parser_rejects_malformed)
{
	const char *text = bad_docs[_i].text;
	size_t len = bad_docs[_i].len ? bad_docs[_i].len : strlen(text);
	struct json_doc doc;
	char err[160];
	err[0] = '\0';
	int rc = json_parse(&doc, text, len, err, sizeof(err));
	ck_assert_msg(rc == -1, "accepted bad document #%d", _i);
	ck_assert_ptr_null(doc.root);
	ck_assert_msg(strncmp(err, "line ", 5) == 0, "error text '%s'", err);
	json_doc_free(&doc);
}
END_TEST

START_TEST(parser_error_location)
{
	static const char text[] = "{\n  \"a\": tru\n}";
	struct json_doc doc;
	char err[160];
	ck_assert_int_eq(json_parse(&doc, text, strlen(text), err, sizeof(err)), -1);
	ck_assert_str_eq(err, "line 2, column 8: unexpected 't', expected a JSON value");
	json_doc_free(&doc);
	ck_assert_int_eq(json_parse(&doc, "[1,2", 4, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "line 1, column 5: unexpected end of input, expected ',' or ']'");
	json_doc_free(&doc);
	/* a tiny error buffer is still terminated */
	char small[8];
	ck_assert_int_eq(json_parse(&doc, "x", 1, small, sizeof(small)), -1);
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
	json_doc_free(&doc);
}
END_TEST

/* depth copies of open, then mid, then depth copies of close */
static char *nested(const char *open, const char *mid, const char *close, int depth,
                    size_t *len)
{
	size_t o = strlen(open), m = strlen(mid), c = strlen(close);
	char *s = malloc((size_t)depth * (o + c) + m + 1);
	size_t n = 0;
	for (int i = 0; i < depth; i++, n += o)
		memcpy(s + n, open, o);
	memcpy(s + n, mid, m);
	n += m;
	for (int i = 0; i < depth; i++, n += c)
		memcpy(s + n, close, c);
	s[n] = '\0';
	*len = n;
	return s;
}

START_TEST(parser_depth_bound)
{
	struct json_doc doc;
	char err[160];
	size_t len;
	char *s = nested("[", "", "]", JSON_MAX_DEPTH, &len);
	ck_assert_int_eq(json_parse(&doc, s, len, err, sizeof(err)), 0);
	json_doc_free(&doc);
	free(s);
	s = nested("[", "", "]", JSON_MAX_DEPTH + 1, &len);
	ck_assert_int_eq(json_parse(&doc, s, len, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "nesting deeper than 64"));
	json_doc_free(&doc);
	free(s);
	s = nested("{\"k\":", "1", "}", JSON_MAX_DEPTH, &len);
	ck_assert_int_eq(json_parse(&doc, s, len, err, sizeof(err)), 0);
	json_doc_free(&doc);
	free(s);
	s = nested("{\"k\":", "1", "}", JSON_MAX_DEPTH + 1, &len);
	ck_assert_int_eq(json_parse(&doc, s, len, err, sizeof(err)), -1);
	json_doc_free(&doc);
	free(s);
	/* far deeper than any stack would survive: refused at level 65 */
	s = nested("[", "", "]", 1000000, &len);
	ck_assert_int_eq(json_parse(&doc, s, len, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "column 65:"));
	json_doc_free(&doc);
	free(s);
}
END_TEST

START_TEST(parser_size_bounds)
{
	struct json_doc doc;
	char err[160];
	static const char small[] = "[]";
	/* the length is checked before a byte is read */
	ck_assert_int_eq(json_parse(&doc, small, JSON_MAX_INPUT + 1, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "larger than"));
	json_doc_free(&doc);
	/* overlong number tokens */
	char num[600];
	memset(num, '1', sizeof(num) - 1);
	num[sizeof(num) - 1] = '\0';
	ck_assert_int_eq(json_parse(&doc, num, strlen(num), err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "number longer"));
	json_doc_free(&doc);
	/* a large flat document is fine */
	size_t n = 200000;
	char *big = malloc(n * 4 + 3);
	size_t k = 0;
	big[k++] = '[';
	for (size_t i = 0; i < n; i++) {
		if (i)
			big[k++] = ',';
		big[k++] = '"';
		big[k++] = 'x';
		big[k++] = '"';
	}
	big[k++] = ']';
	ck_assert_int_eq(json_parse(&doc, big, k, err, sizeof(err)), 0);
	ck_assert_uint_eq(doc.root->u.arr.n, n);
	ck_assert_str_eq(doc.root->u.arr.items[n - 1].u.str.ptr, "x");
	json_doc_free(&doc);
	free(big);
}
END_TEST

START_TEST(utf8_validation)
{
	ck_assert(json_utf8_valid("", 0));
	ck_assert(json_utf8_valid("plain", 5));
	ck_assert(json_utf8_valid("\xf4\x8f\xbf\xbf", 4)); /* U+10FFFF */
	ck_assert(!json_utf8_valid("\xf4\x90\x80\x80", 4));
	ck_assert(!json_utf8_valid("\xe0\x80\xaf", 3));
	ck_assert(!json_utf8_valid("\xed\xbf\xbf", 3));
	ck_assert(!json_utf8_valid("\x80", 1));
	ck_assert(!json_utf8_valid("\xc3", 1));
	ck_assert_str_eq(json_type_name(JSON_OBJECT), "object");
}
END_TEST

Suite *unit_suite(void)
{
	Suite *s = suite_create("json");
	TCase *tc = tcase_create("writer");
	tcase_add_test(tc, writer_escapes_strings);
	tcase_add_test(tc, writer_structure_and_numbers);
	tcase_add_test(tc, utf8_validation);
	suite_add_tcase(s, tc);
	tc = tcase_create("parser");
	tcase_add_test(tc, parser_valid);
	tcase_add_loop_test(tc, parser_rejects_malformed, 0,
	                    (int)(sizeof(bad_docs) / sizeof(bad_docs[0])));
	tcase_add_test(tc, parser_error_location);
	tcase_add_test(tc, parser_depth_bound);
	tcase_add_test(tc, parser_size_bounds);
	suite_add_tcase(s, tc);
	return s;
}
