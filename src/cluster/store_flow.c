/* Flow records and their indexes, counters and the replay cache: each operation one Redis command
 * (a Lua script where several keys must change together). Key layout: doc/store.md. */
#include "config.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nl_err.h"
#include "nl_wipe.h"
#include "store_int.h"

/* Shared by the flow scripts. resolve: an index key's flow id (false if absent; nil, 'bad' if the
 * key is not ours). read: a flow hash as {id, rec, end or '', claim or '', ttl}, or false. drop and
 * ours touch an index only while it still names this flow (a user code is reused once free); unpend
 * takes a flow out of one of its pending sets. */
#define LUA_COMMON                                                                                           \
	"local function resolve(ik)\n"                                                                       \
	"  local t = redis.call('TYPE', ik)['ok']\n"                                                         \
	"  if t == 'none' then return false end\n"                                                           \
	"  if t ~= 'string' or redis.call('STRLEN', ik) > 64 then return nil, 'bad' end\n"                   \
	"  local id = redis.call('GET', ik)\n"                                                               \
	"  if not string.match(id, '^[%w_-]+$') then return nil, 'bad' end\n"                                \
	"  return id\n"                                                                                      \
	"end\n"                                                                                              \
	"local function read(fk, id, max)\n"                                                                 \
	"  local t = redis.call('TYPE', fk)['ok']\n"                                                         \
	"  if t == 'none' then return false end\n"                                                           \
	"  if t ~= 'hash' then return redis.error_reply('NLBAD flow is not a hash') end\n"                   \
	"  if redis.call('HSTRLEN', fk, 'rec') > max or redis.call('HSTRLEN', fk, 'end') > max then\n"       \
	"    return redis.error_reply('NLBIG flow too big') end\n"                                           \
	"  local v = redis.call('HMGET', fk, 'rec', 'end', 'claim')\n"                                       \
	"  if not v[1] then return redis.error_reply('NLBAD flow without record') end\n"                     \
	"  return {id, v[1], v[2] or '', v[3] or '', redis.call('TTL', fk)}\n"                               \
	"end\n"                                                                                              \
	"local function ours(k, id)\n"                                                                       \
	"  return k and redis.call('TYPE', k)['ok'] == 'string' and redis.call('GET', k) == id\n"            \
	"end\n"                                                                                              \
	"local function drop(k, id)\n"                                                                       \
	"  if ours(k, id) then redis.call('DEL', k) end\n"                                                   \
	"end\n"                                                                                              \
	"local function unpend(k, id)\n"                                                                     \
	"  if k and redis.call('TYPE', k)['ok'] == 'zset' then redis.call('ZREM', k, id) end\n"              \
	"end\n"

/* KEYS: flow, uc, dc, st. ARGV: id, rec, then "TTL" or "TTL MAXHOST MAXPAIR HOSTHASH PAIRHASH".
 * Keys beyond these four are named here from the prefix (taken off the flow key): an eleventh
 * argument would be refused from a client not yet authenticated, before Redis could say NOAUTH.
 * The pending sets hold each pending flow's id scored by its expiry (unix seconds): "pending" over
 * every workstation (the count in status), and with limits "ph:HOSTHASH" (one workstation's) and
 * "pu:PAIRHASH" (one user's at one workstation). Expired members go first; then the flow goes in
 * only if the workstation has fewer than MAXHOST and the pair fewer than MAXPAIR pending (-1 and
 * -2 otherwise, nothing written). Each set lives as long as its longest flow; the flow hash names
 * its two ("kph", "kpu") so that the end and the delete take it out. */
