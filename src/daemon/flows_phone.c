/* What the phone and the terminal do to a pending flow: number matching and the end of a sign-in
 * (nl_flows_finish), the code entry with its guessing limit, the callback's state, the
 * confirmation page and the browser binding. */
#include "config.h"
#include "flows_int.h"
#include "nl_err.h"
#include "nl_log.h"
#include "nl_time.h"
#include "nl_wipe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- number matching ---- */

/* Signed in at NHS login as the flow's user: now the terminal must type the phone's number. The
 * waiter is woken (its wait answers "number"); the flow lives at least NL_FLOW_NUMBER_GRACE more. */
static int want_number(struct nl_flows *fl, struct flow *f, time_t now)
{
	unsigned char b;
	int r;

	if (f->preset != 0) {
		f->number = f->preset; /* an agent's flow: the phone is the bridge's, and shows its number */
	} else {
		if ((r = nl_random_bytes(&b, 1)) != 0)
			return r;
		f->number = 10 + b % 90; /* 256 % 90's bias does not matter for a check typed by a person */
	}
	f->want_number = true;
	if (f->expires_at < now + NL_FLOW_NUMBER_GRACE)
		f->expires_at = now + NL_FLOW_NUMBER_GRACE;
	flows_note_change(fl, f);
	return 0; /* nl_signin_complete logs it */
}

int nl_flows_set_number(struct nl_flows *fl, const char *id, unsigned number)
{
	struct flow *f;
	int r = NL_ERR_NOT_FOUND;

	if (fl == NULL || id == NULL)
		return NL_ERR_INTERNAL;
	if (number < 10 || number > 99)
		return NL_ERR_INVALID;
	pthread_mutex_lock(&fl->mu);
	if ((f = flows_ix_find(fl, IX_ID, id)) != NULL && f->st == NL_FLOW_PENDING) {
		r = NL_ERR_INVALID;
		if (f->number_match && !f->want_number) {
			f->preset = number;
			r = 0;
		}
	}
	pthread_mutex_unlock(&fl->mu);
	return r;
}

