/* The store's connections: addresses, Sentinel resolution, bounded replies, the pool and the retry
 * rule. Every wait is bounded by the calling operation's deadline. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nl_err.h"
#include "nl_log.h"
#include "nl_time.h"
#include "nl_wipe.h"
#include "store_int.h"

/* ---- Bounded replies: hiredis's own reply builders, refusing oversize strings and arrays ---- */

static pthread_mutex_t fn_mu = PTHREAD_MUTEX_INITIALIZER;
static const redisReplyObjectFunctions *orig_fn;
static redisReplyObjectFunctions bounded_fn;

static void *bounded_string(const redisReadTask *t, char *s, size_t len)
{
	if (len > STORE_REPLY_STR_MAX)
		return NULL; /* the reader reports it as an error; the connection is dropped */
	return orig_fn->createString(t, s, len);
}

static void *bounded_array(const redisReadTask *t, int n)
{
	if (n < 0 || n > STORE_REPLY_ELEM_MAX)
		return NULL;
	return orig_fn->createArray(t, n);
}

static void bound_replies(redisContext *c)
{
	pthread_mutex_lock(&fn_mu);
	if (orig_fn == NULL) {
		orig_fn = c->reader->fn;
		bounded_fn = *orig_fn;
		bounded_fn.createString = bounded_string;
		bounded_fn.createArray = bounded_array;
	}
	pthread_mutex_unlock(&fn_mu);
	c->reader->fn = &bounded_fn;
}

/* ---- One command on one connection, by a deadline ---- */

static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - nl_mono_ms();
		struct pollfd p = {.fd = fd, .events = events};
		int n;
		if (left <= 0)
			return NL_ERR_TIMEOUT;
		n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return NL_ERR_IO;
	}
}

int store_exec(redisContext *c, int argc, const char **argv, const size_t *lens, int64_t deadline,
               redisReply **out)
{
	int done = 0;
	void *rep = NULL;

	*out = NULL;
	if (redisAppendCommandArgv(c, argc, argv, lens) != REDIS_OK)
		return NL_ERR_NOMEM;
	while (!done) {
		if (wait_fd(c->fd, POLLOUT, deadline) != 0 || redisBufferWrite(c, &done) != REDIS_OK)
			return NL_ERR_UNAVAILABLE;
	}
	for (;;) {
		if (redisGetReplyFromReader(c, &rep) != REDIS_OK)
			return c->err == REDIS_ERR_OOM ? NL_ERR_TOO_BIG : NL_ERR_INVALID;
		if (rep != NULL)
			break;
		if (c->reader->len - c->reader->pos > STORE_READ_MAX)
			return NL_ERR_TOO_BIG;
		if (wait_fd(c->fd, POLLIN, deadline) != 0 || redisBufferRead(c) != REDIS_OK)
			return NL_ERR_UNAVAILABLE;
	}
	*out = rep;
	return 0;
}

/* A command from fixed strings, for connection set-up. */
static int exec_words(struct nl_store *st, redisContext *c, int64_t deadline, redisReply **out, int argc,
                      const char **argv)
{
	size_t lens[8];
	for (int i = 0; i < argc && i < 8; i++)
		lens[i] = strlen(argv[i]);
	atomic_fetch_add(&st->setup_commands, 1);
	return store_exec(c, argc, argv, lens, deadline, out);
}

/* ---- Connecting ---- */

static void addr_text(const struct store_addr *a, char *buf, size_t len)
{
	if (a->host[0] == '\0')
		snprintf(buf, len, "%s", a->path);
	else if (strchr(a->host, ':') != NULL)
		snprintf(buf, len, "[%s]:%d", a->host, a->port);
	else
		snprintf(buf, len, "%s:%d", a->host, a->port);
}

