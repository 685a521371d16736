/* Timestamped, levelled log lines. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "util/log.h"
#include "util/log_syslog.h"

static const char *const level_names[] = { "error", "warning", "info", "debug" };

void log_init(struct log *lg)
{
	lg->level = LOG_INFO;
	lg->out = stderr;
	lg->path = NULL;
	lg->syslog = 0;
}

int log_open(struct log *lg, const char *target)
{
	if (strcmp(target, "stderr") == 0)
		return 0;
	if (strcmp(target, "syslog") == 0) {
		log_syslog_open("warrend");
		lg->syslog = 1;
		return 0;
	}
	FILE *f = fopen(target, "a");
	if (!f)
		return -1;
	lg->out = f;
	lg->path = strdup(target);
	return 0;
}

int log_reopen(struct log *lg)
{
	if (!lg->path)
		return 0;
	FILE *f = fopen(lg->path, "a");
	if (!f)
		return -1; /* keep writing to the old file rather than nowhere */
	fclose(lg->out);
	lg->out = f;
	return 0;
}

void log_close(struct log *lg)
{
	if (lg->path) {
		fclose(lg->out);
		free(lg->path);
		lg->path = NULL;
		lg->out = stderr;
	}
	if (lg->syslog)
		log_syslog_close();
	lg->syslog = 0;
}

int log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	if (strcmp(s, "warn") == 0)
		return LOG_WARNING;
	return -1;
}

const char *log_level_name(enum log_level l)
{
	return (unsigned)l < 4 ? level_names[l] : "?";
}

void log_msg(const struct log *lg, enum log_level l, const char *fmt, ...)
{
	if (l > lg->level)
		return;
	struct timeval tv;
	struct tm tm;
	char ts[32];
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
	/* One fprintf per line keeps lines whole when stderr is shared. */
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (lg->syslog) {
		log_syslog_write((int)l, line);
		return;
	}
	fprintf(lg->out, "%s.%03ldZ [%s] %s\n", ts, (long)(tv.tv_usec / 1000),
	        level_names[l], line);
	fflush(lg->out);
}
