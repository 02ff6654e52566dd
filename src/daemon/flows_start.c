/* Making a flow: user codes and ids, the admission limits that no caller can use to lock a person
 * out (flows.h, nl_flows_start_from), and the clear functions of what the flows table hands out. */
#include "config.h"
#include "flows_int.h"
#include "nl_text.h"
#include "nl_err.h"
#include "nl_log.h"
#include "nl_time.h"
#include "nl_wipe.h"
#include "oidc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
int flows_random_user_code(char *out)
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

int flows_random_id(char *out)
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
		if (nl_text_is_control((unsigned char)user[i]))
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
			flows_remove_flow(fl, f);
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
	return remote(a) == remote(b) &&
	       strcmp(remote(a) ? a->rhost : a->tty, remote(b) ? b->rhost : b->tty) == 0;
}

static void evict(struct nl_flows *fl, struct flow *f, time_t now)
{
	flows_end_flow(fl, f, NL_FLOW_DENIED, NL_REASON_CANCELLED,
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
	uint64_t h = flows_khash(fl, IX_USER, user);
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
	uint64_t h = flows_khash(fl, IX_USER, nf->user);
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
		if ((r = flows_random_user_code(f->user_code)) != 0)
			return r;
		if (flows_ix_find(fl, IX_UCODE, f->user_code) == NULL)
			break;
	}
	if (tries == UNIQUE_TRIES)
		return NL_ERR_LIMIT;
	for (tries = 0; tries < UNIQUE_TRIES; tries++) {
		if ((r = flows_random_id(f->id)) != 0)
			return r;
		if (flows_ix_find(fl, IX_ID, f->id) == NULL)
			break;
	}
	if (tries == UNIQUE_TRIES)
		return NL_ERR_INTERNAL;
	/* 256-bit device codes and 192-bit states do not collide; the check costs nothing. */
	if (flows_ix_find(fl, IX_DC, f->device_code) != NULL || flows_ix_find(fl, IX_STATE, f->state) != NULL)
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
	if (!valid_user(o->user) || !valid_field(o->service) || !valid_field(o->rhost) ||
	    !valid_field(o->tty))
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
		flows_ix_link(fl, f, (enum ix)ix);
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
	flows_free_flow(f);
	/* also after a refusal: an eviction may have ended a flow */
	flows_notify(fl);
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