int nl_flows_number_of(struct nl_flows *fl, const char *id, unsigned *number)
{
	struct flow *f;
	int r = NL_ERR_NOT_FOUND;

	if (fl == NULL || id == NULL || number == NULL)
		return NL_ERR_INTERNAL;
	pthread_mutex_lock(&fl->mu);
	if ((f = flows_ix_find(fl, IX_ID, id)) != NULL && f->st == NL_FLOW_PENDING && f->want_number) {
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
	nl_notice("flow %s: denied reason=%s user=%s service=%s rhost=%s (the number typed at the terminal "
	          "was not the phone's: a possible phishing attempt)",
	          f->id, nl_reason_word(NL_REASON_WRONG_NUMBER), f->user, f->service[0] ? f->service : "-",
	          f->rhost[0] ? f->rhost : "-");
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
	if ((f = flows_ix_find(fl, IX_DC, device_code)) == NULL)
		goto unlock;
	if ((changed = flows_check_expiry(fl, f, now)) || f->st != NL_FLOW_PENDING) {
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
		flows_end_flow(fl, f, NL_FLOW_APPROVED, NL_REASON_NONE, NULL, now, NULL);
		nl_notice("flow %s: approved user=%s (the number matched)", f->id, f->user);
		r = 0;
	} else {
		note_wrong_number(fl, f, now);
		flows_end_flow(fl, f, NL_FLOW_DENIED, NL_REASON_WRONG_NUMBER, NULL, now, NULL);
		r = NL_ERR_DENIED;
	}
	nl_wipe(want, sizeof(want));
unlock:
	pthread_mutex_unlock(&fl->mu);
	if (changed)
		flows_notify(fl);
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
	if (fl->st != NULL)
		return flows_store_finish(fl, id, reason, message);
	pthread_mutex_lock(&fl->mu);
	if ((f = flows_ix_find(fl, IX_ID, id)) == NULL)
		goto unlock;
	if (flows_check_expiry(fl, f, now) || f->st != NL_FLOW_PENDING) {
		changed = true;
		r = NL_ERR_EXPIRED;
		goto unlock;
	}
	r = 0;
	if (reason == NL_REASON_NONE && f->number_match)
		r = want_number(fl, f, now);
	else if (reason == NL_REASON_NONE)
		flows_end_flow(fl, f, NL_FLOW_APPROVED, NL_REASON_NONE, NULL, now, NULL);
	else
		flows_end_flow(fl, f, NL_FLOW_DENIED, reason, message, now, NULL);
	changed = true;
unlock:
	pthread_mutex_unlock(&fl->mu);
	if (changed)
		flows_notify(fl);
	return r;
}

/* ---- the bridge side ---- */

/* The key a client's wrong codes count under: its address as given; an IPv6 address by its /64
 * (one subscriber, or one attacker, commonly holds a whole /64); an IPv4-mapped one as IPv4. */
void flows_guess_key(const char *client, char *out, size_t outlen)
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
	size_t start = (size_t)flows_khash(fl, IX_N, key);
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

/* What /authorize needs of flow f, copied into a (cleared by nl_flow_authz_clear). Under fl->mu. */
static int authz_of(const struct flow *f, struct nl_flow_authz *a)
{
	memcpy(a->id, f->id, sizeof(a->id));
	if ((a->state = strdup(f->state)) == NULL || (a->nonce = strdup(f->nonce)) == NULL ||
	    (a->code_challenge = strdup(f->challenge)) == NULL)
		return NL_ERR_NOMEM;
	return 0;
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
	if (fl->st != NULL)
		return flows_store_begin_authz(fl, user_code, client, out);
	flows_guess_key(client != NULL && client[0] != '\0' ? client : "?", key, sizeof(key));
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
	if ((f = flows_ix_find(fl, IX_UCODE, code)) == NULL) {
		guess_record(fl, key, now);
		r = NL_ERR_NOT_FOUND;
		goto unlock;
	}
	if ((changed = flows_check_expiry(fl, f, now)) || f->taken) {
		r = NL_ERR_EXPIRED;
		goto unlock;
	}
	if ((r = authz_of(f, &a)) != 0)
		goto unlock;
	*out = a;
	memset(&a, 0, sizeof(a));
	r = 0;
unlock:
	pthread_mutex_unlock(&fl->mu);
	nl_flow_authz_clear(&a);
	nl_wipe(code, sizeof(code));
	if (changed)
		flows_notify(fl);
	return r;
}

/* Hand the callback what the exchange needs and mark the state used (with the lock held). */
static int take_locked(struct nl_flows *fl, struct flow *f, time_t now, bool *changed,
                       struct nl_flow_exchange *out)
{
	struct nl_flow_exchange x = {0};

	if ((*changed = flows_check_expiry(fl, f, now)))
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
	if ((f = flows_ix_find(fl, IX_STATE, state)) != NULL && !f->taken)
		r = take_locked(fl, f, now, &changed, out);
	pthread_mutex_unlock(&fl->mu);
	if (changed)
		flows_notify(fl);
	return r;
}

/* ---- the confirmation page and the browser binding ---- */

/* The pending flow id names, for the confirmation page (with the lock held). */
static int confirmable(struct nl_flows *fl, const char *id, time_t now, bool *changed, struct flow **out)
{
	struct flow *f = flows_ix_find(fl, IX_ID, id);

	if (f == NULL)
		return NL_ERR_NOT_FOUND;
	if ((*changed = flows_check_expiry(fl, f, now)) || f->st != NL_FLOW_PENDING || f->taken)
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
	if (fl->st != NULL)
		return flows_store_view(fl, id, out);
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
		flows_notify(fl);
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
	if (fl->st != NULL)
		return flows_store_bind_browser(fl, id, browser, out);
	pthread_mutex_lock(&fl->mu);
	if ((r = confirmable(fl, id, nl_now(), &changed, &f)) != 0)
		goto unlock;
	/* One sign-in, one browser: the first to continue keeps it (another cannot take it over). */
	if (f->bound && !nl_ct_equal(f->browser, browser, NL_FLOW_BROWSER_LEN)) {
		r = NL_ERR_PERM;
		goto unlock;
	}
	if ((r = authz_of(f, &a)) != 0)
		goto unlock;
	memcpy(f->browser, browser, NL_FLOW_BROWSER_LEN);
	f->bound = true;
	*out = a;
	memset(&a, 0, sizeof(a));
unlock:
	pthread_mutex_unlock(&fl->mu);
	nl_flow_authz_clear(&a);
	if (changed)
		flows_notify(fl);
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
	if (fl->st != NULL)
		return flows_store_refuse(fl, id, client);
	snprintf(why, sizeof(why), "refused at the confirmation page from %.64s",
	         client != NULL && client[0] != '\0' ? client : "?");
	pthread_mutex_lock(&fl->mu);
	if ((r = confirmable(fl, id, now, &changed, &f)) == 0) {
		flows_end_flow(fl, f, NL_FLOW_DENIED, NL_REASON_DENIED,
		               "The sign-in was refused on the phone: \"This was not me\".", now, why);
		changed = true;
	}
	pthread_mutex_unlock(&fl->mu);
	if (changed)
		flows_notify(fl);
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
	if (fl->st != NULL)
		return nl_flows_store_claim(fl, state, browser, client, out, NULL);
	pthread_mutex_lock(&fl->mu);
	if ((f = flows_ix_find(fl, IX_STATE, state)) == NULL || f->taken)
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
		flows_notify(fl);
	return r;
}
