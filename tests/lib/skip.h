/* Honest skips: a test whose precondition is missing (not root, no TLS in libmicrohttpd, no chattr)
 * calls skip_because("reason"), and TAP shows "ok N - name # SKIP reason": counted as a skip, never
 * as a pass or a failure. */
#ifndef NL_TEST_SKIP_H
#define NL_TEST_SKIP_H

/* Note the reason, then end the test as cmocka's skip() does (teardowns still run). */
#define skip_because(...)                                                                                    \
	do {                                                                                                 \
		skip_note(__VA_ARGS__);                                                                      \
		skip();                                                                                      \
	} while (0)

/* Remember why the running test is skipped, for its TAP line. */
void skip_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
