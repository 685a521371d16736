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
	FILE *out;       /* stderr or an opened file; unused with syslog */
	char *path;      /* file target, reopened by log_reopen() */
	int syslog;      /* nonzero: lines go to syslog(3) */
};

void log_init(struct log *lg);
/* Target "stderr", "syslog" or a file path (appended to).  -1 with errno
 * set when the file cannot be opened. */
int log_open(struct log *lg, const char *target);
/* Reopen a file target (after logrotate moved it); no-op otherwise. */
int log_reopen(struct log *lg);
void log_close(struct log *lg);
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