static redisContext *connect_addr(const struct nl_store *st, const struct store_addr *a, int64_t deadline)
{
	int64_t left = deadline - nl_mono_ms();
	struct timeval tv;
	redisContext *c;

	if (left <= 0)
		return NULL;
	if (left > st->connect_ms)
		left = st->connect_ms;
	tv.tv_sec = left / 1000;
	tv.tv_usec = (left % 1000) * 1000;
	c = a->host[0] == '\0' ? redisConnectUnixWithTimeout(a->path, tv)
	                       : redisConnectWithTimeout(a->host, a->port, tv);
	if (c == NULL)
		return NULL;
	if (c->err != 0) {
		nl_debug("redis %s: %s", a->host[0] ? a->host : a->path, c->errstr);
		redisFree(c);
		return NULL;
	}
	/* Writes are bounded by the socket timeout as well as by the poll before them. */
	tv.tv_sec = st->command_ms / 1000;
	tv.tv_usec = (st->command_ms % 1000) * 1000;
	redisSetTimeout(c, tv);
	bound_replies(c);
	return c;
}

/* Parse "HOST:PORT" or "[V6]:PORT" into a (port required unless defport > 0). */
static int parse_hostport(const char *s, int defport, struct store_addr *a)
{
	const char *hend, *colon;
	size_t hlen;
	char *end;
	long port = defport;

	memset(a, 0, sizeof(*a));
	if (s[0] == '[') {
		hend = strchr(s, ']');
		if (hend == NULL)
			return NL_ERR_INVALID;
		s++;
		colon = hend[1] == ':' ? hend + 1 : NULL;
		if (hend[1] != '\0' && colon == NULL)
			return NL_ERR_INVALID;
	} else {
		colon = strrchr(s, ':');
		hend = colon != NULL ? colon : s + strlen(s);
	}
	hlen = (size_t)(hend - s);
	if (hlen == 0 || hlen >= sizeof(a->host))
		return NL_ERR_INVALID;
	memcpy(a->host, s, hlen);
	if (colon != NULL) {
		errno = 0;
		port = strtol(colon + 1, &end, 10);
		if (errno != 0 || end == colon + 1 || *end != '\0')
			return NL_ERR_INVALID;
	}
	if (port < 1 || port > 65535)
		return NL_ERR_INVALID;
	a->port = (int)port;
	return 0;
}

/* AUTH and SELECT on a new data connection. */
static int setup_data(struct nl_store *st, redisContext *c, int64_t deadline)
{
	redisReply *rep = NULL;
	int r = 0;

	if (st->password != NULL) {
		const char *argv[] = {"AUTH", st->password};
		if ((r = exec_words(st, c, deadline, &rep, 2, argv)) != 0)
			return r;
		r = rep->type == REDIS_REPLY_ERROR ? NL_ERR_PERM : 0;
		if (r != 0)
			nl_err("redis: AUTH refused: %.80s", rep->str);
		freeReplyObject(rep);
		if (r != 0)
			return r;
	}
	if (st->db != 0) {
		char db[16];
		const char *argv[] = {"SELECT", db};
		snprintf(db, sizeof(db), "%d", st->db);
		if ((r = exec_words(st, c, deadline, &rep, 2, argv)) != 0)
			return r;
		r = rep->type == REDIS_REPLY_ERROR ? NL_ERR_CONFIG : 0;
		freeReplyObject(rep);
	}
	return r;
}

/* Is c a master (ROLE's first element)? */
static bool is_master(struct nl_store *st, redisContext *c, int64_t deadline)
{
	const char *argv[] = {"ROLE"};
	redisReply *rep = NULL;
	bool yes;

	if (exec_words(st, c, deadline, &rep, 1, argv) != 0)
		return false;
	yes = rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
	      rep->element[0]->type == REDIS_REPLY_STRING && strcmp(rep->element[0]->str, "master") == 0;
	freeReplyObject(rep);
	return yes;
}

/* Ask sentinel i for the master's address. */
static int ask_sentinel(struct nl_store *st, size_t i, int64_t deadline, struct store_addr *out)
{
	const char *argv[] = {"SENTINEL", "get-master-addr-by-name", st->master};
	redisContext *c = connect_addr(st, &st->sentinel[i], deadline);
	redisReply *rep = NULL;
	int r = NL_ERR_UNAVAILABLE;
	char hp[STORE_HOST_MAX + 16];

	if (c == NULL)
		return r;
	atomic_fetch_add(&st->connects, 1);
	if (exec_words(st, c, deadline, &rep, 3, argv) != 0)
		goto out;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_STRING || rep->element[1]->type != REDIS_REPLY_STRING ||
	    rep->element[0]->len >= STORE_HOST_MAX)
		goto out;
	snprintf(hp, sizeof(hp), strchr(rep->element[0]->str, ':') ? "[%s]:%s" : "%s:%s",
	         rep->element[0]->str, rep->element[1]->str);
	if (parse_hostport(hp, 0, out) == 0)
		r = 0;
