/* The clock: wall time through an injectable source, monotonic milliseconds for deadlines. */
#include "config.h"
#include "nl_time.h"

static nl_clock_fn clock_fn;

time_t nl_now(void)
{
	nl_clock_fn fn = __atomic_load_n(&clock_fn, __ATOMIC_ACQUIRE);
	return fn != NULL ? fn() : time(NULL);
}

void nl_set_clock(nl_clock_fn fn)
{
	__atomic_store_n(&clock_fn, fn, __ATOMIC_RELEASE);
}

int64_t nl_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
