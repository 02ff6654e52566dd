/* The clock, injectable for tests (a function pointer, not #ifdef TESTING). */
#ifndef NL_TIME_H
#define NL_TIME_H

#include <stdint.h>
#include <time.h>

typedef time_t (*nl_clock_fn)(void);

/* Wall-clock seconds (CLOCK_REALTIME), through the injected source if any. */
time_t nl_now(void);
/* Replace the wall clock; NULL restores the real one. */
void nl_set_clock(nl_clock_fn fn);
/* Monotonic milliseconds, for timeouts and deadlines (never injected). */
int64_t nl_mono_ms(void);

#endif