static const char lua_create[] =
    "local ttl, mh, mp, hh, ph = string.match(ARGV[3], '^(%d+) (%d+) (%d+) (%x+) (%x+)$')\n"
    "if not ttl then ttl = ARGV[3] end\n"
    "local pre = string.sub(KEYS[1], 1, #KEYS[1] - #ARGV[1] - 5)\n"
    "local now = tonumber(redis.call('TIME')[1])\n"
    "local sets = {pre .. 'pending'}\n"
    "if hh then\n"
    "  sets[2] = pre .. 'ph:' .. hh\n"
    "  sets[3] = pre .. 'pu:' .. ph\n"
    "  local max = {0, tonumber(mh), tonumber(mp)}\n"
    "  for i = 2, 3 do\n"
    "    if redis.call('TYPE', sets[i])['ok'] ~= 'zset' then redis.call('DEL', sets[i]) end\n"
    "    redis.call('ZREMRANGEBYSCORE', sets[i], '-inf', now)\n"
    "    if redis.call('ZCARD', sets[i]) >= max[i] then return 1 - i end\n"
    "  end\n"
    "end\n"
    "if redis.call('EXISTS', KEYS[1], KEYS[2], KEYS[3], KEYS[4]) > 0 then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'rec', ARGV[2], 'kuc', KEYS[2], 'kdc', KEYS[3], 'kst', KEYS[4])\n"
    "if hh then redis.call('HSET', KEYS[1], 'kph', sets[2], 'kpu', sets[3]) end\n"
    "redis.call('EXPIRE', KEYS[1], ttl)\n"
    "for i = 2, 4 do redis.call('SET', KEYS[i], ARGV[1], 'EX', ttl) end\n"
    "for i = 1, #sets do\n"
    "  redis.call('ZADD', sets[i], now + tonumber(ttl), ARGV[1])\n"
    "  if redis.call('TTL', sets[i]) < tonumber(ttl) then redis.call('EXPIRE', sets[i], ttl) end\n"
    "end\n"
    "return 1\n";

/* KEYS: pending. The pending flows: the expired ones dropped first. */
static const char lua_pending[] = "local now = redis.call('TIME')[1]\n"
                                  "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
                                  "return redis.call('ZCARD', KEYS[1])\n";

/* KEYS: index or flow key. ARGV: flow key prefix, max, '1' (index) or '0', id (with '0'). */
static const char lua_get[] = LUA_COMMON "local id = ARGV[4]\n"
                                         "if ARGV[3] == '1' then\n"
                                         "  local bad\n"
                                         "  id, bad = resolve(KEYS[1])\n"
                                         "  if bad then return redis.error_reply('NLBAD index') end\n"
                                         "  if not id then return false end\n"
                                         "end\n"
                                         "return read(ARGV[1] .. id, id, tonumber(ARGV[2]))\n";

/* The claims' common parts: the pending, unclaimed flow that the state index KEYS[1] names, read
 * into out (its record key fk), or the reply; and taking it (the index dropped, the flow marked). */
#define LUA_CLAIM_HEAD                                                                                       \
	LUA_COMMON "local id, bad = resolve(KEYS[1])\n"                                                      \
	           "if bad then return redis.error_reply('NLBAD index') end\n"                               \
	           "if not id then return false end\n"                                                       \
	           "local fk = ARGV[1] .. id\n"                                                              \
	           "local out = read(fk, id, tonumber(ARGV[2]))\n"                                           \
	           "if not out then redis.call('DEL', KEYS[1]) return false end\n"                           \
	           "if out.err then return out end\n"                                                        \
	           "if out[3] ~= '' or out[4] ~= '' then return false end\n"
#define LUA_CLAIM_TAKE                                                                                       \
	"redis.call('DEL', KEYS[1])\n"                                                                       \
	"redis.call('HSET', fk, 'claim', '1')\n"                                                             \
	"out[4] = '1'\n"                                                                                     \
	"return out\n"

/* KEYS: st. ARGV: flow key prefix, max. Reads before it writes: an error changes nothing. */
static const char lua_claim[] = LUA_CLAIM_HEAD LUA_CLAIM_TAKE;

