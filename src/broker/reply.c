/* Formatting of AMQP error replies in RabbitMQ's "CODE_NAME - text" form. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "broker/reply.h"
#include "codec/gen_methods.h"

int reply_set(struct reply *r, uint16_t code, const char *fmt, ...)
{
	const char *name = codec_reply_name(code);
	int n = snprintf(r->text, sizeof(r->text), "%s - ", name ? name : "ERROR");
	va_list ap;
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(r->text))
		vsnprintf(r->text + n, sizeof(r->text) - (size_t)n, fmt, ap);
	va_end(ap);
	r->code = code;
	return -1;
}

const char *reply_name(char *buf, size_t cap, const uint8_t *p, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 5 < cap; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f) {
			buf[o++] = (char)p[i];
		} else {
			/* UTF-8 names are legal; keep their bytes, escape only control bytes */
			if (p[i] >= 0x80) {
				buf[o++] = (char)p[i];
			} else {
				o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", p[i]);
			}
		}
	}
	if (cap)
		buf[o < cap ? o : cap - 1] = '\0';
	return buf;
}
