/* Logging: one line an event to syslog or stderr; debug lines only when enabled. */
#include "config.h"
#include "nl_log.h"
#include "nl_text.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum nl_log_sink log_sink = NL_LOG_STDERR;
static bool log_debug;
static char log_ident[64] = "nhslogin";

void nl_log_open(const char *ident, enum nl_log_sink sink, bool debug)
{
	snprintf(log_ident, sizeof(log_ident), "%s", ident != NULL ? ident : "nhslogin");
	log_sink = sink;
	log_debug = debug;
	if (sink == NL_LOG_SYSLOG)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);
}

bool nl_log_debug_enabled(void)
{
	return log_debug;
}

static const char *prio_word(int prio)
{
	switch (prio) {
	case LOG_EMERG:
	case LOG_ALERT:
	case LOG_CRIT:
	case LOG_ERR:
		return "error";
	case LOG_WARNING:
		return "warning";
	case LOG_NOTICE:
		return "notice";
	case LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

__attribute__((format(printf, 3, 0))) static void emit(int prio, const char *fn, const char *fmt, va_list ap)
{
	char line[1024];
	int off = 0;

	if (fn != NULL)
		off = snprintf(line, sizeof(line), "%s: ", fn);
	if (off < 0 || (size_t)off >= sizeof(line))
		off = 0;
	vsnprintf(line + off, sizeof(line) - (size_t)off, fmt, ap);
	/* Control characters from outside input never reach a log line unescaped. */
	nl_text_mask_controls(line);
	if (log_sink == NL_LOG_SYSLOG) {
		syslog(prio, "%s", line);
	} else {
		fprintf(stderr, "%s[%s]: %s\n", log_ident, prio_word(prio), line);
		fflush(stderr);
	}
}

void nl_log(int prio, const char *fmt, ...)
{
	va_list ap;
	if (prio >= LOG_DEBUG && !log_debug)
		return;
	va_start(ap, fmt);
	emit(prio, NULL, fmt, ap);
	va_end(ap);
}

void nl_log_fn(int prio, const char *fn, const char *fmt, ...)
{
	va_list ap;
	if (prio >= LOG_DEBUG && !log_debug)
		return;
	va_start(ap, fmt);
	emit(prio, fn, fmt, ap);
	va_end(ap);
}
