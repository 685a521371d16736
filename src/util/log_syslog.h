/* syslog(3) behind a wall: <syslog.h> defines LOG_INFO and friends as
 * macros, which would clash with enum log_level, so only this file sees it. */
#ifndef WARREN_UTIL_LOG_SYSLOG_H
#define WARREN_UTIL_LOG_SYSLOG_H

void log_syslog_open(const char *ident);
/* level: 0 error, 1 warning, 2 info, 3 debug (enum log_level's values). */
void log_syslog_write(int level, const char *line);
void log_syslog_close(void);

#endif