/* KEYS: flow, pending. ARGV: outcome, grace, channel, id. 1 ended, 0 no flow, -1 ended already. */
static const char lua_end[] =
    LUA_COMMON "local fk = KEYS[1]\n"
               "local t = redis.call('TYPE', fk)['ok']\n"
               "if t == 'none' then return 0 end\n"
               "if t ~= 'hash' then return redis.error_reply('NLBAD flow') end\n"
               "if redis.call('HEXISTS', fk, 'end') == 1 then return -1 end\n"
               "local k = redis.call('HMGET', fk, 'kuc', 'kdc', 'kst', 'kph', 'kpu')\n"
               "local keep = math.max(redis.call('TTL', fk), tonumber(ARGV[2]))\n"
               "redis.call('HSET', fk, 'end', ARGV[1])\n"
               "redis.call('EXPIRE', fk, keep)\n"
               "drop(k[1], ARGV[4])\n"
               "drop(k[3], ARGV[4])\n"
               "if ours(k[2], ARGV[4]) then redis.call('EXPIRE', k[2], keep) end\n"
               "redis.call('ZREM', KEYS[2], ARGV[4])\n"
               "unpend(k[4], ARGV[4])\n"
               "unpend(k[5], ARGV[4])\n"
               "redis.call('PUBLISH', ARGV[3], ARGV[4])\n"
               "return 1\n";

/* KEYS: flow, pending. ARGV: id. */
static const char lua_delete[] =
    LUA_COMMON "redis.call('ZREM', KEYS[2], ARGV[1])\n"
               "local t = redis.call('TYPE', KEYS[1])['ok']\n"
               "if t == 'none' then return 0 end\n"
               "if t ~= 'hash' then return redis.error_reply('NLBAD flow') end\n"
               "local k = redis.call('HMGET', KEYS[1], 'kuc', 'kdc', 'kst', 'kph', 'kpu')\n"
               "for i = 1, 3 do drop(k[i], ARGV[1]) end\n"
               "unpend(k[4], ARGV[1])\n"
               "unpend(k[5], ARGV[1])\n"
               "redis.call('DEL', KEYS[1])\n"
               "return 1\n";

/* KEYS: counter. ARGV: window. A counter found without a TTL (not ours) gets one. */
static const char lua_count[] =
    "local n = redis.call('INCR', KEYS[1])\n"
    "if n == 1 or redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end\n"
    "return n\n";

/* KEYS: this minute's counter, the last minute's. */
static const char lua_minute[] =
    "local n = redis.call('INCR', KEYS[1])\n"
    "if n == 1 or redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], 120) end\n"
    "return {n, tonumber(redis.call('GET', KEYS[2])) or 0}\n";

/* KEYS: flow. ARGV: browser, max, id. The browser binding, set once: the first browser binds the
 * pending, unclaimed flow; later calls must name the same one (-2 otherwise, nothing changes).
 * -1: ended or claimed. */
static const char lua_bind[] =
    LUA_COMMON "local fk = KEYS[1]\n"
               "local out = read(fk, ARGV[3], tonumber(ARGV[2]))\n"
               "if not out then return false end\n"
               "if out.err then return out end\n"
               "if out[3] ~= '' or out[4] ~= '' then return -1 end\n"
               "local b = redis.call('HGET', fk, 'bro')\n"
               "if not b then redis.call('HSET', fk, 'bro', ARGV[1]) return out end\n"
               "if b ~= ARGV[1] then return -2 end\n"
               "return out\n";

/* KEYS: st. ARGV: flow key prefix, max, browser ('' for none). lua_claim, but only for the bound
 * browser: any other (or none, or a flow no browser bound) gets {-2, id} and nothing changes. */
static const char lua_claim_bound[] =
    LUA_CLAIM_HEAD "local b = redis.call('HGET', fk, 'bro')\n"
                   "if ARGV[3] == '' or not b or b ~= ARGV[3] then return {-2, id} end\n" LUA_CLAIM_TAKE;

enum script {
	S_CREATE,
	S_GET,
	S_CLAIM,
	S_END,
	S_DELETE,
	S_COUNT,
	S_MINUTE,
	S_BIND,
	S_CLAIM_BOUND,
	S_PENDING,
	S_N
};
static const char *const script_text[S_N] = {lua_create, lua_get,    lua_claim, lua_end,         lua_delete,
                                             lua_count,  lua_minute, lua_bind,  lua_claim_bound, lua_pending};
static char script_sha[S_N][41];
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;

static void compute_shas(void)
{
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < S_N; i++) {
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int n = 0;
		if (EVP_Digest(script_text[i], strlen(script_text[i]), md, &n, EVP_sha1(), NULL) != 1 ||
		    n != 20)
			continue; /* left empty: the call then goes out as EVAL after NOSCRIPT */
		for (unsigned j = 0; j < 20; j++) {
			script_sha[i][2 * j] = hex[md[j] >> 4];
			script_sha[i][2 * j + 1] = hex[md[j] & 15];
		}
	}
}

