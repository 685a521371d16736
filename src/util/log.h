/*
 * Logging: one line per event on stderr (or a file), with a level filter.
 * The logger lives in struct broker; callers pass it explicitly so there is
 * no global logger state.
 */
#ifndef WARREN_UTIL_LOG_H
#define WARREN_UTIL_LOG_H

#include <stdio.h>

enum log_level { LOG_ERROR = 0, LOG_WARNING = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

struct log {
	enum log_level level;
	FILE *out;
};

void log_init(struct log *lg);
/* "error", "warning", "info", "debug" -> level; -1 if unknown. */
int log_level_parse(const char *s);
const char *log_level_name(enum log_level l);
void log_msg(const struct log *lg, enum log_level l, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(lg, ...) log_msg((lg), LOG_ERROR, __VA_ARGS__)
#define log_warning(lg, ...) log_msg((lg), LOG_WARNING, __VA_ARGS__)
#define log_info(lg, ...) log_msg((lg), LOG_INFO, __VA_ARGS__)
#define log_debug(lg, ...)                                    \
	do {                                                  \
		if ((lg)->level >= LOG_DEBUG)                 \
			log_msg((lg), LOG_DEBUG, __VA_ARGS__); \
	} while (0)

#endif
