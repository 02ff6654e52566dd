/* Shared by the benchmark programs: one result row a line on stdout, which bench/run.sh gathers
 * into the one table `make bench` prints. Not a test: nothing here fails on a time. */
#ifndef NL_BENCH_H
#define NL_BENCH_H

#include <stdbool.h>
#include <stdio.h>

/* A row: figure, measured value and unit, baseline (<0: none), the goal in words, whether it is
 * met, and a short note. The ratio is measured / baseline. Tab-separated, prefixed "ROW". */
static inline void bench_row(const char *figure, double measured, const char *unit, double baseline,
                             const char *goal, bool met, const char *note)
{
	char m[48], b[48], r[32];
	snprintf(m, sizeof(m), measured >= 1000 ? "%.0f %s" : "%.3g %s", measured, unit);
	if (baseline > 0) {
		snprintf(b, sizeof(b), baseline >= 1000 ? "%.0f %s" : "%.3g %s", baseline, unit);
		snprintf(r, sizeof(r), "%.2f", measured / baseline);
	} else {
		snprintf(b, sizeof(b), "-");
		snprintf(r, sizeof(r), "-");
	}
	printf("ROW\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", figure, m, b, r, goal, met ? "yes" : "NO",
	       note ? note : "");
	fflush(stdout);
}

#endif
