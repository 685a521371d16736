/*
 * Mapping from codec result codes to the AMQP reply codes a connection is
 * closed with, and the short texts that follow the reply-code name in the
 * close text.  The numbers are written out rather than taken from the
 * generated constants so the hand-written core does not depend on the
 * generator's output (the codes are fixed by the spec: 501 frame-error,
 * 502 syntax-error, 540 not-implemented, 541 internal-error).
 */
#include "codec/errors.h"

int codec_status_reply_code(int status)
{
	switch (status) {
	case CODEC_E_FRAME_END:
	case CODEC_E_FRAME_TYPE:
	case CODEC_E_FRAME_SIZE:
	case CODEC_E_BAD_FRAME:
		return 501;
	case CODEC_E_TRUNCATED:
	case CODEC_E_TRAILING:
	case CODEC_E_FIELD_TYPE:
	case CODEC_E_TABLE_DEPTH:
	case CODEC_E_BAD_PROPS:
		return 502;
	case CODEC_E_UNKNOWN_CLASS:
	case CODEC_E_UNKNOWN_METHOD:
		return 540;
	default:
		/* CODEC_OK/AGAIN are not errors and NOSPACE is our own bug: a
		 * caller that closes for them has hit an internal error. */
		return 541;
	}
}

const char *codec_status_text(int status)
{
	switch (status) {
	case CODEC_OK:
		return "ok";
	case CODEC_AGAIN:
		return "incomplete frame";
	case CODEC_E_FRAME_END:
		return "bad frame end octet";
	case CODEC_E_FRAME_TYPE:
		return "unknown frame type";
	case CODEC_E_FRAME_SIZE:
		return "frame too large";
	case CODEC_E_TRUNCATED:
		return "frame payload truncated";
	case CODEC_E_TRAILING:
		return "unexpected bytes after the arguments";
	case CODEC_E_FIELD_TYPE:
		return "unknown field table value type";
	case CODEC_E_TABLE_DEPTH:
		return "field tables nested too deeply";
	case CODEC_E_UNKNOWN_CLASS:
		return "unknown class";
	case CODEC_E_UNKNOWN_METHOD:
		return "unknown method";
	case CODEC_E_BAD_PROPS:
		return "bad content property flags";
	case CODEC_E_BAD_FRAME:
		return "malformed frame";
	case CODEC_E_NOSPACE:
		return "encoder buffer too small";
	default:
		return "unknown codec error";
	}
}
