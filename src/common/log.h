/* log.h -- one line per event on standard error, for daemons run under
 * systemd (which adds time stamps of its own to the journal) or by hand.
 *
 * Lines read "LEVEL message". Callers never log secrets: tokens, passwords
 * and keys are named, not shown. Thread-safe (one write per line). */
#ifndef WARD_LOG_H
#define WARD_LOG_H

enum log_level {
	LOG_LVL_ERROR,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

/* Sets the most verbose level written (default LOG_LVL_INFO). Call it before
 * threads start. */
void log_set_level(enum log_level level);

/* Writes one line at level, if that level is enabled. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
