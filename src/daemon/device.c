/* The native-mode poller: a thread that asks the provider's token endpoint, for each device-mode
 * flow in turn, whether the person has signed in yet (RFC 8628 §3.4-3.5), and hands the outcome
 * to nl_signin_complete. Network calls are made without the job lock held. */
#include "config.h"
#include "device.h"
#include "signin.h"
#include "nl_err.h"
#include "nl_log.h"
#include "nl_time.h"
#include "nl_wipe.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Consecutive transport failures tolerated before the flow ends as unavailable. */
#define MAX_TRANSIENT  3
#define MIN_INTERVAL   1
#define MAX_INTERVAL   60
#define SLOW_DOWN_STEP 5

struct job {
	struct job *next;
	char flow_id[NL_FLOW_ID_LEN];
	char user[NL_USER_MAX + 1];
	char *device_code; /* the provider's; secret */
	int interval;      /* seconds */
	int64_t next_poll_ms, deadline_ms;
	int failures;
};

struct nl_device {
	const struct nl_config *cfg;
	struct nl_flows *fl;
	struct nl_oidc *oidc;
	struct nl_tokcache *tc;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	pthread_t thread;
	bool running, stop;
	struct job *jobs;
	size_t njobs;
};

static void job_free(struct job *j)
{
	if (j == NULL)
		return;
	nl_free_secret(j->device_code);
	nl_wipe(j, sizeof(*j));
	free(j);
}

static int clamp_interval(int s)
{
	return s < MIN_INTERVAL ? MIN_INTERVAL : s > MAX_INTERVAL ? MAX_INTERVAL : s;
}

/* Unlink and return the job due first, or NULL with *wait_ms the time until one is due (-1: none). */
static struct job *take_due(struct nl_device *d, int64_t now, int64_t *wait_ms)
{
	struct job **pp, **best = NULL, *j;

	for (pp = &d->jobs; *pp != NULL; pp = &(*pp)->next)
		if (best == NULL || (*pp)->next_poll_ms < (*best)->next_poll_ms)
			best = pp;
	if (best == NULL) {
		*wait_ms = -1;
		return NULL;
	}
	if ((*best)->next_poll_ms > now) {
		*wait_ms = (*best)->next_poll_ms - now;
		return NULL;
	}
	j = *best;
	*best = j->next;
	j->next = NULL;
	d->njobs--;
	return j;
}

/* One poll of the provider. true if the job is finished (the caller frees it). */
static bool poll_once(struct nl_device *d, struct job *j)
{
	struct nl_grant_result res = {0};
	int64_t now = nl_mono_ms();
	int r;

	if (!nl_flows_pending_id(d->fl, j->flow_id))
		return true; /* cancelled, expired or ended elsewhere */
	if (now >= j->deadline_ms) {
		nl_signin_complete(d->cfg, d->fl, d->tc, j->flow_id, j->user, NL_OUT_EXPIRED, NULL,
		                   "the provider's device code expired");
		return true;
	}
	r = nl_oidc_device_poll(d->oidc, j->device_code, &res);
	if (r == 0 && res.outcome == NL_OUT_OK) {
		nl_signin_complete(d->cfg, d->fl, d->tc, j->flow_id, j->user, NL_OUT_OK, &res.id, NULL);
		nl_grant_result_clear(&res);
		return true;
	}
	nl_identity_clear(&res.id);
	switch (res.outcome) {
	case NL_OUT_PENDING:
		j->failures = 0;
		break;
	case NL_OUT_SLOW_DOWN:
		j->failures = 0;
		j->interval = clamp_interval(j->interval + SLOW_DOWN_STEP);
		nl_debug("flow %s: slow_down, interval now %d s", j->flow_id, j->interval);
		break;
	case NL_OUT_UNAVAILABLE:
		if (++j->failures < MAX_TRANSIENT) {
			nl_warn("flow %s: device poll failed (%s); will retry", j->flow_id, res.error);
			break;
		}
		/* fall through */
	default:
		nl_signin_complete(d->cfg, d->fl, d->tc, j->flow_id, j->user, res.outcome, NULL,
		                   res.error[0] ? res.error : NULL);
		return true;
	}
	j->next_poll_ms = nl_mono_ms() + (int64_t)j->interval * 1000;
	return false;
}

