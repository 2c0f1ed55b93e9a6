/* log.c -- daemon log lines on standard error (see log.h). */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"

static enum log_level max_level = LOG_LVL_INFO;

void log_set_level(enum log_level level)
{
	max_level = level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	char msg[2048], line[2048 + 16];
	va_list ap;
	size_t n;

	if (level > max_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Messages carry what clients sent (paths, names): escaped, so that
	 * no one can forge a line or drive the terminal of whoever reads it. */
	n = (size_t)snprintf(line, sizeof(line), "%s: ", names[level]);
	n += util_escape(line + n, sizeof(line) - n - 1, msg);
	line[n++] = '\n';
	/* One write(2) per line keeps lines of concurrent threads whole. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}
