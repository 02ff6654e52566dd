/* Shared by the tests/cluster/test_store_*.c programs: the per-test fixture (store_fixture.c) and
 * the helpers that talk to the store and to Redis directly. */
#ifndef STORE_FIXTURE_H
#define STORE_FIXTURE_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redisproc.h"
#include "store.h"

#define CMD_TIMEOUT_MS 500
#define MASTER_NAME    "nlmaster"

struct fx {
	const char *why; /* set: skip */
	struct redisproc *rs, *replica, *sentinel;
	struct nl_store *st, *st2;
	struct nl_store_sub *sub;
	redisContext *raw;
};

/* Events a subscriber reported. */
struct events {
	pthread_mutex_t mu;
	int subscribed, lost, ended;
	char last_id[NL_STORE_ID_MAX + 1];
	int64_t ended_at_us;
};

#define NEED_REDIS(fx)                                                                                       \
	do {                                                                                                 \
		if ((fx)->why != NULL)                                                                       \
			skip_because("%s", (fx)->why);                                                       \
	} while (0)

extern const unsigned char hkey[32];
int64_t now_us(void);
void sleep_ms(int ms);
struct nl_store *open_url(const char *url);
struct nl_store *open_tcp(const struct redisproc *rp);
redisReply *raw(redisContext *c, const char *fmt, ...);
void raw_ok(redisContext *c, const char *fmt, ...);
void one_key(redisContext *c, const char *pattern, char *out, size_t len);
json_t *sample_record(void);
void flow_keys(int n, struct nl_store_flow_keys *k, char bufs[4][64]);
int create_flow(struct nl_store *st, int n, unsigned ttl);
void on_event(void *arg, enum nl_store_event ev, const char *id);
bool wait_count(struct events *e, const int *counter, int target, int timeout_ms);
struct events *events_new(void);
int setup(void **state);
int teardown(void **state);

#endif
