/* The flows table of nhslogind: sign-ins in progress, indexed by a keyed hash of each secret and
 * then compared in constant time; limits, expiry, the user-code guessing limit and the wake-up
 * fd. One mutex guards everything; no call leaves this file while it is held but for logging. */
#include "config.h"
#include "flows.h"
#include "nl_err.h"
#include "nl_log.h"
#include "nl_time.h"
#include "nl_wipe.h"
#include "oidc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The guessing limit on user codes (the arithmetic is in nhslogin.conf(5), "THE WRONG-CODE LIMIT").
 * Per client (an address; an IPv6 address counts by its /64): cfg->code_attempts wrong codes in a
 * window of GUESS_WINDOW seconds, then that client is refused - the right code too - until the
 * window passes. That part is hard: a client past it gets no answer about any code.
 * Globally: GUESS_GLOBAL_PER_MIN wrong codes in a minute from everyone mean a distributed guesser is
 * at work; until a minute passes below that, every client's allowance drops to GUESS_PRESSURE_MAX.
 * The global count never refuses anyone by itself: a phone that has not entered wrong codes itself
 * always has its code looked at, so no number of other addresses can lock a person out.
 * Clients are remembered in an open-addressed table of GUESS_CLIENTS entries (keyed hash, at most
 * GUESS_PROBE slots looked at); when a new client finds no free slot, the entry whose window began
 * longest ago among those slots is forgotten. */
#define GUESS_WINDOW         600
#define GUESS_CLIENTS        8192 /* a power of two */
#define GUESS_PROBE          16
#define GUESS_CLIENT_MAX     64
#define GUESS_GLOBAL_PER_MIN 100
#define GUESS_PRESSURE_MAX   3
/* An ended flow stays readable (for the waiter to learn the outcome) at least this long after it
 * ended and after its expiry time: a person who signed in on the phone and is slow to press Enter
 * still gets the approval. Its owner collecting it, or closing, removes it sooner. */
#define ENDED_GRACE  60
#define UNIQUE_TRIES 32

enum ix { IX_DC = 0, IX_STATE, IX_UCODE, IX_ID, IX_USER, IX_N };

struct flow {
	struct flow *next[IX_N]; /* hash bucket chains */
	uint64_t hash[IX_N];
	bool linked[IX_N];
	struct flow *prev_all, *next_all; /* every flow, oldest first */
	char id[NL_FLOW_ID_LEN];
	char *device_code, *state, *nonce, *verifier, *challenge;
	char user_code[NL_USER_CODE_LEN + 1]; /* canonical, no dash */
	char user[NL_USER_MAX + 1];
	char service[NL_FIELD_MAX], rhost[NL_FIELD_MAX], tty[NL_FIELD_MAX];
	uint64_t owner, seq; /* seq: start order, for "oldest" */
	bool caller_supplied;
	time_t expires_at, ended_at;
	enum nl_flow_state st;
	enum nl_reason reason;
	char message[NL_FIELD_MAX];
	bool taken; /* the callback has claimed the state */
	bool number_match, want_number; /* number matching: asked for; signed in, number not typed yet */
	unsigned number;                 /* what the phone shows, 10..99, while want_number */
	time_t started_at;
	unsigned char browser[NL_FLOW_BROWSER_LEN]; /* SHA-256 of the bound browser's cookie */
	bool bound;                                 /* a browser continued to NHS login */
	unsigned foreign_callbacks;                 /* callbacks refused for another browser */
};

/* Wrong numbers typed for one account: the times of the last three. */
#define WRONG_USERS  64
#define WRONG_WINDOW 3600
struct wrong_number {
	char user[NL_USER_MAX + 1];
	time_t at[3];
};

struct guess {
	char client[GUESS_CLIENT_MAX];
	time_t start;
	unsigned count;
};

struct nl_flows {
	pthread_mutex_t mu;
	const struct nl_config *cfg;
	int notify_fd;
	unsigned char hkey[32];
	EVP_MD_CTX *hbase, *hwork; /* SHA-256 with hkey absorbed; scratch */
	struct flow **bucket[IX_N];
	size_t mask;
	struct flow *head, *tail;
	size_t count, pending;
	struct guess guesses[GUESS_CLIENTS];
	time_t gwin_start;      /* this minute of the global count */
	unsigned gcount, gprev; /* wrong codes from everyone this minute and the minute before */
	uint64_t next_seq;
	struct wrong_number wrong[WRONG_USERS]; /* recent wrong-number endings, by account */
	uint64_t changed[NL_FLOWS_CHANGED_MAX]; /* tags of flows that ended, for the server */
	size_t nchanged;
	bool changed_overflow;
};

/* One line for a person: control characters become spaces, truncated to fit. */
static void copy_line(char *dst, size_t dstlen, const char *src)
{
	size_t i;
	for (i = 0; i + 1 < dstlen && src[i] != '\0'; i++)
		dst[i] = ((unsigned char)src[i] < 0x20 || src[i] == 0x7f) ? ' ' : src[i];
	dst[i] = '\0';
}

static void notify(struct nl_flows *fl)
{
	uint64_t one = 1;
	if (fl->notify_fd >= 0) {
		ssize_t w = write(fl->notify_fd, &one, sizeof(one));
		(void)w; /* a full eventfd/pipe already means "wake up" */
	}
}

/* ---- indexes ---- */

static const char *ix_key(const struct flow *f, enum ix ix)
{
	switch (ix) {
	case IX_DC:
		return f->device_code;
	case IX_STATE:
		return f->state;
	case IX_UCODE:
		return f->user_code;
	case IX_ID:
		return f->id;
	case IX_USER:
		return f->user;
	case IX_N:
		break;
	}
	return NULL;
}

/* Keyed SHA-256 prefix: bucket positions reveal nothing about the secret and cannot be steered. The
 * key is absorbed once into hbase; each hash copies it (called with the lock held). On a digest
 * failure every key lands in bucket 0, which is slow but still correct. */
static uint64_t khash(struct nl_flows *fl, enum ix ix, const char *s)
{
	unsigned char md[EVP_MAX_MD_SIZE], tag = (unsigned char)ix;
	unsigned int mdlen = 0;
	uint64_t h = 0;

	if (fl->hbase != NULL && fl->hwork != NULL && EVP_MD_CTX_copy_ex(fl->hwork, fl->hbase) == 1 &&
	    EVP_DigestUpdate(fl->hwork, &tag, 1) == 1 && EVP_DigestUpdate(fl->hwork, s, strlen(s)) == 1 &&
	    EVP_DigestFinal_ex(fl->hwork, md, &mdlen) == 1 && mdlen >= 8)
		memcpy(&h, md, sizeof(h));
	nl_wipe(md, sizeof(md));
	return h;
}