/* EVALSHA script with keys and args (NUL-terminated strings). */
static int run(struct nl_store *st, enum script s, int nkeys, const char **keys, int nargs, const char **args,
               redisReply **out)
{
	const char *argv[STORE_ARGV_MAX];
	size_t lens[STORE_ARGV_MAX];
	char nk[8];
	int argc = 0;

	if (3 + nkeys + nargs > STORE_ARGV_MAX)
		return NL_ERR_INTERNAL;
	pthread_once(&sha_once, compute_shas);
	snprintf(nk, sizeof(nk), "%d", nkeys);
	argv[argc++] = "EVALSHA";
	argv[argc++] = script_sha[s];
	argv[argc++] = nk;
	for (int i = 0; i < nkeys; i++)
		argv[argc++] = keys[i];
	for (int i = 0; i < nargs; i++)
		argv[argc++] = args[i];
	for (int i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	return store_call(st, argc, argv, lens, script_text[s], out);
}

/* An error reply that our scripts or Redis gave about what is under our keys. */
static int reply_error(const redisReply *rep)
{
	return rep->str != NULL && strstr(rep->str, "NLBIG") != NULL ? NL_ERR_TOO_BIG : NL_ERR_INVALID;
}

/* Free a reply that may hold a flow record, wiping its strings. */
static void free_wiped(redisReply *rep)
{
	if (rep == NULL)
		return;
	if (rep->type == REDIS_REPLY_ARRAY)
		for (size_t i = 0; i < rep->elements; i++)
			if (rep->element[i]->type == REDIS_REPLY_STRING)
				nl_wipe(rep->element[i]->str, rep->element[i]->len);
	freeReplyObject(rep);
}

static bool valid_id(const char *id)
{
	size_t n = id != NULL ? strlen(id) : 0;
	return n >= 1 && n <= NL_STORE_ID_MAX &&
	       strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static bool valid_key(const char *k)
{
	return k != NULL && k[0] != '\0' && strlen(k) <= NL_STORE_KEY_MAX;
}

/* prefix + tag + ':' + keyed hash of value. */
static int hashed_key(const struct nl_store *st, const char *tag, const char *value, char *out, size_t len)
{
	char h[STORE_HASH_HEX + 1];
	int r;
	if (!valid_key(value))
		return NL_ERR_INVALID;
	if ((r = store_hash(st, tag, value, h)) != 0)
		return r;
	snprintf(out, len, "%s%s:%s", st->prefix, tag, h);
	return 0;
}

#define KEYLEN (64 + 16 + STORE_HASH_HEX + NL_STORE_ID_MAX)

static void flow_key(const struct nl_store *st, const char *id, char *out, size_t len)
{
	snprintf(out, len, "%sflow:%s", st->prefix, id);
}

static void pending_key(const struct nl_store *st, char *out, size_t len)
{
	snprintf(out, len, "%spending", st->prefix);
}

/* Compact JSON of an object, bounded; a new string (free with nl_free_secret). */
static int dump_object(const json_t *o, char **out)
{
	char *s;
	if (!json_is_object(o))
		return NL_ERR_INVALID;
	if ((s = json_dumps(o, JSON_COMPACT)) == NULL)
		return NL_ERR_NOMEM;
	if (strlen(s) > NL_STORE_VALUE_MAX) {
		nl_free_secret(s);
		return NL_ERR_TOO_BIG;
	}
	*out = s;
	return 0;
}

/* ARGV[3] of the create: "TTL", or with limits "TTL MAXHOST MAXPAIR HOSTHASH PAIRHASH". */
static int limits_arg(const struct nl_store *st, const struct nl_store_limits *lim, unsigned ttl, char *out,
                      size_t len)
{
	char hh[STORE_HASH_HEX + 1], ph[STORE_HASH_HEX + 1], pair[2 * NL_STORE_KEY_MAX + 2];
	int r;

	if (lim == NULL) {
		snprintf(out, len, "%u", ttl);
		return 0;
	}
	if (!valid_key(lim->host) || strchr(lim->host, ':') != NULL || !valid_key(lim->user) ||
	    lim->max_host == 0 || lim->max_pair == 0)
		return NL_ERR_INVALID;
	snprintf(pair, sizeof(pair), "%s:%s", lim->host, lim->user);
	if ((r = store_hash(st, "ph", lim->host, hh)) != 0 || (r = store_hash(st, "pu", pair, ph)) != 0)
		return r;
	snprintf(out, len, "%u %u %u %s %s", ttl, lim->max_host, lim->max_pair, hh, ph);
	return 0;
}

int nl_store_flow_create_limited(struct nl_store *st, const struct nl_store_flow_keys *k,
                                 const struct nl_store_limits *lim, const json_t *rec, unsigned ttl,
                                 enum nl_store_limit *hit)
{
	char fk[KEYLEN], uc[KEYLEN], dc[KEYLEN], sk[KEYLEN], ttls[128];
	const char *keys[] = {fk, uc, dc, sk};
	const char *args[3];
	char *json = NULL;
	redisReply *rep = NULL;
	int r;

	if (hit != NULL)
		*hit = NL_STORE_LIMIT_NONE;
	if (!valid_id(k->id) || ttl == 0 || ttl > 86400)
		return NL_ERR_INVALID;
	if ((r = limits_arg(st, lim, ttl, ttls, sizeof(ttls))) != 0 ||
	    (r = hashed_key(st, "uc", k->user_code, uc, sizeof(uc))) != 0 ||
	    (r = hashed_key(st, "dc", k->device_code, dc, sizeof(dc))) != 0 ||
	    (r = hashed_key(st, "st", k->state, sk, sizeof(sk))) != 0 || (r = dump_object(rec, &json)) != 0)
		return r;
	flow_key(st, k->id, fk, sizeof(fk));
	args[0] = k->id;
	args[1] = json;
	args[2] = ttls;
	if ((r = run(st, S_CREATE, 4, keys, 3, args, &rep)) != 0)
		goto out;
	if (rep->type == REDIS_REPLY_INTEGER && rep->integer >= -2 && rep->integer <= 1) {
		r = rep->integer == 1 ? 0 : rep->integer == 0 ? NL_STORE_TAKEN : NL_ERR_LIMIT;
		if (rep->integer < 0 && hit != NULL)
			*hit = rep->integer == -1 ? NL_STORE_LIMIT_HOST : NL_STORE_LIMIT_PAIR;
		if (rep->integer < 0)
			atomic_fetch_add(&st->limited, 1);
	} else {
		r = rep->type == REDIS_REPLY_ERROR ? reply_error(rep) : NL_ERR_INVALID;
	}
out:
	freeReplyObject(rep);
	nl_free_secret(json);
	return r;
}

int nl_store_flow_create(struct nl_store *st, const struct nl_store_flow_keys *k, const json_t *rec,
                         unsigned ttl)
{
	return nl_store_flow_create_limited(st, k, NULL, rec, ttl, NULL);
}

void nl_store_flow_clear(struct nl_store_flow *f)
{
	if (f == NULL)
		return;
	json_decref(f->rec);
	json_decref(f->outcome);
	memset(f, 0, sizeof(*f));
}

static int parse_object(const redisReply *e, json_t **out)
{
	json_error_t jerr;
	json_t *o;
	if (e->type != REDIS_REPLY_STRING)
		return NL_ERR_INVALID;
	o = json_loadb(e->str, e->len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(o)) {
		json_decref(o);
		return NL_ERR_INVALID;
	}
	*out = o;
	return 0;
}

/* {id, rec, end or '', claim or '', ttl} into out, or NL_ERR_NOT_FOUND for nil. */
static int parse_flow(const redisReply *rep, struct nl_store_flow *out)
{
	struct nl_store_flow f = {0};
	redisReply *const *e = rep->element;
	int r;

	if (rep->type == REDIS_REPLY_NIL)
		return NL_ERR_NOT_FOUND;
	if (rep->type == REDIS_REPLY_ERROR)
		return reply_error(rep);
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 5 || e[0]->type != REDIS_REPLY_STRING ||
	    e[0]->len > NL_STORE_ID_MAX || e[2]->type != REDIS_REPLY_STRING ||
	    e[3]->type != REDIS_REPLY_STRING || e[4]->type != REDIS_REPLY_INTEGER)
		return NL_ERR_INVALID;
	memcpy(f.id, e[0]->str, e[0]->len);
	if (!valid_id(f.id))
		return NL_ERR_INVALID;
	if ((r = parse_object(e[1], &f.rec)) != 0)
		goto fail;
	if (e[2]->len > 0 && (r = parse_object(e[2], &f.outcome)) != 0)
		goto fail;
	f.claimed = e[3]->len > 0;
	f.ttl = e[4]->integer;
	*out = f;
	return 0;
fail:
	nl_store_flow_clear(&f);
	return r;
}

int nl_store_flow_get(struct nl_store *st, enum nl_store_by by, const char *key, struct nl_store_flow *out)
{
	static const char *const tags[] = {NULL, "uc", "dc", "st"};
	char k[KEYLEN], fprefix[96], max[16];
	const char *keys[] = {k};
	const char *args[4];
	redisReply *rep = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if (by == NL_STORE_BY_ID) {
		if (!valid_id(key))
			return NL_ERR_INVALID;
		flow_key(st, key, k, sizeof(k));
	} else if (by > NL_STORE_BY_ID && by <= NL_STORE_BY_STATE) {
		if ((r = hashed_key(st, tags[by], key, k, sizeof(k))) != 0)
			return r;
	} else {
		return NL_ERR_INVALID;
	}
	snprintf(fprefix, sizeof(fprefix), "%sflow:", st->prefix);
	snprintf(max, sizeof(max), "%d", NL_STORE_VALUE_MAX);
	args[0] = fprefix;
	args[1] = max;
	args[2] = by == NL_STORE_BY_ID ? "0" : "1";
	args[3] = by == NL_STORE_BY_ID ? key : "";
	if ((r = run(st, S_GET, 1, keys, 4, args, &rep)) != 0)
		return r;
	r = parse_flow(rep, out);
	free_wiped(rep);
	return r;
}

int nl_store_flow_claim_state(struct nl_store *st, const char *state, struct nl_store_flow *out)
{
	char k[KEYLEN], fprefix[96], max[16];
	const char *keys[] = {k};
	const char *args[2] = {fprefix, max};
	redisReply *rep = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = hashed_key(st, "st", state, k, sizeof(k))) != 0)
		return r;
	snprintf(fprefix, sizeof(fprefix), "%sflow:", st->prefix);
	snprintf(max, sizeof(max), "%d", NL_STORE_VALUE_MAX);
	if ((r = run(st, S_CLAIM, 1, keys, 2, args, &rep)) != 0)
		return r;
	r = parse_flow(rep, out);
	free_wiped(rep);
	return r;
}

