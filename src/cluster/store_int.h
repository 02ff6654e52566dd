/* The store's insides, shared by store_conn.c, store_flow.c and store_sub.c only. */
#ifndef NL_STORE_INT_H
#define NL_STORE_INT_H

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include "store.h"

/* Bounds on what Redis may send us: one string, one array, and the unparsed bytes of one reply. */
#define STORE_REPLY_STR_MAX  (NL_STORE_VALUE_MAX + 1024)
#define STORE_REPLY_ELEM_MAX 64
#define STORE_READ_MAX       (4 * STORE_REPLY_STR_MAX)
#define STORE_POOL_MAX       32
#define STORE_HOST_MAX       256
#define STORE_ARGV_MAX       16
#define STORE_HASH_HEX       32 /* 128 bits of HMAC-SHA256, in hex */

struct store_addr {
	char host[STORE_HOST_MAX]; /* empty for a Unix socket */
	int port;
	char path[108];
};

struct store_slot {
	pthread_mutex_t mu;
	redisContext *c;
};

struct nl_store {
	struct store_addr direct; /* url mode */
	int db;
	struct store_addr sentinel[NL_STORE_SENTINELS];
	size_t nsentinels;
	char master[128];
	char *password;
	unsigned char hkey[64];
	size_t hkey_len;
	char prefix[64];
	unsigned connect_ms, command_ms;
	struct store_slot slot[STORE_POOL_MAX];
	unsigned nslots;
	atomic_uint next_slot;
	atomic_uint_fast64_t commands, setup_commands, connects, unavailable, limited;
	pthread_mutex_t amu; /* guards in_use and good_sentinel */
	char in_use[300];
	size_t good_sentinel; /* the sentinel that answered last: asked first */
};

/* A connection to the data server by deadline (ms, nl_mono_ms clock): through the sentinels and
 * checked to be a master with ROLE, or direct; then AUTH and SELECT. NL_ERR_UNAVAILABLE. */
int store_connect(struct nl_store *st, int64_t deadline, redisContext **out);
/* One command on c by deadline, reply bounded. Transport and protocol failures leave c unusable:
 * NL_ERR_UNAVAILABLE (I/O, timeout), NL_ERR_TOO_BIG, NL_ERR_INVALID (protocol). */
int store_exec(redisContext *c, int argc, const char **argv, const size_t *lens, int64_t deadline,
               redisReply **out);
/* One command for a caller through the pool, with the retry rules of doc/store.md: a connection
 * failure or a READONLY reply re-resolves and retries once within the call's deadline; NOSCRIPT
 * resends an EVALSHA as EVAL with script. Error replies come back as replies. */
int store_call(struct nl_store *st, int argc, const char **argv, const size_t *lens, const char *script,
               redisReply **out);
/* HMAC-SHA256(hkey, kind NUL value), 128 bits in hex, into out (STORE_HASH_HEX + 1). */
int store_hash(const struct nl_store *st, const char *kind, const char *value, char *out);

#endif