static void ix_link(struct nl_flows *fl, struct flow *f, enum ix ix)
{
	size_t b;
	if (f->linked[ix] || ix_key(f, ix) == NULL)
		return;
	f->hash[ix] = khash(fl, ix, ix_key(f, ix));
	b = f->hash[ix] & fl->mask;
	f->next[ix] = fl->bucket[ix][b];
	fl->bucket[ix][b] = f;
	f->linked[ix] = true;
}

static void ix_unlink(struct nl_flows *fl, struct flow *f, enum ix ix)
{
	struct flow **pp;
	if (!f->linked[ix])
		return;
	for (pp = &fl->bucket[ix][f->hash[ix] & fl->mask]; *pp != NULL; pp = &(*pp)->next[ix]) {
		if (*pp == f) {
			*pp = f->next[ix];
			break;
		}
	}
	f->next[ix] = NULL;
	f->linked[ix] = false;
}

static struct flow *ix_find(struct nl_flows *fl, enum ix ix, const char *key)
{
	uint64_t h;
	struct flow *f, *hit = NULL;

	if (key == NULL)
		return NULL;
	h = khash(fl, ix, key);
	/* Compare every candidate of the bucket so the time does not say which one matched. */
	for (f = fl->bucket[ix][h & fl->mask]; f != NULL; f = f->next[ix])
		if (f->hash[ix] == h && nl_ct_streq(ix_key(f, ix), key) && hit == NULL)
			hit = f;
	return hit;
}

/* ---- flow life ---- */

static void flow_free(struct flow *f)
{
	if (f == NULL)
		return;
	nl_free_secret(f->device_code);
	nl_free_secret(f->state);
	nl_free_secret(f->nonce);
	nl_free_secret(f->verifier);
	nl_free_secret(f->challenge);
	nl_wipe(f, sizeof(*f));
	free(f);
}

static void flow_remove(struct nl_flows *fl, struct flow *f)
{
	for (int ix = 0; ix < IX_N; ix++)
		ix_unlink(fl, f, (enum ix)ix);
	if (f->prev_all != NULL)
		f->prev_all->next_all = f->next_all;
	else
		fl->head = f->next_all;
	if (f->next_all != NULL)
		f->next_all->prev_all = f->prev_all;
	else
		fl->tail = f->prev_all;
	fl->count--;
	if (f->st == NL_FLOW_PENDING)
		fl->pending--;
	flow_free(f);
}

/* Record f's wake-up tag so that the server wakes the waits parked on it (with the lock held). */
static void note_change(struct nl_flows *fl, const struct flow *f)
{
	if (fl->nchanged < NL_FLOWS_CHANGED_MAX)
		fl->changed[fl->nchanged++] = f->hash[IX_DC];
	else
		fl->changed_overflow = true;
}

/* End a pending flow: the secrets the bridge needed go at once; device_code and id stay so the
 * waiter can read the outcome. With logwhy (the endings this file causes: expired, cancelled) the
 * one log line of the outcome is written here; nl_flows_finish's caller writes its own. */
static void flow_end(struct nl_flows *fl, struct flow *f, enum nl_flow_state st, enum nl_reason reason,
                     const char *message, time_t now, const char *logwhy)
{
	if (f->st != NL_FLOW_PENDING)
		return;
	ix_unlink(fl, f, IX_STATE);
	ix_unlink(fl, f, IX_UCODE);
	ix_unlink(fl, f, IX_USER);
	nl_free_secret(f->state);
	nl_free_secret(f->nonce);
	nl_free_secret(f->verifier);
	nl_free_secret(f->challenge);
	f->state = f->nonce = f->verifier = f->challenge = NULL;
	f->st = st;
	f->reason = reason;
	f->ended_at = now;
	if (st == NL_FLOW_APPROVED)
		f->message[0] = '\0';
	else if (message != NULL && message[0] != '\0')
		copy_line(f->message, sizeof(f->message), message);
	else
		nl_reason_flow_message(reason, f->user, f->message, sizeof(f->message));
	fl->pending--;
	note_change(fl, f);
	if (logwhy != NULL)
		nl_notice("flow %s: denied reason=%s user=%s (%s)", f->id, nl_reason_word(reason),
		          f->user, logwhy);
}

/* A pending flow past its time ends as expired; true if it did. */
static bool check_expiry(struct nl_flows *fl, struct flow *f, time_t now)
{
	if (f->st == NL_FLOW_PENDING && now >= f->expires_at) {
		flow_end(fl, f, NL_FLOW_DENIED, NL_REASON_EXPIRED, NULL, now,
		         "the code was not used in time");
		return true;
	}
	return false;
}

