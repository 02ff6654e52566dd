/* What the benchmarks share: clocks and percentiles, a process's memory, the mock's users with
 * the map for them, and a fast phone (one reused libcurl handle per thread). */
#ifndef NL_BENCH_UTIL_H
#define NL_BENCH_UTIL_H

#include <curl/curl.h>
#include <stddef.h>
#include <sys/types.h>

double bench_now_ms(void);
/* The p-quantile (0..1) of v[0..n) (sorts v). */
double bench_pct(double *v, size_t n, double p);
/* VmRSS or VmHWM of pid, in KiB; -1 if unknown. */
long bench_proc_kib(pid_t pid, const char *field);
/* The mock's users u00..u(n-1) (P9, valid NHS numbers) in statedir/users.json and the daemon's map
 * file for them. 0 or -1. */
int bench_write_users(const char *statedir, const char *mapfile, int n_users);
/* A phone: a libcurl handle that keeps its cookies and trusts cainfo (a PEM file; NULL: the
 * system's) for https (free with curl_easy_cleanup). */
CURL *bench_phone_new(const char *cainfo);
/* The phone of tests/lib/harness.c (phone_signin), fast: /d with the code at bridge, "Continue" on
 * the confirmation page, the mock's (issuer) /authorize page, its decision form as user, and the
 * callback; *t_callback (may be NULL) gets bench_now_ms() as the callback is sent. 0 or -1. */
int bench_phone_signin(CURL *cu, const char *bridge, const char *issuer, const char *user_code,
                       const char *user, double *t_callback);

#endif
