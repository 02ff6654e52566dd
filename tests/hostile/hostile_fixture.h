/* Shared by the tests/hostile/test_hostile_*.c programs: the worlds (hostile_fixture.c), the mock's
 * faults, the daemon's log and socket, sign-ins and the callback URL. */
#ifndef HOSTILE_FIXTURE_H
#define HOSTILE_FIXTURE_H

#include <stdbool.h>

#include <jansson.h>

#include "harness.h"

#define LOG_WAIT_MS 10000 /* a log line may follow the PAM result by a moment */

struct world *tok(void);
struct world *net(void);
int stop_worlds(void **state);
int reset_faults(void **state);
void set_fault(struct world *w, const char *name);
long stat_of(struct world *w, const char *endpoint);
long log_mark(const struct world *w);
int log_count(const struct world *w, long mark, const char *needle);
void assert_one_log_line(const struct world *w, long mark, const char *needle);
int daemon_connect(const struct world *w);
json_t *daemon_call_on(int fd, const char *line);
void flush_caches(const struct world *w);
void restart_daemon(struct world *w);
int signin(struct world *w, struct pam_run *run);
void assert_honest_signin(struct world *w);
void assert_fault_refused(struct world *w, const char *fault, int want, const char *needle);
void assert_cold_cache_unavailable(struct world *w, const char *fault, const char *needle);
void url_param(const char *url, const char *name, char *out, size_t outlen);
long callback(const struct world *w, const char *code, const char *state);
long get(const char *url);

#endif