static bool valid_browser(const char *b)
{
	size_t n = b != NULL ? strlen(b) : 0;
	return n >= 16 && n <= 128 && strspn(b, "0123456789abcdef") == n;
}

int nl_store_flow_bind(struct nl_store *st, const char *id, const char *browser, struct nl_store_flow *out)
{
	char fk[KEYLEN], max[16];
	const char *keys[] = {fk};
	const char *args[3];
	redisReply *rep = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if (!valid_id(id) || !valid_browser(browser))
		return NL_ERR_INVALID;
	flow_key(st, id, fk, sizeof(fk));
	snprintf(max, sizeof(max), "%d", NL_STORE_VALUE_MAX);
	args[0] = browser;
	args[1] = max;
	args[2] = id;
	if ((r = run(st, S_BIND, 1, keys, 3, args, &rep)) != 0)
		return r;
	if (rep->type == REDIS_REPLY_INTEGER)
		r = rep->integer == -2 ? NL_ERR_PERM : NL_ERR_EXPIRED;
	else
		r = parse_flow(rep, out);
	free_wiped(rep);
	return r;
}

int nl_store_flow_claim_bound(struct nl_store *st, const char *state, const char *browser,
                              struct nl_store_flow *out)
{
	char k[KEYLEN], fprefix[96], max[16];
	const char *keys[] = {k};
	const char *args[3] = {fprefix, max, browser != NULL ? browser : ""};
	redisReply *rep = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if (browser != NULL && !valid_browser(browser))
		return NL_ERR_INVALID;
	if ((r = hashed_key(st, "st", state, k, sizeof(k))) != 0)
		return r;
	snprintf(fprefix, sizeof(fprefix), "%sflow:", st->prefix);
	snprintf(max, sizeof(max), "%d", NL_STORE_VALUE_MAX);
	if ((r = run(st, S_CLAIM_BOUND, 1, keys, 3, args, &rep)) != 0)
		return r;
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
	    rep->element[0]->type == REDIS_REPLY_INTEGER && rep->element[0]->integer == -2 &&
	    rep->element[1]->type == REDIS_REPLY_STRING && rep->element[1]->len <= NL_STORE_ID_MAX) {
		memcpy(out->id, rep->element[1]->str, rep->element[1]->len);
		r = valid_id(out->id) ? NL_ERR_PERM : NL_ERR_INVALID;
	} else {
		r = parse_flow(rep, out);
	}
	free_wiped(rep);
	return r;
}

