/* The flows table of nhslogind: sign-ins in progress, indexed by a keyed hash of each secret and
 * then compared in constant time; limits, expiry, the user-code guessing limit and the wake-up
 * fd. One mutex guards everything; no call leaves the flows files while it is held but for logging.
 * This file: the table itself, its indexes, a flow's life and end, reading, cancelling and
 * housekeeping; flows_start.c makes flows, flows_phone.c holds what the phone and the terminal do. */
#include "config.h"
#include "flows_int.h"
#include "nl_text.h"
#include "nl_err.h"
#include "nl_log.h"
#include "nl_time.h"
#include "nl_wipe.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One line for a person: control characters become spaces, truncated to fit. */
static void copy_line(char *dst, size_t dstlen, const char *src)
{
	size_t i;
	for (i = 0; i + 1 < dstlen && src[i] != '\0'; i++)
		dst[i] = nl_text_is_control((unsigned char)src[i]) ? ' ' : src[i];
	dst[i] = '\0';
}

void flows_notify(struct nl_flows *fl)
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
uint64_t flows_khash(struct nl_flows *fl, enum ix ix, const char *s)
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

void flows_ix_link(struct nl_flows *fl, struct flow *f, enum ix ix)
{
	size_t b;
	if (f->linked[ix] || ix_key(f, ix) == NULL)
		return;
	f->hash[ix] = flows_khash(fl, ix, ix_key(f, ix));
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

struct flow *flows_ix_find(struct nl_flows *fl, enum ix ix, const char *key)
{
	uint64_t h;
	struct flow *f, *hit = NULL;

	if (key == NULL)
		return NULL;
	h = flows_khash(fl, ix, key);
	/* Compare every candidate of the bucket so the time does not say which one matched. */
	for (f = fl->bucket[ix][h & fl->mask]; f != NULL; f = f->next[ix])
		if (f->hash[ix] == h && nl_ct_streq(ix_key(f, ix), key) && hit == NULL)
			hit = f;
	return hit;
}

/* ---- flow life ---- */

void flows_free_flow(struct flow *f)
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

void flows_remove_flow(struct nl_flows *fl, struct flow *f)
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
	flows_free_flow(f);
}

/* Record f's wake-up tag so that the server wakes the waits parked on it (with the lock held). */
void flows_note_change(struct nl_flows *fl, const struct flow *f)
{
	if (fl->nchanged < NL_FLOWS_CHANGED_MAX)
		fl->changed[fl->nchanged++] = f->hash[IX_DC];
	else
		fl->changed_overflow = true;
}

/* End a pending flow: the secrets the bridge needed go at once; device_code and id stay so the
 * waiter can read the outcome. With logwhy (the endings this file causes: expired, cancelled) the
 * one log line of the outcome is written here; nl_flows_finish's caller writes its own. */
void flows_end_flow(struct nl_flows *fl, struct flow *f, enum nl_flow_state st, enum nl_reason reason,
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
	flows_note_change(fl, f);
	if (logwhy != NULL)
		nl_notice("flow %s: denied reason=%s user=%s (%s)", f->id, nl_reason_word(reason), f->user,
		          logwhy);
}

/* A pending flow past its time ends as expired; true if it did. */
bool flows_check_expiry(struct nl_flows *fl, struct flow *f, time_t now)
{
	if (f->st == NL_FLOW_PENDING && now >= f->expires_at) {
		flows_end_flow(fl, f, NL_FLOW_DENIED, NL_REASON_EXPIRED, NULL, now,
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
		flows_remove_flow(fl, fl->head);
	for (int ix = 0; ix < IX_N; ix++)
		free(fl->bucket[ix]);
	EVP_MD_CTX_free(fl->hbase);
	EVP_MD_CTX_free(fl->hwork);
	pthread_mutex_destroy(&fl->mu);
	nl_wipe(fl, sizeof(*fl));
	free(fl);
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
	if ((f = flows_ix_find(fl, IX_DC, device_code)) == NULL)
		goto unlock;
	changed = flows_check_expiry(fl, f, now);
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
		flows_remove_flow(fl, f);
	r = 0;
unlock:
	pthread_mutex_unlock(&fl->mu);
	if (changed)
		flows_notify(fl);
	return r;
}

bool nl_flows_pending_id(struct nl_flows *fl, const char *id)
{
	struct flow *f;
	bool pending = false;

	if (fl == NULL)
		return false;
	pthread_mutex_lock(&fl->mu);
	if ((f = flows_ix_find(fl, IX_ID, id)) != NULL)
		pending = f->st == NL_FLOW_PENDING && nl_now() < f->expires_at;
	pthread_mutex_unlock(&fl->mu);
	return pending;
}

static int cancel_by(struct nl_flows *fl, enum ix ix, const char *key, enum nl_flow_state *was)
{
	struct flow *f;
	bool changed = false;
	int r = NL_ERR_NOT_FOUND;

	if (fl == NULL)
		return NL_ERR_INTERNAL;
	pthread_mutex_lock(&fl->mu);
	if ((f = flows_ix_find(fl, ix, key)) != NULL) {
		if (was != NULL)
			*was = f->st;
		if (f->st == NL_FLOW_PENDING) {
			flows_end_flow(fl, f, NL_FLOW_DENIED, NL_REASON_CANCELLED, NULL, nl_now(),
			               ix == IX_ID ? "by an administrator" : "by the workstation");
			changed = true;
		}
		r = 0;
	}
	pthread_mutex_unlock(&fl->mu);
	if (changed)
		flows_notify(fl);
	return r;
}

int nl_flows_cancel(struct nl_flows *fl, const char *device_code)
{
	return cancel_by(fl, IX_DC, device_code, NULL);
}

int nl_flows_cancel_id(struct nl_flows *fl, const char *id, enum nl_flow_state *was)
{
	return cancel_by(fl, IX_ID, id, was);
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
			flows_end_flow(fl, f, NL_FLOW_DENIED, NL_REASON_CANCELLED, NULL, now,
			               "the workstation stopped waiting");
			n++;
		}
	}
	pthread_mutex_unlock(&fl->mu);
	if (n > 0)
		flows_notify(fl);
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
			flows_end_flow(fl, f, NL_FLOW_DENIED, reason, NULL, now, logwhy);
			n++;
		}
	}
	pthread_mutex_unlock(&fl->mu);
	if (n > 0)
		flows_notify(fl);
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
		if (flows_check_expiry(fl, f, now))
			n++;
		else if (f->st != NL_FLOW_PENDING && now - f->ended_at >= ENDED_GRACE &&
		         now - f->expires_at >= ENDED_GRACE)
			flows_remove_flow(fl, f);
	}
	pthread_mutex_unlock(&fl->mu);
	if (n > 0)
		flows_notify(fl);
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
	if ((f = flows_ix_find(fl, IX_ID, id)) != NULL) {
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