int nl_flows_new(const struct nl_config *cfg, int notify_fd, struct nl_flows **out)
{
	struct nl_flows *fl;
	size_t n = 64;
	int r = NL_ERR_NOMEM;

	if (cfg == NULL || out == NULL)
		return NL_ERR_INTERNAL;
	if ((fl = calloc(1, sizeof(*fl))) == NULL)
		return NL_ERR_NOMEM;
	while (n < cfg->max_flows && n < ((size_t)1 << 20))
		n <<= 1;
	fl->mask = n - 1;
	fl->cfg = cfg;
	fl->notify_fd = notify_fd;
	for (int ix = 0; ix < IX_N; ix++)
		if ((fl->bucket[ix] = calloc(n, sizeof(struct flow *))) == NULL)
			goto out;
	if ((r = nl_random_bytes(fl->hkey, sizeof(fl->hkey))) != 0)
		goto out;
	if ((fl->hbase = EVP_MD_CTX_new()) == NULL || (fl->hwork = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(fl->hbase, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(fl->hbase, fl->hkey, sizeof(fl->hkey)) != 1) {
		r = NL_ERR_INTERNAL;
		goto out;
	}
	if (pthread_mutex_init(&fl->mu, NULL) != 0) {
		r = NL_ERR_INTERNAL;
		goto out;
	}
	*out = fl;
	fl = NULL;
	r = 0;
out:
	if (fl != NULL) {
		EVP_MD_CTX_free(fl->hbase);
		EVP_MD_CTX_free(fl->hwork);
		for (int ix = 0; ix < IX_N; ix++)
			free(fl->bucket[ix]);
		nl_wipe(fl, sizeof(*fl));
		free(fl);
	}
	return r;
}

void nl_flows_free(struct nl_flows *fl)
{
	if (fl == NULL)
		return;
	while (fl->head != NULL)
		flow_remove(fl, fl->head);
	for (int ix = 0; ix < IX_N; ix++)
		free(fl->bucket[ix]);
	EVP_MD_CTX_free(fl->hbase);
	EVP_MD_CTX_free(fl->hwork);
	pthread_mutex_destroy(&fl->mu);
	nl_wipe(fl, sizeof(*fl));
	free(fl);
}

/* ---- codes ---- */

int nl_user_code_normalize(const char *typed, char *out)
{
	static const char alphabet[] = NL_USER_CODE_ALPHABET;
	size_t n = 0, i;

	if (typed == NULL || out == NULL)
		return NL_ERR_INVALID;
	for (i = 0; typed[i] != '\0'; i++) {
		char c = typed[i];
		if (i > 64)
			return NL_ERR_INVALID;
		if (c == ' ' || c == '-' || c == '\t')
			continue;
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (strchr(alphabet, c) == NULL || c == '\0' || n >= NL_USER_CODE_LEN)
			return NL_ERR_INVALID;
		out[n++] = c;
	}
	if (n != NL_USER_CODE_LEN)
		return NL_ERR_INVALID;
	out[n] = '\0';
	return 0;
}

/* NL_USER_CODE_LEN characters drawn uniformly: bytes at or above the largest multiple of the
 * alphabet size are thrown away. */
static int random_user_code(char *out)
{
	static const char alphabet[] = NL_USER_CODE_ALPHABET;
	const unsigned k = sizeof(alphabet) - 1, limit = 256 - 256 % k;
	unsigned char raw[32];
	size_t n = 0;
	int r = 0;

	while (n < NL_USER_CODE_LEN) {
		if ((r = nl_random_bytes(raw, sizeof(raw))) != 0)
			break;
		for (size_t i = 0; i < sizeof(raw) && n < NL_USER_CODE_LEN; i++)
			if (raw[i] < limit)
				out[n++] = alphabet[raw[i] % k];
	}
	out[n] = '\0';
	nl_wipe(raw, sizeof(raw));
	return r;
}

static int random_id(char *out)
{
	unsigned char raw[8];
	int r;
	if ((r = nl_random_bytes(raw, sizeof(raw))) != 0)
		return r;
	snprintf(out, NL_FLOW_ID_LEN, "f-%02x%02x%02x%02x%02x%02x%02x%02x", raw[0], raw[1], raw[2], raw[3],
	         raw[4], raw[5], raw[6], raw[7]);
	return 0;
}

static bool valid_user(const char *user)
{
	size_t n;
	if (user == NULL || (n = strnlen(user, NL_USER_MAX + 1)) == 0 || n > NL_USER_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)user[i] < 0x20 || user[i] == 0x7f)
			return false;
	return true;
}

/* Up to NL_FIELD_MAX bytes (doc/protocol.md); kept truncated to what the struct holds. */
static bool valid_field(const char *s)
{
	return s == NULL || strnlen(s, NL_FIELD_MAX + 1) <= NL_FIELD_MAX;
}

/* Room for one more flow: the oldest ended flow gives way when the table is full. */
static bool make_room(struct nl_flows *fl)
{
	if (fl->count < fl->cfg->max_flows)
		return true;
	for (struct flow *f = fl->head; f != NULL; f = f->next_all) {
		if (f->st != NL_FLOW_PENDING) {
			flow_remove(fl, f);
			return true;
		}
	}
	return false;
}

static bool remote(const struct flow *f)
{
	return f->rhost[0] != '\0';
}

/* A remote sign-in's origin is its host; a local one's its terminal. */
static bool same_origin(const struct flow *a, const struct flow *b)
{
	return remote(a) == remote(b) && strcmp(remote(a) ? a->rhost : a->tty, remote(b) ? b->rhost : b->tty) == 0;
}

static void evict(struct nl_flows *fl, struct flow *f, time_t now)
{
	flow_end(fl, f, NL_FLOW_DENIED, NL_REASON_CANCELLED,
	         "This sign-in was ended to make room for one at the computer itself.", now,
	         "evicted: room for a sign-in at the computer itself");
}

/* The oldest remote pending flow of user (NULL: any user), or NULL. */
static struct flow *oldest_remote(struct nl_flows *fl, const char *user)
{
	if (user == NULL) {
		for (struct flow *f = fl->head; f != NULL; f = f->next_all)
			if (f->st == NL_FLOW_PENDING && remote(f))
				return f;
		return NULL;
	}
	uint64_t h = khash(fl, IX_USER, user);
	struct flow *best = NULL;
	for (struct flow *f = fl->bucket[IX_USER][h & fl->mask]; f != NULL; f = f->next[IX_USER])
		if (f->hash[IX_USER] == h && strcmp(f->user, user) == 0 && remote(f) &&
		    (best == NULL || f->seq < best->seq))
			best = f;
	return best;
}

/* Room for the new pending flow nf (with the lock held): see nl_flows_start_from. */
static int admit(struct nl_flows *fl, const struct flow *nf, time_t now)
{
	uint64_t h = khash(fl, IX_USER, nf->user);
	size_t here = 0, total = 0, per = fl->cfg->max_flows_per_user;
	struct flow *v;

	/* The user index holds pending flows only. */
	for (struct flow *f = fl->bucket[IX_USER][h & fl->mask]; f != NULL; f = f->next[IX_USER]) {
		if (f->hash[IX_USER] != h || strcmp(f->user, nf->user) != 0)
			continue;
		total++;
		if (same_origin(f, nf))
			here++;
	}
	if (here >= per)
		return NL_ERR_LIMIT;
	if (total >= per * NL_FLOWS_USER_FACTOR) {
		if (remote(nf) || (v = oldest_remote(fl, nf->user)) == NULL)
			return NL_ERR_UNAVAILABLE;
		evict(fl, v, now);
	}
	if (make_room(fl))
		return 0;
	if (remote(nf) || (v = oldest_remote(fl, NULL)) == NULL)
		return NL_ERR_UNAVAILABLE;
	evict(fl, v, now);
	return make_room(fl) ? 0 : NL_ERR_UNAVAILABLE;
}

/* Fill a new flow's secrets and unique codes (called with the lock held). */
static int flow_make(struct nl_flows *fl, struct flow *f)
{
	int r, tries;

	if ((r = nl_random_token(32, &f->device_code)) != 0 || (r = nl_random_token(24, &f->state)) != 0 ||
	    (r = nl_random_token(24, &f->nonce)) != 0 || (r = nl_pkce_pair(&f->verifier, &f->challenge)) != 0)
		return r;
	for (tries = 0; tries < UNIQUE_TRIES; tries++) {
		if ((r = random_user_code(f->user_code)) != 0)
			return r;
		if (ix_find(fl, IX_UCODE, f->user_code) == NULL)
			break;
	}
	if (tries == UNIQUE_TRIES)
		return NL_ERR_LIMIT;
	for (tries = 0; tries < UNIQUE_TRIES; tries++) {
		if ((r = random_id(f->id)) != 0)
			return r;
		if (ix_find(fl, IX_ID, f->id) == NULL)
			break;
	}
	if (tries == UNIQUE_TRIES)
		return NL_ERR_INTERNAL;
	/* 256-bit device codes and 192-bit states do not collide; the check costs nothing. */
	if (ix_find(fl, IX_DC, f->device_code) != NULL || ix_find(fl, IX_STATE, f->state) != NULL)
		return NL_ERR_INTERNAL;
	return 0;
}

int nl_flows_start_from(struct nl_flows *fl, const struct nl_flow_origin *o, struct nl_flow_started *out)
{
	struct flow *f = NULL;
	time_t now = nl_now();
	unsigned ttl;
	int r = NL_ERR_INTERNAL;

	if (fl == NULL || o == NULL || out == NULL)
		return NL_ERR_INTERNAL;
	if (!valid_user(o->user) || !valid_field(o->service) || !valid_field(o->rhost) || !valid_field(o->tty))
		return NL_ERR_INVALID;
	ttl = o->ttl != 0 ? o->ttl : fl->cfg->flow_ttl;
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return NL_ERR_NOMEM;
	snprintf(f->user, sizeof(f->user), "%s", o->user);
	snprintf(f->service, sizeof(f->service), "%s", o->service != NULL ? o->service : "");
	snprintf(f->rhost, sizeof(f->rhost), "%s", o->rhost != NULL ? o->rhost : "");
	snprintf(f->tty, sizeof(f->tty), "%s", o->tty != NULL ? o->tty : "");
	f->owner = o->owner;
	f->caller_supplied = o->caller_supplied;
	f->number_match = o->number_match;
	f->started_at = now;
	f->expires_at = now + (time_t)ttl;
	f->st = NL_FLOW_PENDING;

	pthread_mutex_lock(&fl->mu);
	if ((r = admit(fl, f, now)) != 0)
		goto unlock;
	if ((r = flow_make(fl, f)) != 0)
		goto unlock;
	if ((out->device_code = strdup(f->device_code)) == NULL) {
		r = NL_ERR_NOMEM;
		goto unlock;
	}
	f->seq = ++fl->next_seq;
	for (int ix = 0; ix < IX_N; ix++)
		ix_link(fl, f, (enum ix)ix);
	f->prev_all = fl->tail;
	if (fl->tail != NULL)
		fl->tail->next_all = f;
	else
		fl->head = f;
	fl->tail = f;
	fl->count++;
	fl->pending++;
	memcpy(out->id, f->id, sizeof(out->id));
	snprintf(out->user_code, sizeof(out->user_code), "%.4s-%.4s", f->user_code, f->user_code + 4);
	out->expires_in = (int)ttl;
	nl_info("flow %s: started user=%s service=%s rhost=%s tty=%s%s", f->id, f->user,
	        f->service[0] ? f->service : "-", f->rhost[0] ? f->rhost : "-", f->tty[0] ? f->tty : "-",
	        f->caller_supplied ? " (service, rhost and tty supplied by a non-root caller)" : "");
	f = NULL;
	r = 0;
unlock:
	pthread_mutex_unlock(&fl->mu);
	flow_free(f);
	/* also after a refusal: an eviction may have ended a flow */
	notify(fl);
	return r;
}

int nl_flows_start_ttl(struct nl_flows *fl, const char *user, const char *service, const char *rhost,
                       const char *tty, uint64_t owner, unsigned ttl, struct nl_flow_started *out)
{
	const struct nl_flow_origin o = {
	    .user = user, .service = service, .rhost = rhost, .tty = tty, .owner = owner, .ttl = ttl};
	return nl_flows_start_from(fl, &o, out);
}

int nl_flows_start(struct nl_flows *fl, const char *user, const char *service, const char *rhost,
                   const char *tty, uint64_t owner, struct nl_flow_started *out)
{
	return nl_flows_start_ttl(fl, user, service, rhost, tty, owner, 0, out);
}

void nl_flow_started_clear(struct nl_flow_started *s)
{
	if (s == NULL)
		return;
	nl_free_secret(s->device_code);
	nl_wipe(s, sizeof(*s));
}

void nl_flow_authz_clear(struct nl_flow_authz *a)
{
	if (a == NULL)
		return;
	nl_free_secret(a->state);
	nl_free_secret(a->nonce);
	nl_free_secret(a->code_challenge);
	nl_wipe(a, sizeof(*a));
}

void nl_flow_exchange_clear(struct nl_flow_exchange *x)
{
	if (x == NULL)
		return;
	nl_free_secret(x->nonce);
	nl_free_secret(x->code_verifier);
	nl_wipe(x, sizeof(*x));
}

/* ---- reading and ending ---- */

int nl_flows_status(struct nl_flows *fl, const char *device_code, struct nl_flow_status *out)
{
	struct flow *f;
	time_t now = nl_now();
	bool changed = false;
	int r = NL_ERR_NOT_FOUND;

	if (fl == NULL || out == NULL)
		return NL_ERR_INTERNAL;
	pthread_mutex_lock(&fl->mu);
	if ((f = ix_find(fl, IX_DC, device_code)) == NULL)
		goto unlock;
	changed = check_expiry(fl, f, now);
	memset(out, 0, sizeof(*out));
	out->state = f->st;
	out->reason = f->reason;
	out->expires_in = f->st == NL_FLOW_PENDING ? (int)(f->expires_at - now) : 0;
	out->want_number = f->st == NL_FLOW_PENDING && f->want_number;
	snprintf(out->user, sizeof(out->user), "%s", f->user);
	snprintf(out->message, sizeof(out->message), "%s", f->message);
	out->tag = f->hash[IX_DC];
	/* The outcome is handed out once; then the flow is gone. */
	if (f->st != NL_FLOW_PENDING)
		flow_remove(fl, f);
	r = 0;
unlock:
	pthread_mutex_unlock(&fl->mu);
	if (changed)
		notify(fl);
	return r;
}

bool nl_flows_pending_id(struct nl_flows *fl, const char *id)
{
	struct flow *f;
	bool pending = false;

	if (fl == NULL)
		return false;
	pthread_mutex_lock(&fl->mu);
	if ((f = ix_find(fl, IX_ID, id)) != NULL)
		pending = f->st == NL_FLOW_PENDING && nl_now() < f->expires_at;
	pthread_mutex_unlock(&fl->mu);
	return pending;
}

static int cancel_by(struct nl_flows *fl, enum ix ix, const char *key)
{
	struct flow *f;
	bool changed = false;
	int r = NL_ERR_NOT_FOUND;

	if (fl == NULL)
		return NL_ERR_INTERNAL;
	pthread_mutex_lock(&fl->mu);
	if ((f = ix_find(fl, ix, key)) != NULL) {
		if (f->st == NL_FLOW_PENDING) {
			flow_end(fl, f, NL_FLOW_DENIED, NL_REASON_CANCELLED, NULL, nl_now(),
			         ix == IX_ID ? "by an administrator" : "by the workstation");
			changed = true;
		}
		r = 0;
	}
	pthread_mutex_unlock(&fl->mu);
	if (changed)
		notify(fl);
	return r;
}

int nl_flows_cancel(struct nl_flows *fl, const char *device_code)
{
	return cancel_by(fl, IX_DC, device_code);
}

int nl_flows_cancel_id(struct nl_flows *fl, const char *id)
{
	return cancel_by(fl, IX_ID, id);
}

void nl_flows_cancel_owner(struct nl_flows *fl, uint64_t owner)
{
	time_t now = nl_now();
	size_t n = 0;

	if (fl == NULL)
		return;
	pthread_mutex_lock(&fl->mu);
	for (struct flow *f = fl->head; f != NULL; f = f->next_all) {
		if (f->owner == owner && f->st == NL_FLOW_PENDING) {
			flow_end(fl, f, NL_FLOW_DENIED, NL_REASON_CANCELLED, NULL, now,
			         "the workstation stopped waiting");
			n++;
		}
	}
	pthread_mutex_unlock(&fl->mu);
	if (n > 0)
		notify(fl);
}

size_t nl_flows_end_all(struct nl_flows *fl, enum nl_reason reason, const char *logwhy)
{
	time_t now = nl_now();
	size_t n = 0;

	if (fl == NULL)
		return 0;
	pthread_mutex_lock(&fl->mu);
	for (struct flow *f = fl->head; f != NULL; f = f->next_all) {
		if (f->st == NL_FLOW_PENDING) {
			flow_end(fl, f, NL_FLOW_DENIED, reason, NULL, now, logwhy);
			n++;
		}
	}
	pthread_mutex_unlock(&fl->mu);
	if (n > 0)
		notify(fl);
	return n;
}

bool nl_flows_owner_active(struct nl_flows *fl, uint64_t owner)
{
	bool found = false;

	if (fl == NULL)
		return false;
	pthread_mutex_lock(&fl->mu);
	for (struct flow *f = fl->head; f != NULL && !found; f = f->next_all)
		found = f->owner == owner;
	pthread_mutex_unlock(&fl->mu);
	return found;
}

/* ---- number matching ---- */

/* Signed in at NHS login as the flow's user: now the terminal must type the phone's number. The
 * waiter is woken (its wait answers "number"); the flow lives at least NL_FLOW_NUMBER_GRACE more. */
static int want_number(struct nl_flows *fl, struct flow *f, time_t now)
{
	unsigned char b;
	int r;

	if ((r = nl_random_bytes(&b, 1)) != 0)
		return r;
	f->number = 10 + b % 90; /* the bias of 256 % 90 does not matter for a check typed by a person */
	f->want_number = true;
	if (f->expires_at < now + NL_FLOW_NUMBER_GRACE)
		f->expires_at = now + NL_FLOW_NUMBER_GRACE;
	note_change(fl, f);
	return 0; /* nl_signin_complete logs it */
}

int nl_flows_number_of(struct nl_flows *fl, const char *id, unsigned *number)
{
	struct flow *f;
	int r = NL_ERR_NOT_FOUND;

	if (fl == NULL || id == NULL || number == NULL)
		return NL_ERR_INTERNAL;
	pthread_mutex_lock(&fl->mu);
	if ((f = ix_find(fl, IX_ID, id)) != NULL && f->st == NL_FLOW_PENDING && f->want_number) {
		*number = f->number;
		r = 0;
	}
	pthread_mutex_unlock(&fl->mu);
	return r;
}

/* A wrong number for user at now: logged; the third within WRONG_WINDOW at warning level. */
static void note_wrong_number(struct nl_flows *fl, const struct flow *f, time_t now)
{
	struct wrong_number *w = NULL, *oldest = &fl->wrong[0];
	unsigned recent = 0;

	for (size_t i = 0; i < WRONG_USERS && w == NULL; i++) {
		if (strcmp(fl->wrong[i].user, f->user) == 0)
			w = &fl->wrong[i];
		else if (fl->wrong[i].at[2] < oldest->at[2])
			oldest = &fl->wrong[i];
	}
	if (w == NULL) {
		w = oldest;
		memset(w, 0, sizeof(*w));
		snprintf(w->user, sizeof(w->user), "%s", f->user);
	}
	w->at[0] = w->at[1];
	w->at[1] = w->at[2];
	w->at[2] = now;
	for (int i = 0; i < 3; i++)
		recent += w->at[i] != 0 && now - w->at[i] < WRONG_WINDOW;
	nl_notice("flow %s: denied reason=wrong_number user=%s service=%s rhost=%s (the number typed at the "
	          "terminal was not the phone's: a possible phishing attempt)",
	          f->id, f->user, f->service[0] ? f->service : "-", f->rhost[0] ? f->rhost : "-");
	if (recent >= 3)
		nl_warn("user %s: %u sign-ins ended with a wrong number within an hour: someone may be "
		        "phishing this account",
		        f->user, recent);
}

int nl_flows_enter_number(struct nl_flows *fl, const char *device_code, const char *typed)
{
	struct flow *f;
	time_t now = nl_now();
	char want[4];
	bool changed = false;
	int r = NL_ERR_NOT_FOUND;

	if (fl == NULL || device_code == NULL || typed == NULL)
		return NL_ERR_INTERNAL;
	pthread_mutex_lock(&fl->mu);
	if ((f = ix_find(fl, IX_DC, device_code)) == NULL)
		goto unlock;
	if ((changed = check_expiry(fl, f, now)) || f->st != NL_FLOW_PENDING) {
		r = NL_ERR_EXPIRED;
		goto unlock;
	}
	if (!f->want_number) {
		r = NL_ERR_INVALID;
		goto unlock;
	}
	snprintf(want, sizeof(want), "%u", f->number);
	changed = true;
	if (strlen(typed) == strlen(want) && CRYPTO_memcmp(typed, want, strlen(want)) == 0) {
		flow_end(fl, f, NL_FLOW_APPROVED, NL_REASON_NONE, NULL, now, NULL);
		nl_notice("flow %s: approved user=%s (the number matched)", f->id, f->user);
		r = 0;
	} else {
		note_wrong_number(fl, f, now);
		flow_end(fl, f, NL_FLOW_DENIED, NL_REASON_WRONG_NUMBER, NULL, now, NULL);
		r = NL_ERR_DENIED;
	}
	nl_wipe(want, sizeof(want));
unlock:
	pthread_mutex_unlock(&fl->mu);
	if (changed)
		notify(fl);
	return r;
}

/* Logs nothing when it ends the flow: the caller (nl_signin_complete) made the decision and writes
 * the outcome's one line with the reason's detail. An expiry found here is logged by check_expiry
 * as usual. */
int nl_flows_finish(struct nl_flows *fl, const char *id, enum nl_reason reason, const char *message)
{
	struct flow *f;
	time_t now = nl_now();
	int r = NL_ERR_NOT_FOUND;
	bool changed = false;

	if (fl == NULL)
		return NL_ERR_INTERNAL;
	pthread_mutex_lock(&fl->mu);
	if ((f = ix_find(fl, IX_ID, id)) == NULL)
		goto unlock;
	if (check_expiry(fl, f, now) || f->st != NL_FLOW_PENDING) {
		changed = true;
		r = NL_ERR_EXPIRED;
		goto unlock;
	}
	r = 0;
	if (reason == NL_REASON_NONE && f->number_match)
		r = want_number(fl, f, now);
	else if (reason == NL_REASON_NONE)
		flow_end(fl, f, NL_FLOW_APPROVED, NL_REASON_NONE, NULL, now, NULL);
	else
		flow_end(fl, f, NL_FLOW_DENIED, reason, message, now, NULL);
	changed = true;
unlock:
	pthread_mutex_unlock(&fl->mu);
	if (changed)
		notify(fl);
	return r;
}

/* ---- the bridge side ---- */

/* The key a client's wrong codes count under: its address as given; an IPv6 address by its /64
 * (one subscriber, or one attacker, commonly holds a whole /64); an IPv4-mapped one as IPv4. */
static void guess_key(const char *client, char *out, size_t outlen)
{
	struct in6_addr a6;
	char buf[INET6_ADDRSTRLEN];

	if (inet_pton(AF_INET6, client, &a6) == 1) {
		if (IN6_IS_ADDR_V4MAPPED(&a6)) {
			if (inet_ntop(AF_INET, &a6.s6_addr[12], buf, sizeof(buf)) != NULL) {
				snprintf(out, outlen, "%s", buf);
				return;
			}
		} else {
			memset(&a6.s6_addr[8], 0, 8);
			if (inet_ntop(AF_INET6, &a6, buf, sizeof(buf)) != NULL) {
				snprintf(out, outlen, "%s/64", buf);
				return;
			}
		}
	}
	snprintf(out, outlen, "%.*s", GUESS_CLIENT_MAX - 1, client);
}

/* The entry of key, among the GUESS_PROBE slots its keyed hash names; with create, a new one in
 * an empty or stale slot, else in place of the entry whose window began longest ago. */
static struct guess *guess_find(struct nl_flows *fl, const char *key, bool create, time_t now)
{
	size_t start = (size_t)khash(fl, IX_N, key);
	struct guess *victim = NULL;
	bool victim_stale = false;

	for (size_t i = 0; i < GUESS_PROBE; i++) {
		struct guess *g = &fl->guesses[(start + i) & (GUESS_CLIENTS - 1)];
		bool stale = g->client[0] == '\0' || now - g->start >= GUESS_WINDOW || now < g->start;
		if (g->client[0] != '\0' && strcmp(g->client, key) == 0)
			return g;
		if (victim == NULL || (stale && !victim_stale) ||
		    (stale == victim_stale && g->start < victim->start)) {
			victim = g;
			victim_stale = stale;
		}
	}
	if (!create)
		return NULL;
	memset(victim, 0, sizeof(*victim));
	snprintf(victim->client, sizeof(victim->client), "%s", key);
	victim->start = now;
	return victim;
}

/* The global count by the minute: this minute's and the last one's. */
static void guess_tick(struct nl_flows *fl, time_t now)
{
	if (now < fl->gwin_start || now - fl->gwin_start >= 120) {
		fl->gprev = 0;
		fl->gcount = 0;
		fl->gwin_start = now;
	} else if (now - fl->gwin_start >= 60) {
		fl->gprev = fl->gcount;
		fl->gcount = 0;
		fl->gwin_start = now;
	}
}

static bool guess_pressure(const struct nl_flows *fl)
{
	return fl->gcount >= GUESS_GLOBAL_PER_MIN || fl->gprev >= GUESS_GLOBAL_PER_MIN;
}

/* Wrong codes a client may enter in its window: code_attempts, fewer while many are guessing. */
static unsigned guess_allowance(const struct nl_flows *fl)
{
	unsigned n = fl->cfg->code_attempts;
	return guess_pressure(fl) && n > GUESS_PRESSURE_MAX ? GUESS_PRESSURE_MAX : n;
}

static bool guess_blocked(struct nl_flows *fl, const char *key, time_t now)
{
	struct guess *g;

	guess_tick(fl, now);
	g = guess_find(fl, key, false, now);
	return g != NULL && now >= g->start && now - g->start < GUESS_WINDOW &&
	       g->count >= guess_allowance(fl);
}

static void guess_record(struct nl_flows *fl, const char *key, time_t now)
{
	struct guess *g = guess_find(fl, key, true, now);
	bool was_pressure = guess_pressure(fl);

	fl->gcount++;
	if (now < g->start || now - g->start >= GUESS_WINDOW) {
		g->start = now;
		g->count = 0;
	}
	g->count++;
	/* one line when a limit is reached, not one per refused attempt (a guesser would flood the log) */
	if (g->count == guess_allowance(fl))
		nl_warn("user codes from %.64s refused for up to %d minutes: %u wrong codes", key,
		        GUESS_WINDOW / 60, g->count);
	if (!was_pressure && guess_pressure(fl))
		nl_warn("%u wrong user codes in a minute from everyone: each address may now enter %u wrong "
		        "codes in %d minutes until it is quieter (a right code is still accepted)",
		        fl->gcount, guess_allowance(fl), GUESS_WINDOW / 60);
}

int nl_flows_begin_authz(struct nl_flows *fl, const char *user_code, const char *client,
                         struct nl_flow_authz *out)
{
	char code[NL_USER_CODE_LEN + 1], key[GUESS_CLIENT_MAX];
	struct flow *f;
	time_t now = nl_now();
	struct nl_flow_authz a = {0};
	bool changed = false;
	int r = NL_ERR_INTERNAL;

	if (fl == NULL || out == NULL)
		return NL_ERR_INTERNAL;
	guess_key(client != NULL && client[0] != '\0' ? client : "?", key, sizeof(key));
	pthread_mutex_lock(&fl->mu);
	/* Before the code is looked at: a client past its own limit learns nothing about any code. */
	if (guess_blocked(fl, key, now)) {
		nl_debug("user code attempt from %.64s refused: too many wrong codes", key);
		r = NL_ERR_LIMIT;
		goto unlock;
	}
	if (nl_user_code_normalize(user_code, code) != 0) {
		/* Not a possible code: it cannot hit anything, so it is not counted. */
		r = NL_ERR_INVALID;
		goto unlock;
	}
	if ((f = ix_find(fl, IX_UCODE, code)) == NULL) {
		guess_record(fl, key, now);
		r = NL_ERR_NOT_FOUND;
		goto unlock;
	}
	if ((changed = check_expiry(fl, f, now)) || f->taken) {
		r = NL_ERR_EXPIRED;
		goto unlock;
	}
	memcpy(a.id, f->id, sizeof(a.id));
	if ((a.state = strdup(f->state)) == NULL || (a.nonce = strdup(f->nonce)) == NULL ||
	    (a.code_challenge = strdup(f->challenge)) == NULL) {
		r = NL_ERR_NOMEM;
		goto unlock;
	}
	*out = a;
	memset(&a, 0, sizeof(a));
	r = 0;
unlock:
	pthread_mutex_unlock(&fl->mu);
	nl_flow_authz_clear(&a);
	nl_wipe(code, sizeof(code));
	if (changed)
		notify(fl);
	return r;
}

/* Hand the callback what the exchange needs and mark the state used (with the lock held). */
static int take_locked(struct nl_flows *fl, struct flow *f, time_t now, bool *changed,
                       struct nl_flow_exchange *out)
{
	struct nl_flow_exchange x = {0};

	if ((*changed = check_expiry(fl, f, now)))
		return NL_ERR_EXPIRED;
	memcpy(x.id, f->id, sizeof(x.id));
	snprintf(x.user, sizeof(x.user), "%s", f->user);
	if ((x.nonce = strdup(f->nonce)) == NULL || (x.code_verifier = strdup(f->verifier)) == NULL) {
		nl_flow_exchange_clear(&x);
		return NL_ERR_NOMEM;
	}
	f->taken = true;
	*out = x;
	return 0;
}

int nl_flows_take_state(struct nl_flows *fl, const char *state, struct nl_flow_exchange *out)
{
	struct flow *f;
	time_t now = nl_now();
	bool changed = false;
	int r = NL_ERR_NOT_FOUND;

	if (fl == NULL || out == NULL)
		return NL_ERR_INTERNAL;
	pthread_mutex_lock(&fl->mu);
	if ((f = ix_find(fl, IX_STATE, state)) != NULL && !f->taken)
		r = take_locked(fl, f, now, &changed, out);
	pthread_mutex_unlock(&fl->mu);
	if (changed)
		notify(fl);
	return r;
}

/* ---- the confirmation page and the browser binding ---- */

/* The pending flow id names, for the confirmation page (with the lock held). */
static int confirmable(struct nl_flows *fl, const char *id, time_t now, bool *changed, struct flow **out)
{
	struct flow *f = ix_find(fl, IX_ID, id);

	if (f == NULL)
		return NL_ERR_NOT_FOUND;
	if ((*changed = check_expiry(fl, f, now)) || f->st != NL_FLOW_PENDING || f->taken)
		return NL_ERR_EXPIRED;
	*out = f;
	return 0;
}

int nl_flows_view(struct nl_flows *fl, const char *id, struct nl_flow_view *out)
{
	struct flow *f = NULL;
	bool changed = false;
	int r;

	if (fl == NULL || id == NULL || out == NULL)
		return NL_ERR_INTERNAL;
	pthread_mutex_lock(&fl->mu);
	if ((r = confirmable(fl, id, nl_now(), &changed, &f)) == 0) {
		memset(out, 0, sizeof(*out));
		memcpy(out->id, f->id, sizeof(out->id));
		snprintf(out->user, sizeof(out->user), "%s", f->user);
		snprintf(out->service, sizeof(out->service), "%s", f->service);
		snprintf(out->rhost, sizeof(out->rhost), "%s", f->rhost);
		snprintf(out->tty, sizeof(out->tty), "%s", f->tty);
		out->caller_supplied = f->caller_supplied;
		out->started_at = f->started_at;
		snprintf(out->user_code, sizeof(out->user_code), "%.4s-%.4s", f->user_code, f->user_code + 4);
	}
	pthread_mutex_unlock(&fl->mu);
	if (changed)
		notify(fl);
	return r;
}

int nl_flows_bind_browser(struct nl_flows *fl, const char *id, const unsigned char *browser,
                          struct nl_flow_authz *out)
{
	struct flow *f = NULL;
	struct nl_flow_authz a = {0};
	bool changed = false;
	int r;

	if (fl == NULL || id == NULL || browser == NULL || out == NULL)
		return NL_ERR_INTERNAL;
	pthread_mutex_lock(&fl->mu);
	if ((r = confirmable(fl, id, nl_now(), &changed, &f)) != 0)
		goto unlock;
	/* One sign-in, one browser: the first to continue keeps it (another cannot take it over). */
	if (f->bound && !nl_ct_equal(f->browser, browser, NL_FLOW_BROWSER_LEN)) {
		r = NL_ERR_PERM;
		goto unlock;
	}
	memcpy(a.id, f->id, sizeof(a.id));
	if ((a.state = strdup(f->state)) == NULL || (a.nonce = strdup(f->nonce)) == NULL ||
	    (a.code_challenge = strdup(f->challenge)) == NULL) {
		r = NL_ERR_NOMEM;
		goto unlock;
	}
	memcpy(f->browser, browser, NL_FLOW_BROWSER_LEN);
	f->bound = true;
	*out = a;
	memset(&a, 0, sizeof(a));
unlock:
	pthread_mutex_unlock(&fl->mu);
	nl_flow_authz_clear(&a);
	if (changed)
		notify(fl);
	return r;
}

int nl_flows_refuse(struct nl_flows *fl, const char *id, const char *client)
{
	struct flow *f = NULL;
	time_t now = nl_now();
	char why[128];
	bool changed = false;
	int r;

	if (fl == NULL || id == NULL)
		return NL_ERR_INTERNAL;
	snprintf(why, sizeof(why), "refused at the confirmation page from %.64s",
	         client != NULL && client[0] != '\0' ? client : "?");
	pthread_mutex_lock(&fl->mu);
	if ((r = confirmable(fl, id, now, &changed, &f)) == 0) {
		flow_end(fl, f, NL_FLOW_DENIED, NL_REASON_DENIED,
		         "The sign-in was refused on the phone: \"This was not me\".", now, why);
		changed = true;
	}
	pthread_mutex_unlock(&fl->mu);
	if (changed)
		notify(fl);
	return r;
}

int nl_flows_take_state_bound(struct nl_flows *fl, const char *state, const unsigned char *browser,
                              const char *client, struct nl_flow_exchange *out)
{
	struct flow *f;
	time_t now = nl_now();
	bool changed = false;
	int r = NL_ERR_NOT_FOUND;

	if (fl == NULL || out == NULL)
		return NL_ERR_INTERNAL;
	pthread_mutex_lock(&fl->mu);
	if ((f = ix_find(fl, IX_STATE, state)) == NULL || f->taken)
		goto unlock;
	/* Before anything that could end the flow: a callback from another browser changes nothing. */
	if (browser == NULL || !f->bound || !nl_ct_equal(f->browser, browser, NL_FLOW_BROWSER_LEN)) {
		memset(out, 0, sizeof(*out));
		memcpy(out->id, f->id, sizeof(out->id));
		if (f->foreign_callbacks++ == 0)
			nl_notice(
			    "flow %s: callback from %.64s %s: refused; the sign-in goes on (a stolen or "
			    "forwarded sign-in link?)",
			    f->id, client != NULL ? client : "?",
			    !f->bound         ? "before any browser continued from the confirmation page"
			    : browser == NULL ? "without the sign-in cookie of the browser that continued"
			                      : "in another browser than the one that continued");
		else
			nl_debug("flow %s: another callback from a browser that did not continue: refused",
			         f->id);
		r = NL_ERR_PERM;
		goto unlock;
	}
	r = take_locked(fl, f, now, &changed, out);
unlock:
	pthread_mutex_unlock(&fl->mu);
	if (changed)
		notify(fl);
	return r;
}

/* ---- housekeeping ---- */

size_t nl_flows_take_changed(struct nl_flows *fl, uint64_t *tags, size_t max, bool *overflow)
{
	size_t n;

	*overflow = false;
	if (fl == NULL || tags == NULL)
		return 0;
	pthread_mutex_lock(&fl->mu);
	n = fl->nchanged < max ? fl->nchanged : max;
	/* Hand out the newest; the rest stay for the next call. */
	memcpy(tags, fl->changed + (fl->nchanged - n), n * sizeof(*tags));
	fl->nchanged -= n;
	*overflow = fl->changed_overflow;
	fl->changed_overflow = false;
	pthread_mutex_unlock(&fl->mu);
	return n;
}

size_t nl_flows_sweep(struct nl_flows *fl)
{
	time_t now = nl_now();
	size_t n = 0;
	struct flow *f, *next;

	if (fl == NULL)
		return 0;
	pthread_mutex_lock(&fl->mu);
	for (f = fl->head; f != NULL; f = next) {
		next = f->next_all;
		if (check_expiry(fl, f, now))
			n++;
		else if (f->st != NL_FLOW_PENDING && now - f->ended_at >= ENDED_GRACE &&
		         now - f->expires_at >= ENDED_GRACE)
			flow_remove(fl, f);
	}
	pthread_mutex_unlock(&fl->mu);
	if (n > 0)
		notify(fl);
	return n;
}

size_t nl_flows_count(struct nl_flows *fl)
{
	size_t n;
	if (fl == NULL)
		return 0;
	pthread_mutex_lock(&fl->mu);
	n = fl->pending;
	pthread_mutex_unlock(&fl->mu);
	return n;
}

size_t nl_flows_list(struct nl_flows *fl, struct nl_flow_info *out, size_t max)
{
	time_t now = nl_now();
	size_t n = 0;

	if (fl == NULL || out == NULL)
		return 0;
	pthread_mutex_lock(&fl->mu);
	for (struct flow *f = fl->head; f != NULL && n < max; f = f->next_all, n++) {
		struct nl_flow_info *i = &out[n];
		memset(i, 0, sizeof(*i));
		memcpy(i->id, f->id, sizeof(i->id));
		snprintf(i->user, sizeof(i->user), "%s", f->user);
		snprintf(i->service, sizeof(i->service), "%s", f->service);
		snprintf(i->rhost, sizeof(i->rhost), "%s", f->rhost);
		i->state = f->st;
		i->expires_in =
		    f->st == NL_FLOW_PENDING && f->expires_at > now ? (int)(f->expires_at - now) : 0;
	}
	pthread_mutex_unlock(&fl->mu);
	return n;
}

int nl_flows_where(struct nl_flows *fl, const char *id, struct nl_flow_where *out)
{
	struct flow *f;
	int r = NL_ERR_NOT_FOUND;

	if (fl == NULL || id == NULL || out == NULL)
		return NL_ERR_INVALID;
	pthread_mutex_lock(&fl->mu);
	if ((f = ix_find(fl, IX_ID, id)) != NULL) {
		memset(out, 0, sizeof(*out));
		snprintf(out->service, sizeof(out->service), "%s", f->service);
		snprintf(out->rhost, sizeof(out->rhost), "%s", f->rhost);
		snprintf(out->tty, sizeof(out->tty), "%s", f->tty);
		out->owner = f->owner;
		out->caller_supplied = f->caller_supplied;
		out->number_match = f->number_match;
		r = 0;
	}
	pthread_mutex_unlock(&fl->mu);
	return r;
}