int nl_store_flow_end(struct nl_store *st, const char *id, const json_t *outcome, unsigned grace)
{
	char fk[KEYLEN], pk[KEYLEN], graces[16], chan[96];
	const char *keys[] = {fk, pk};
	const char *args[4];
	char *json = NULL;
	redisReply *rep = NULL;
	int r;

	if (!valid_id(id) || grace == 0 || grace > 86400)
		return NL_ERR_INVALID;
	if ((r = dump_object(outcome, &json)) != 0)
		return r;
	flow_key(st, id, fk, sizeof(fk));
	pending_key(st, pk, sizeof(pk));
	snprintf(graces, sizeof(graces), "%u", grace);
	snprintf(chan, sizeof(chan), "%s%s", st->prefix, NL_STORE_CHANNEL);
	args[0] = json;
	args[1] = graces;
	args[2] = chan;
	args[3] = id;
	if ((r = run(st, S_END, 2, keys, 4, args, &rep)) != 0)
		goto out;
	if (rep->type == REDIS_REPLY_INTEGER)
		r = rep->integer == 1 ? 0 : rep->integer == 0 ? NL_ERR_NOT_FOUND : NL_ERR_EXPIRED;
	else
		r = rep->type == REDIS_REPLY_ERROR ? reply_error(rep) : NL_ERR_INVALID;
out:
	freeReplyObject(rep);
	nl_free_secret(json);
	return r;
}

