/*
 * Entity-name helpers: CR/LF stripping, the reserved "amq." prefix, and
 * server-generated queue names (see names.h for the rules and why they are
 * RabbitMQ's rather than the spec's).
 */
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "broker/names.h"
#include "broker/reply.h"

struct bytes names_strip(struct names_buf *buf, struct bytes in)
{
	size_t o = 0;
	for (size_t i = 0; i < in.len && o < NAMES_MAX; i++) {
		if (in.ptr[i] != '\r' && in.ptr[i] != '\n')
			buf->b[o++] = in.ptr[i];
	}
	buf->b[o] = 0;
	buf->name.ptr = buf->b;
	buf->name.len = o;
	return buf->name;
}

bool names_reserved(struct bytes name)
{
	return name.len >= 4 && memcmp(name.ptr, "amq.", 4) == 0;
}

void names_generate(char out[NAMES_GEN_LEN + 1])
{
	static const char b64url[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint8_t r[18] = { 0 }; /* 16 random bytes, padded to a multiple of 3 */
	if (getrandom(r, 16, 0) != 16) {
		/* Uniqueness, not secrecy, is what matters if entropy is missing. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		memcpy(r, &ts, sizeof(ts) < 16 ? sizeof(ts) : 16);
	}
	memcpy(out, "amq.gen-", 8);
	size_t o = 8;
	for (size_t i = 0; i < 18; i += 3) {
		uint32_t v = (uint32_t)r[i] << 16 | (uint32_t)r[i + 1] << 8 | r[i + 2];
		for (int k = 3; k >= 0 && o < NAMES_GEN_LEN; k--)
			out[o++] = b64url[(v >> (6 * k)) & 63];
	}
	out[NAMES_GEN_LEN] = 0;
}

const char *names_render(char buf[NAMES_RENDER_MAX], struct bytes name)
{
	return reply_name(buf, NAMES_RENDER_MAX, name.ptr, name.len);
}
