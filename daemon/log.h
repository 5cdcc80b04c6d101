/*
 * log: OpenBSD-style logging to stderr (foreground) or syslog.
 *
 * log_warn appends the errno text; log_warnx does not.  fatal/fatalx log and
 * exit(1); use them only before the event loop runs or on a broken
 * invariant.  The logger is the daemon's one piece of process-wide state.
 */
#ifndef SOCKSGATE_LOG_H
#define SOCKSGATE_LOG_H

#include <stdarg.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_init(int to_stderr, enum log_level level, const char *ident);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error|warn|info|debug"; returns -1 if unknown. */
int log_level_parse(const char *s);

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * Lines about abuse (summaries of refused connections, failed passwords,
 * denied datagrams) share one budget for the whole daemon, so that no
 * attack fills a router's log: bursts of LOG_LIMITED_BURST lines, then
 * LOG_LIMITED_RATE per second.  Lines beyond it are dropped and counted;
 * the next line that passes says how many were dropped.
 */
#define LOG_LIMITED_BURST 50
#define LOG_LIMITED_RATE 5.0
void log_limited(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Lines log_limited() dropped since the start. */
unsigned long long log_limited_dropped(void);
void fatal(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

#endif
