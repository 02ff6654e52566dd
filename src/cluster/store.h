/* libnlstore: the bridges' shared state in Redis (flows and their indexes, counters, replay cache,
 * wake-ups across instances), so that no bridge instance keeps state another would need.
 * Key layout, costs and sizing: doc/store.md. */
#ifndef NL_STORE_H
#define NL_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every call returns 0 or an nl_err code. Those the caller acts on:
 * NL_ERR_UNAVAILABLE  Redis unreachable, timed out, or not a writable primary (after one retry
 *                     through the sentinels); never later than command_timeout_ms after the call.
 * NL_ERR_NOT_FOUND    no such flow (expired, deleted, claimed already, or lost in a Redis restart).
 * NL_STORE_TAKEN      create: the user code (or another of the flow's keys) is in use: pick another.
 * NL_ERR_LIMIT        create: a bound on pending flows (nl_store_flow_create_limited) is reached.
 * NL_ERR_EXPIRED      end: the flow has ended already.
 * NL_ERR_PERM         Redis wants a password (NOAUTH) or refused ours.
 * NL_ERR_TOO_BIG      a value or reply past the bounds below (nothing read into memory past them).
 * NL_ERR_INVALID      bad arguments, or something under our keys that we did not write. */
#define NL_STORE_TAKEN NL_ERR_DENIED

#define NL_STORE_ID_MAX    64   /* flow ids: 1..64 of [A-Za-z0-9_-] */
#define NL_STORE_KEY_MAX   256  /* user codes, device codes, states, counter names, request ids */
#define NL_STORE_VALUE_MAX 8192 /* a flow's record or outcome, as compact JSON */
#define NL_STORE_SENTINELS 8
#define NL_STORE_HKEY_MIN  32 /* bytes of the index key (shared by every bridge) */
#define NL_STORE_CHANNEL   "ended"

struct nl_store_config {
	/* One of: url "redis://HOST:PORT[/DB]" or "unix:PATH"; or sentinels "HOST:PORT,..." with master
	 * (the name the sentinels monitor). */
	const char *url;
	const char *sentinels;
	const char *master;
	const char *password; /* AUTH; NULL for none (the caller reads password_file); copied, wiped */
	/* The key of the keyed hashes that name secret-indexed keys (user code, device code, state,
	 * counters, request ids): the same on every bridge; at least NL_STORE_HKEY_MIN bytes. */
	const unsigned char *hash_key;
	size_t hash_key_len;
	const char *prefix;          /* of every key and the channel; NULL: "nl:" */
	unsigned connect_timeout_ms; /* 0: 300; one connection attempt */
	unsigned command_timeout_ms; /* 0: 1000; a whole call, retry included */
	unsigned pool;               /* connections, 0: 4 (a call holds one for its duration) */
};

struct nl_store;

/* Checks the configuration and makes the pool; connects lazily (Redis may be down at start).
 * err gets one line on failure (NL_ERR_CONFIG, NL_ERR_INVALID). */
int nl_store_open(const struct nl_store_config *cfg, struct nl_store **out, char *err, size_t errlen);
/* Stop its subscribers first. NULL is fine. */
void nl_store_close(struct nl_store *st);

/* ---- Flows ----
 * A flow is a record (a JSON object chosen by the bridge) under its id, found by its id, its user
 * code, and the keyed hashes of its device code and state. The secrets themselves are never keys
 * or values; a record should not hold them either. */
struct nl_store_flow_keys {
	const char *id;
	const char *user_code; /* canonical form */
	const char *device_code;
	const char *state;
};
/* Creates the record and its three index keys, all with ttl seconds, in one atomic step, only if
 * none of the four keys exists (NL_STORE_TAKEN otherwise: nothing written). */
int nl_store_flow_create(struct nl_store *st, const struct nl_store_flow_keys *k, const json_t *rec,
                         unsigned ttl);
/* The bounds on pending flows (created, not yet ended, deleted or expired) that a create checks,
 * counted over every instance: of one workstation, and of one user at one workstation. */
struct nl_store_limits {
	const char *host; /* the workstation's enrolled name (no ':') */
	const char *user;
	unsigned max_host; /* the create is refused when host has this many pending (>= 1) */
	unsigned max_pair; /* ... or (host, user) has this many */
};
enum nl_store_limit { NL_STORE_LIMIT_NONE, NL_STORE_LIMIT_HOST, NL_STORE_LIMIT_PAIR };
/* nl_store_flow_create within lim (NULL: none), in the same atomic step: expired flows are dropped
 * from the counts first, and a flow that has ended or been deleted no longer counts. NL_ERR_LIMIT
 * (nothing written) with *hit (may be NULL) saying which bound. */
int nl_store_flow_create_limited(struct nl_store *st, const struct nl_store_flow_keys *k,
                                 const struct nl_store_limits *lim, const json_t *rec, unsigned ttl,
                                 enum nl_store_limit *hit);

enum nl_store_by { NL_STORE_BY_ID, NL_STORE_BY_USER_CODE, NL_STORE_BY_DEVICE_CODE, NL_STORE_BY_STATE };
/* What a read returns. Free with nl_store_flow_clear. */
struct nl_store_flow {
	char id[NL_STORE_ID_MAX + 1];
	json_t *rec;     /* the record as created */
	json_t *outcome; /* NULL while the flow is pending */
	bool claimed;    /* its state has been claimed */
	long long ttl;   /* seconds left */
};
void nl_store_flow_clear(struct nl_store_flow *f);
int nl_store_flow_get(struct nl_store *st, enum nl_store_by by, const char *key, struct nl_store_flow *out);
/* The callback's single-use claim: the pending, unclaimed flow that state names, once. Of any
 * number of concurrent claims exactly one gets 0; the others, and any later one, NL_ERR_NOT_FOUND. */
int nl_store_flow_claim_state(struct nl_store *st, const char *state, struct nl_store_flow *out);
/* The browser binding (a set-once field): the first call for the pending, unclaimed flow id binds
 * it to browser (a hex digest of the browser's cookie, 16..128 hex digits); later calls succeed only
 * for the same browser, NL_ERR_PERM for any other (nothing changes). NL_ERR_NOT_FOUND; NL_ERR_EXPIRED
 * once the flow has ended or its state has been claimed. On success *out is the flow. */
int nl_store_flow_bind(struct nl_store *st, const char *id, const char *browser, struct nl_store_flow *out);
/* nl_store_flow_claim_state for the bound browser only: browser NULL (none), another browser, or a
 * flow that no browser has bound gets NL_ERR_PERM with out->id set, and the flow and its state stay
 * as they were. */
int nl_store_flow_claim_bound(struct nl_store *st, const char *state, const char *browser,
                              struct nl_store_flow *out);
/* Ends pending flow id with outcome (a JSON object), drops its user-code and state indexes, keeps
 * the record and its device-code index readable for max(time left, grace) seconds, and publishes
 * the id on the channel: all one atomic step. NL_ERR_NOT_FOUND, NL_ERR_EXPIRED (ended already). */
int nl_store_flow_end(struct nl_store *st, const char *id, const json_t *outcome, unsigned grace);
/* Removes the record and the indexes that still point at it. NL_ERR_NOT_FOUND if none. */
int nl_store_flow_delete(struct nl_store *st, const char *id);
/* How many flows are pending now over every instance (created, not ended or deleted, not expired):
 * a sorted set of ids by expiry, kept by create, end and delete in their own scripts. */
int nl_store_flows_pending(struct nl_store *st, long long *n);

/* ---- Counters and the replay cache ----
 * Names are hashed (they may be addresses). */
/* Adds one to counter name; the counter starts with a window of window_s seconds at its first
 * addition and vanishes after it (a fixed window). *count gets the new value. */
int nl_store_count_add(struct nl_store *st, const char *name, unsigned window_s, long long *count);
/* The counter's value, 0 if absent. */
int nl_store_count_get(struct nl_store *st, const char *name, long long *count);
/* Per-minute counter name for the minute of now (unix seconds): adds one, and reads the previous
 * minute's. Each minute's key lives 120 s. */
int nl_store_minute_add(struct nl_store *st, const char *name, long long now, long long *this_minute,
                        long long *last_minute);
/* Notes single-use request id for ttl seconds: *seen false the first time, true after. */
int nl_store_replay_note(struct nl_store *st, const char *request_id, unsigned ttl, bool *seen);

/* ---- Wake-ups ----
 * A subscriber is its own thread on its own connection (resolved like the pool's), calling fn for
 * each event. fn runs on that thread: keep it short (note the id, write an eventfd). */
enum nl_store_event {
	NL_STORE_SUBSCRIBED, /* (re)subscribed: messages of the gap are lost, re-read every waiter */
	NL_STORE_LOST,       /* the connection dropped; reconnecting */
	NL_STORE_ENDED,      /* flow id ended (on any instance) */
};
typedef void (*nl_store_event_fn)(void *arg, enum nl_store_event ev, const char *id);
struct nl_store_sub;
int nl_store_subscribe(struct nl_store *st, nl_store_event_fn fn, void *arg, struct nl_store_sub **out);
/* Stops the thread (within 100 ms, or the command timeout while it is connecting) and frees; fn is
 * not called after it returns. NULL is fine. */
void nl_store_sub_stop(struct nl_store_sub *sub);

/* ---- Status ---- */
struct nl_store_status {
	char role[16];           /* "master", "slave" (a replica), "unknown" */
	char addr[300];          /* the Redis in use, "host:port" or the socket path */
	uint64_t commands;       /* commands sent for callers (retries and NOSCRIPT reloads included) */
	uint64_t setup_commands; /* AUTH, SELECT, ROLE and sentinel queries on connecting */
	uint64_t connects;       /* connections made (pool and subscribers) */
	uint64_t unavailable;    /* calls that returned NL_ERR_UNAVAILABLE */
	uint64_t limited;        /* creates refused by a bound on pending flows (NL_ERR_LIMIT) */
};
/* Asks ROLE (one command, counted in commands). The counters are filled even when it fails. */
int nl_store_status(struct nl_store *st, struct nl_store_status *out);
/* How many bridge instances listen for wake-ups on this Redis now (PUBSUB NUMSUB of the channel:
 * each instance holds one subscription). One command. */
int nl_store_instances(struct nl_store *st, long long *n);
/* The counters only, no network. */
void nl_store_counters(struct nl_store *st, struct nl_store_status *out);

#endif