int nl_store_flow_delete(struct nl_store *st, const char *id)
{
	char fk[KEYLEN], pk[KEYLEN];
	const char *keys[] = {fk, pk};
	const char *args[] = {id};
	redisReply *rep = NULL;
	int r;

	if (!valid_id(id))
		return NL_ERR_INVALID;
	flow_key(st, id, fk, sizeof(fk));
	pending_key(st, pk, sizeof(pk));
	if ((r = run(st, S_DELETE, 2, keys, 1, args, &rep)) != 0)
		return r;
	if (rep->type == REDIS_REPLY_INTEGER)
		r = rep->integer == 1 ? 0 : NL_ERR_NOT_FOUND;
	else
		r = rep->type == REDIS_REPLY_ERROR ? reply_error(rep) : NL_ERR_INVALID;
	freeReplyObject(rep);
	return r;
}

int nl_store_flows_pending(struct nl_store *st, long long *n)
{
	char pk[KEYLEN];
	const char *keys[] = {pk};
	redisReply *rep = NULL;
	int r;

	*n = 0;
	pending_key(st, pk, sizeof(pk));
	if ((r = run(st, S_PENDING, 1, keys, 0, NULL, &rep)) != 0)
		return r;
	if (rep->type == REDIS_REPLY_INTEGER && rep->integer >= 0)
		*n = rep->integer;
	else
		r = rep->type == REDIS_REPLY_ERROR ? reply_error(rep) : NL_ERR_INVALID;
	freeReplyObject(rep);
	return r;
}

/* ---- Counters and the replay cache ---- */

