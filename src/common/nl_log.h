/* Logging for the daemon, the mock and the tools: one line an event, to syslog or stderr.
 * Never pass a token, code, assertion or key to these functions. */
#ifndef NL_LOG_H
#define NL_LOG_H

#include <stdbool.h>
#include <syslog.h>

enum nl_log_sink { NL_LOG_STDERR, NL_LOG_SYSLOG };

/* ident is the program name; sink where lines go. Safe to call again. */
void nl_log_open(const char *ident, enum nl_log_sink sink, bool debug);
bool nl_log_debug_enabled(void);
void nl_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void nl_log_fn(int prio, const char *fn, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define nl_err(...)    nl_log(LOG_ERR, __VA_ARGS__)
#define nl_warn(...)   nl_log(LOG_WARNING, __VA_ARGS__)
#define nl_notice(...) nl_log(LOG_NOTICE, __VA_ARGS__)
#define nl_info(...)   nl_log(LOG_INFO, __VA_ARGS__)
/* Debug lines carry the function name and are dropped unless debug is on. */
#define nl_debug(...)                                                                                        \
	do {                                                                                                 \
		if (nl_log_debug_enabled())                                                                  \
			nl_log_fn(LOG_DEBUG, __func__, __VA_ARGS__);                                         \
	} while (0)

#endif
