/* The syslog target of the logger (see log_syslog.h for why it is apart). */
#include <syslog.h>

#include "util/log_syslog.h"

void log_syslog_open(const char *ident)
{
	openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_syslog_write(int level, const char *line)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	syslog(prio[level & 3], "%s", line);
}

void log_syslog_close(void)
{
	closelog();
}
