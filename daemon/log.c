/*
 * log: see log.h.  Lines go to stderr with a timestamp when in the
 * foreground, otherwise to syslog(3) with the matching priority.
 */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

static int log_stderr = 1;
static enum log_level log_level = LOG_LVL_INFO;
/* log_limited()'s budget (part of the logger's process-wide state). */
static double lim_tokens = LOG_LIMITED_BURST, lim_at;
static unsigned long long lim_dropped, lim_dropped_told;

void log_init(int to_stderr, enum log_level level, const char *ident)
{
	log_stderr = to_stderr;
	log_level = level;
	if (!to_stderr)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level log_get_level(void)
{
	return log_level;
}

int log_level_parse(const char *s)
{
	static const char *const names[] = {
		[LOG_LVL_ERROR] = "error",
		[LOG_LVL_WARN] = "warn",
		[LOG_LVL_INFO] = "info",
		[LOG_LVL_DEBUG] = "debug",
	};
	_Static_assert(sizeof(names) / sizeof(names[0]) == LOG_LVL_DEBUG + 1,
		       "a name per level");

	for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

static void vlog(enum log_level lvl, const char *errtxt, const char *fmt,
		 va_list ap) __attribute__((format(printf, 3, 0)));
static void vlog(enum log_level lvl, const char *errtxt, const char *fmt,
		 va_list ap)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	char msg[1024];

	if (lvl > log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_stderr) {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ld %s%s%s\n", when, ts.tv_nsec / 1000000,
			msg, errtxt ? ": " : "", errtxt ? errtxt : "");
	} else {
		syslog(prio[lvl], "%s%s%s", msg, errtxt ? ": " : "",
		       errtxt ? errtxt : "");
	}
}

#define LOG_BODY(lvl, errtxt)                                                  \
	do {                                                                   \
		va_list ap;                                                    \
		va_start(ap, fmt);                                             \
		vlog(lvl, errtxt, fmt, ap);                                    \
		va_end(ap);                                                    \
	} while (0)

void log_warn(const char *fmt, ...)
{
	const char *e = strerror(errno);
	LOG_BODY(LOG_LVL_WARN, e);
}

void log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_WARN, NULL);
}

void log_error(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_ERROR, NULL);
}

void log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_INFO, NULL);
}

void log_debug(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_DEBUG, NULL);
}

void log_limited(enum log_level lvl, const char *fmt, ...)
{
	struct timespec ts;
	double now;

	if (lvl > log_level)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	lim_tokens += (now - lim_at) * LOG_LIMITED_RATE;
	if (lim_tokens > LOG_LIMITED_BURST)
		lim_tokens = LOG_LIMITED_BURST;
	lim_at = now;
	if (lim_tokens < 1) {
		lim_dropped++;
		return;
	}
	lim_tokens -= 1;
	if (lim_dropped > lim_dropped_told) {
		log_warnx("%llu abuse log lines dropped (more than %d at once "
			  "or %.0f per second)",
			  lim_dropped - lim_dropped_told, LOG_LIMITED_BURST,
			  LOG_LIMITED_RATE);
		lim_dropped_told = lim_dropped;
	}
	LOG_BODY(lvl, NULL);
}

unsigned long long log_limited_dropped(void)
{
	return lim_dropped;
}

void fatal(const char *fmt, ...)
{
	const char *e = strerror(errno);
	LOG_BODY(LOG_LVL_ERROR, e);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_ERROR, NULL);
	exit(1);
}