out:
	freeReplyObject(rep);
	redisFree(c);
	return r;
}

static void note_in_use(struct nl_store *st, const struct store_addr *a, size_t good)
{
	pthread_mutex_lock(&st->amu);
	addr_text(a, st->in_use, sizeof(st->in_use));
	st->good_sentinel = good;
	pthread_mutex_unlock(&st->amu);
}

int store_connect(struct nl_store *st, int64_t deadline, redisContext **out)
{
	struct store_addr a;
	redisContext *c = NULL;
	size_t first;
	int r, why = NL_ERR_UNAVAILABLE;

	*out = NULL;
	if (st->nsentinels == 0) {
		if ((c = connect_addr(st, &st->direct, deadline)) == NULL)
			return NL_ERR_UNAVAILABLE;
		atomic_fetch_add(&st->connects, 1);
		if ((r = setup_data(st, c, deadline)) != 0) {
			redisFree(c);
			return r == NL_ERR_PERM || r == NL_ERR_CONFIG ? r : NL_ERR_UNAVAILABLE;
		}
		note_in_use(st, &st->direct, 0);
		*out = c;
		return 0;
	}
	pthread_mutex_lock(&st->amu);
	first = st->good_sentinel;
	pthread_mutex_unlock(&st->amu);
	for (size_t n = 0; n < st->nsentinels; n++) {
		size_t i = (first + n) % st->nsentinels;
		if (ask_sentinel(st, i, deadline, &a) != 0)
			continue;
		if ((c = connect_addr(st, &a, deadline)) == NULL)
			continue;
		atomic_fetch_add(&st->connects, 1);
		/* A sentinel may name a master that has just been demoted: ROLE decides. */
		if ((r = setup_data(st, c, deadline)) == 0 && is_master(st, c, deadline)) {
			note_in_use(st, &a, i);
			*out = c;
			return 0;
		}
		if (r == NL_ERR_PERM || r == NL_ERR_CONFIG)
			why = r;
		redisFree(c);
	}
	return why;
}

/* ---- The pool and the retry rule ---- */

static bool reply_says(const redisReply *rep, const char *prefix)
{
	return rep->type == REDIS_REPLY_ERROR && rep->str != NULL &&
	       strncmp(rep->str, prefix, strlen(prefix)) == 0;
}

/* One attempt on slot s: connect if needed, send, and resend an EVALSHA as EVAL on NOSCRIPT. */
static int attempt(struct nl_store *st, struct store_slot *s, int argc, const char **argv, const size_t *lens,
                   const char *script, int64_t deadline, redisReply **out)
{
	int r;

	if (s->c == NULL && (r = store_connect(st, deadline, &s->c)) != 0)
		return r;
	atomic_fetch_add(&st->commands, 1);
	if ((r = store_exec(s->c, argc, argv, lens, deadline, out)) != 0)
		return r;
	if (script != NULL && reply_says(*out, "NOSCRIPT")) {
		const char *eargv[STORE_ARGV_MAX];
		size_t elens[STORE_ARGV_MAX];
		if (argc > STORE_ARGV_MAX)
			return NL_ERR_INTERNAL;
		memcpy(eargv, argv, sizeof(*argv) * (size_t)argc);
		memcpy(elens, lens, sizeof(*lens) * (size_t)argc);
		eargv[0] = "EVAL";
		elens[0] = 4;
		eargv[1] = script;
		elens[1] = strlen(script);
		freeReplyObject(*out);
		atomic_fetch_add(&st->commands, 1);
		return store_exec(s->c, argc, eargv, elens, deadline, out);
	}
	return 0;
}

/* A free connection of the pool, or the next one in turn as soon as it is free, by deadline (a call
 * stuck on a hung server must not make the calls queued behind it wait past their own deadline). */