static void *device_thread(void *arg)
{
	struct nl_device *d = arg;
	struct job *j;
	int64_t wait_ms;

	pthread_mutex_lock(&d->mu);
	while (!d->stop) {
		if ((j = take_due(d, nl_mono_ms(), &wait_ms)) == NULL) {
			if (wait_ms < 0) {
				pthread_cond_wait(&d->cv, &d->mu);
			} else {
				struct timespec ts;
				int64_t until;
				clock_gettime(CLOCK_MONOTONIC, &ts);
				until = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + wait_ms;
				ts.tv_sec = until / 1000;
				ts.tv_nsec = (long)(until % 1000) * 1000000;
				pthread_cond_timedwait(&d->cv, &d->mu, &ts);
			}
			continue;
		}
		pthread_mutex_unlock(&d->mu);
		bool done = poll_once(d, j);
		pthread_mutex_lock(&d->mu);
		if (done || d->stop) {
			job_free(j);
		} else {
			j->next = d->jobs;
			d->jobs = j;
			d->njobs++;
		}
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

int nl_device_start(const struct nl_config *cfg, struct nl_flows *fl, struct nl_oidc *oidc,
                    struct nl_tokcache *tc, struct nl_device **out)
{
	struct nl_device *d;
	pthread_condattr_t ca;
	int r = NL_ERR_INTERNAL;

	if (cfg == NULL || fl == NULL || out == NULL)
		return NL_ERR_INTERNAL;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NL_ERR_NOMEM;
	d->cfg = cfg;
	d->fl = fl;
	d->oidc = oidc;
	d->tc = tc;
	pthread_mutex_init(&d->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&d->thread, NULL, device_thread, d) != 0)
		goto out;
	d->running = true;
	*out = d;
	d = NULL;
	r = 0;
out:
	if (d != NULL) {
		pthread_cond_destroy(&d->cv);
		pthread_mutex_destroy(&d->mu);
		free(d);
	}
	return r;
}

void nl_device_stop(struct nl_device *d)
{
	struct job *j;

	if (d == NULL)
		return;
	pthread_mutex_lock(&d->mu);
	d->stop = true;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	if (d->running)
		pthread_join(d->thread, NULL);
	while ((j = d->jobs) != NULL) {
		d->jobs = j->next;
		job_free(j);
	}
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

int nl_device_add(struct nl_device *d, const char *flow_id, const char *user, struct nl_device_auth *da)
{
	struct job *j;
	int64_t now = nl_mono_ms();
	int r = NL_ERR_LIMIT;

	if (d == NULL || flow_id == NULL || user == NULL || da == NULL || da->device_code == NULL)
		return NL_ERR_INTERNAL;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return NL_ERR_NOMEM;
	snprintf(j->flow_id, sizeof(j->flow_id), "%s", flow_id);
	snprintf(j->user, sizeof(j->user), "%s", user);
	/* RFC 8628 §3.2: without an interval the client waits 5 s between polls. */
	j->interval = clamp_interval(da->interval > 0 ? da->interval : 5);
	j->next_poll_ms = now + (int64_t)j->interval * 1000;
	j->deadline_ms = now + (int64_t)(da->expires_in > 0 ? da->expires_in : (int)d->cfg->flow_ttl) * 1000;
	pthread_mutex_lock(&d->mu);
	if (d->njobs < d->cfg->max_flows && !d->stop) {
		j->device_code = da->device_code;
		da->device_code = NULL;
		j->next = d->jobs;
		d->jobs = j;
		d->njobs++;
		pthread_cond_signal(&d->cv);
		j = NULL;
		r = 0;
	}
	pthread_mutex_unlock(&d->mu);
	job_free(j);
	return r;
}

size_t nl_device_count(struct nl_device *d)
{
	size_t n;
	if (d == NULL)
		return 0;
	pthread_mutex_lock(&d->mu);
	n = d->njobs;
	pthread_mutex_unlock(&d->mu);
	return n;
}
