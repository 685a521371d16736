/*
 * Codec result codes.  Every decoder of untrusted bytes returns one of these
 * instead of aborting; the connection layer maps the negative ones to the
 * AMQP reply code it closes the connection (or channel) with.
 */
#ifndef WARREN_CODEC_ERRORS_H
#define WARREN_CODEC_ERRORS_H

enum codec_status {
	CODEC_OK = 0,
	CODEC_AGAIN = 1,             /* not enough bytes yet: read more */
	CODEC_E_FRAME_END = -1,      /* frame-end octet is not 0xCE        -> 501 */
	CODEC_E_FRAME_TYPE = -2,     /* unknown frame type                 -> 501 */
	CODEC_E_FRAME_SIZE = -3,     /* frame larger than negotiated max   -> 501 */
	CODEC_E_TRUNCATED = -4,      /* payload shorter than its fields    -> 502 */
	CODEC_E_TRAILING = -5,       /* bytes left over after the fields   -> 502 */
	CODEC_E_FIELD_TYPE = -6,     /* unknown field-table value type     -> 502 */
	CODEC_E_TABLE_DEPTH = -7,    /* field tables nested too deeply     -> 502 */
	CODEC_E_UNKNOWN_CLASS = -8,  /* class id not in the spec           -> 540 */
	CODEC_E_UNKNOWN_METHOD = -9, /* method id not in its class         -> 540 */
	CODEC_E_BAD_PROPS = -10,     /* property flags: continuation/unknown bit -> 502 */
	CODEC_E_BAD_FRAME = -11,     /* malformed frame (e.g. short method frame) -> 501 */
	CODEC_E_NOSPACE = -12,       /* encoder: output buffer too small (a bug, never peer input) */
};

/* The AMQP reply code a connection is closed with for this status. */
int codec_status_reply_code(int status);
/* A short human text, used after the reply-code name in close texts. */
const char *codec_status_text(int status);

#endif