static struct store_slot *take_slot(struct nl_store *st, int64_t deadline)
{
	unsigned first = atomic_fetch_add(&st->next_slot, 1) % st->nslots;
	int64_t left = deadline - nl_mono_ms();
	struct timespec abs;

	for (unsigned i = 0; i < st->nslots; i++) {
		struct store_slot *s = &st->slot[(first + i) % st->nslots];
		if (pthread_mutex_trylock(&s->mu) == 0)
			return s;
	}
	if (left <= 0)
		return NULL;
	clock_gettime(CLOCK_REALTIME, &abs);
	abs.tv_sec += left / 1000;
	abs.tv_nsec += (left % 1000) * 1000000L;
	if (abs.tv_nsec >= 1000000000L) {
		abs.tv_sec++;
		abs.tv_nsec -= 1000000000L;
	}
	return pthread_mutex_timedlock(&st->slot[first].mu, &abs) == 0 ? &st->slot[first] : NULL;
}

int store_call(struct nl_store *st, int argc, const char **argv, const size_t *lens, const char *script,
               redisReply **out)
{
	int64_t deadline = nl_mono_ms() + st->command_ms;
	struct store_slot *s;
	int r = NL_ERR_UNAVAILABLE;

	*out = NULL;
	if ((s = take_slot(st, deadline)) == NULL) {
		atomic_fetch_add(&st->unavailable, 1);
		return NL_ERR_UNAVAILABLE;
	}
	for (int try = 0; try < 2; try++) {
		r = attempt(st, s, argc, argv, lens, script, deadline, out);
		if (r == 0 && !reply_says(*out, "READONLY") && !reply_says(*out, "LOADING") &&
		    !reply_says(*out, "MASTERDOWN"))
			break;
		/* A failed connection, or a server that is no longer a writable primary: drop it, and
		 * (through the sentinels, if any) find the primary again. */
		if (r == 0) {
			freeReplyObject(*out);
			*out = NULL;
			r = NL_ERR_UNAVAILABLE;
		}
		if (s->c != NULL) {
			redisFree(s->c);
			s->c = NULL;
		}
		if (r == NL_ERR_TOO_BIG || r == NL_ERR_INVALID || r == NL_ERR_NOMEM || r == NL_ERR_PERM ||
		    r == NL_ERR_CONFIG || r == NL_ERR_INTERNAL)
			break;
		r = NL_ERR_UNAVAILABLE;
		if (nl_mono_ms() >= deadline)
			break;
	}
	pthread_mutex_unlock(&s->mu);
	if (r == 0 && (reply_says(*out, "NOAUTH") || reply_says(*out, "WRONGPASS"))) {
		nl_err("redis: %.80s (store password)", (*out)->str);
		freeReplyObject(*out);
		*out = NULL;
		r = NL_ERR_PERM;
	}
	if (r == NL_ERR_UNAVAILABLE)
		atomic_fetch_add(&st->unavailable, 1);
	return r;
}

/* ---- Keyed hashes ---- */

int store_hash(const struct nl_store *st, const char *kind, const char *value, char *out)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	size_t klen = strlen(kind), vlen = strlen(value);
	unsigned char buf[16 + NL_STORE_KEY_MAX + 1];
	static const char hex[] = "0123456789abcdef";

	if (klen >= 16 || vlen > NL_STORE_KEY_MAX)
		return NL_ERR_INVALID;
	memcpy(buf, kind, klen + 1);
	memcpy(buf + klen + 1, value, vlen);
	if (HMAC(EVP_sha256(), st->hkey, (int)st->hkey_len, buf, klen + 1 + vlen, mac, &maclen) == NULL ||
	    maclen < STORE_HASH_HEX / 2) {
		nl_wipe(buf, sizeof(buf));
		return NL_ERR_INTERNAL;
	}
	nl_wipe(buf, sizeof(buf));
	for (size_t i = 0; i < STORE_HASH_HEX / 2; i++) {
		out[2 * i] = hex[mac[i] >> 4];
		out[2 * i + 1] = hex[mac[i] & 15];
	}
	out[STORE_HASH_HEX] = '\0';
	nl_wipe(mac, sizeof(mac));
	return 0;
}