static int integer_of(const redisReply *rep, long long *out)
{
	if (rep->type == REDIS_REPLY_INTEGER) {
		*out = rep->integer;
		return 0;
	}
	if (rep->type == REDIS_REPLY_NIL) {
		*out = 0;
		return 0;
	}
	if (rep->type == REDIS_REPLY_STRING && rep->len > 0 && rep->len < 21) {
		char *end;
		errno = 0;
		*out = strtoll(rep->str, &end, 10);
		if (errno == 0 && *end == '\0')
			return 0;
	}
	return rep->type == REDIS_REPLY_ERROR ? reply_error(rep) : NL_ERR_INVALID;
}

int nl_store_count_add(struct nl_store *st, const char *name, unsigned window_s, long long *count)
{
	char k[KEYLEN], win[16];
	const char *keys[] = {k};
	const char *args[] = {win};
	redisReply *rep = NULL;
	int r;

	if (window_s == 0 || window_s > 86400)
		return NL_ERR_INVALID;
	if ((r = hashed_key(st, "cnt", name, k, sizeof(k))) != 0)
		return r;
	snprintf(win, sizeof(win), "%u", window_s);
	if ((r = run(st, S_COUNT, 1, keys, 1, args, &rep)) != 0)
		return r;
	r = rep->type == REDIS_REPLY_INTEGER ? integer_of(rep, count)
	    : rep->type == REDIS_REPLY_ERROR ? reply_error(rep)
	                                     : NL_ERR_INVALID;
	freeReplyObject(rep);
	return r;
}

int nl_store_count_get(struct nl_store *st, const char *name, long long *count)
{
	char k[KEYLEN];
	const char *argv[] = {"GET", k};
	size_t lens[2] = {3, 0};
	redisReply *rep = NULL;
	int r;

	if ((r = hashed_key(st, "cnt", name, k, sizeof(k))) != 0)
		return r;
	lens[1] = strlen(k);
	if ((r = store_call(st, 2, argv, lens, NULL, &rep)) != 0)
		return r;
	r = integer_of(rep, count);
	freeReplyObject(rep);
	return r;
}

int nl_store_minute_add(struct nl_store *st, const char *name, long long now, long long *this_minute,
                        long long *last_minute)
{
	char h[STORE_HASH_HEX + 1], k1[KEYLEN], k2[KEYLEN];
	const char *keys[] = {k1, k2};
	redisReply *rep = NULL;
	int r;

	if (!valid_key(name) || now < 60)
		return NL_ERR_INVALID;
	if ((r = store_hash(st, "min", name, h)) != 0)
		return r;
	snprintf(k1, sizeof(k1), "%smin:%s:%lld", st->prefix, h, now / 60);
	snprintf(k2, sizeof(k2), "%smin:%s:%lld", st->prefix, h, now / 60 - 1);
	if ((r = run(st, S_MINUTE, 2, keys, 0, NULL, &rep)) != 0)
		return r;
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
	    integer_of(rep->element[0], this_minute) == 0 && integer_of(rep->element[1], last_minute) == 0)
		r = 0;
	else
		r = rep->type == REDIS_REPLY_ERROR ? reply_error(rep) : NL_ERR_INVALID;
	freeReplyObject(rep);
	return r;
}

int nl_store_replay_note(struct nl_store *st, const char *request_id, unsigned ttl, bool *seen)
{
	char k[KEYLEN], ttls[16];
	const char *argv[] = {"SET", k, "1", "NX", "EX", ttls};
	size_t lens[6];
	redisReply *rep = NULL;
	int r;

	if (ttl == 0 || ttl > 86400)
		return NL_ERR_INVALID;
	if ((r = hashed_key(st, "rp", request_id, k, sizeof(k))) != 0)
		return r;
	snprintf(ttls, sizeof(ttls), "%u", ttl);
	for (int i = 0; i < 6; i++)
		lens[i] = strlen(argv[i]);
	if ((r = store_call(st, 6, argv, lens, NULL, &rep)) != 0)
		return r;
	if (rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "OK") == 0)
		*seen = false;
	else if (rep->type == REDIS_REPLY_NIL)
		*seen = true;
	else
		r = rep->type == REDIS_REPLY_ERROR ? reply_error(rep) : NL_ERR_INVALID;
	freeReplyObject(rep);
	return r;
}