/* ---- Open, close, status ---- */

static int parse_url(struct nl_store *st, const char *url, char *err, size_t errlen)
{
	char hp[STORE_HOST_MAX + 16];
	const char *slash;
	size_t n;

	if (strncmp(url, "unix:", 5) == 0) {
		if (strlen(url + 5) == 0 || strlen(url + 5) >= sizeof(st->direct.path) || url[5] != '/')
			return nl_errf(err, errlen, NL_ERR_CONFIG,
			               "store url: unix:PATH wants an absolute path");
		snprintf(st->direct.path, sizeof(st->direct.path), "%s", url + 5);
		return 0;
	}
	if (strncmp(url, "redis://", 8) != 0)
		return nl_errf(err, errlen, NL_ERR_CONFIG, "store url: redis://HOST:PORT/DB or unix:PATH");
	url += 8;
	slash = strchr(url, '/');
	n = slash != NULL ? (size_t)(slash - url) : strlen(url);
	if (n >= sizeof(hp))
		return nl_errf(err, errlen, NL_ERR_CONFIG, "store url: host too long");
	memcpy(hp, url, n);
	hp[n] = '\0';
	if (parse_hostport(hp, 6379, &st->direct) != 0)
		return nl_errf(err, errlen, NL_ERR_CONFIG, "store url: bad host or port");
	if (slash != NULL && slash[1] != '\0') {
		char *end;
		long db;
		errno = 0;
		db = strtol(slash + 1, &end, 10);
		if (errno != 0 || *end != '\0' || db < 0 || db > 1000)
			return nl_errf(err, errlen, NL_ERR_CONFIG, "store url: bad database number");
		st->db = (int)db;
	}
	return 0;
}

static int parse_sentinels(struct nl_store *st, const char *list, char *err, size_t errlen)
{
	char buf[NL_STORE_SENTINELS * (STORE_HOST_MAX + 8)], *save = NULL, *tok;

	if (strlen(list) >= sizeof(buf))
		return nl_errf(err, errlen, NL_ERR_CONFIG, "store sentinels: list too long");
	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ", ", &save); tok != NULL; tok = strtok_r(NULL, ", ", &save)) {
		if (st->nsentinels == NL_STORE_SENTINELS)
			return nl_errf(err, errlen, NL_ERR_CONFIG, "store sentinels: at most %d",
			               NL_STORE_SENTINELS);
		if (parse_hostport(tok, 26379, &st->sentinel[st->nsentinels]) != 0)
			return nl_errf(err, errlen, NL_ERR_CONFIG, "store sentinels: bad HOST:PORT '%.64s'",
			               tok);
		st->nsentinels++;
	}
	if (st->nsentinels == 0)
		return nl_errf(err, errlen, NL_ERR_CONFIG, "store sentinels: empty list");
	return 0;
}

static int check_config(const struct nl_store_config *cfg, char *err, size_t errlen)
{
	const char *p = cfg->prefix != NULL ? cfg->prefix : "nl:";

	if ((cfg->url != NULL) == (cfg->sentinels != NULL))
		return nl_errf(err, errlen, NL_ERR_CONFIG, "store: set either url or sentinels");
	if (cfg->sentinels != NULL &&
	    (cfg->master == NULL || cfg->master[0] == '\0' || strlen(cfg->master) >= 128))
		return nl_errf(err, errlen, NL_ERR_CONFIG, "store: sentinels need a master name");
	if (cfg->hash_key == NULL || cfg->hash_key_len < NL_STORE_HKEY_MIN || cfg->hash_key_len > 64)
		return nl_errf(err, errlen, NL_ERR_CONFIG, "store: the index key must be %d..64 bytes",
		               NL_STORE_HKEY_MIN);
	if (strlen(p) >= 64 || strcspn(p, " \t\r\n") != strlen(p))
		return nl_errf(err, errlen, NL_ERR_CONFIG, "store: bad key prefix");
	if (cfg->pool > STORE_POOL_MAX)
		return nl_errf(err, errlen, NL_ERR_CONFIG, "store: at most %d connections", STORE_POOL_MAX);
	return 0;
}

int nl_store_open(const struct nl_store_config *cfg, struct nl_store **out, char *err, size_t errlen)
{
	struct nl_store *st = NULL;
	int r;

	*out = NULL;
	if ((r = check_config(cfg, err, errlen)) != 0)
		return r;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return nl_errf(err, errlen, NL_ERR_NOMEM, "store: out of memory");
	pthread_mutex_init(&st->amu, NULL);
	st->nslots = cfg->pool != 0 ? cfg->pool : 4;
	for (unsigned i = 0; i < st->nslots; i++)
		pthread_mutex_init(&st->slot[i].mu, NULL);
	if (cfg->url != NULL)
		r = parse_url(st, cfg->url, err, errlen);
	else
		r = parse_sentinels(st, cfg->sentinels, err, errlen);
	if (r != 0)
		goto out;
	if (cfg->master != NULL)
		snprintf(st->master, sizeof(st->master), "%s", cfg->master);
	if (cfg->password != NULL && (st->password = strdup(cfg->password)) == NULL) {
		r = nl_errf(err, errlen, NL_ERR_NOMEM, "store: out of memory");
		goto out;
	}
	memcpy(st->hkey, cfg->hash_key, cfg->hash_key_len);
	st->hkey_len = cfg->hash_key_len;
	snprintf(st->prefix, sizeof(st->prefix), "%s", cfg->prefix != NULL ? cfg->prefix : "nl:");
	st->connect_ms = cfg->connect_timeout_ms != 0 ? cfg->connect_timeout_ms : 300;
	st->command_ms = cfg->command_timeout_ms != 0 ? cfg->command_timeout_ms : 1000;
	snprintf(st->in_use, sizeof(st->in_use), "(not connected)");
	*out = st;
	st = NULL;
out:
	nl_store_close(st);
	return r;
}

void nl_store_close(struct nl_store *st)
{
	if (st == NULL)
		return;
	for (unsigned i = 0; i < st->nslots; i++) {
		if (st->slot[i].c != NULL)
			redisFree(st->slot[i].c);
		pthread_mutex_destroy(&st->slot[i].mu);
	}
	pthread_mutex_destroy(&st->amu);
	nl_free_secret(st->password);
	nl_wipe(st->hkey, sizeof(st->hkey));
	free(st);
}

void nl_store_counters(struct nl_store *st, struct nl_store_status *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->role, sizeof(out->role), "unknown");
	pthread_mutex_lock(&st->amu);
	snprintf(out->addr, sizeof(out->addr), "%s", st->in_use);
	pthread_mutex_unlock(&st->amu);
	out->commands = atomic_load(&st->commands);
	out->setup_commands = atomic_load(&st->setup_commands);
	out->connects = atomic_load(&st->connects);
	out->unavailable = atomic_load(&st->unavailable);
	out->limited = atomic_load(&st->limited);
}

int nl_store_instances(struct nl_store *st, long long *n)
{
	char chan[96];
	const char *argv[] = {"PUBSUB", "NUMSUB", chan};
	size_t lens[3] = {6, 6, 0};
	redisReply *rep = NULL;
	int r;

	*n = 0;
	snprintf(chan, sizeof(chan), "%s%s", st->prefix, NL_STORE_CHANNEL);
	lens[2] = strlen(chan);
	if ((r = store_call(st, 3, argv, lens, NULL, &rep)) != 0)
		return r;
	/* [channel, subscribers] */
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
	    rep->element[1]->type == REDIS_REPLY_INTEGER)
		*n = rep->element[1]->integer;
	else
		r = NL_ERR_INVALID;
	freeReplyObject(rep);
	return r;
}

int nl_store_status(struct nl_store *st, struct nl_store_status *out)
{
	const char *argv[] = {"ROLE"};
	size_t lens[] = {4};
	redisReply *rep = NULL;
	int r = store_call(st, 1, argv, lens, NULL, &rep);

	nl_store_counters(st, out);
	if (r != 0)
		return r;
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
	    rep->element[0]->type == REDIS_REPLY_STRING)
		snprintf(out->role, sizeof(out->role), "%s", rep->element[0]->str);
	else
		r = NL_ERR_INVALID;
	freeReplyObject(rep);
	return r;
}
