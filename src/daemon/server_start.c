/* The start op of the nhslogind socket server: the caller's rights, [policy], a cached sign-in to
 * reuse, and a new flow, with the provider's part (discovery and JWKS, device mode: the device
 * authorization) done on a worker thread so that the loop answers others meanwhile. */
#include "config.h"
#include "server_int.h"
#include "jobs.h"
#include "nl_err.h"
#include "nl_json.h"
#include "nl_log.h"
#include "nl_policy.h"
#include "nl_reason.h"
#include "nl_time.h"
#include "nl_wipe.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define START_TIMEOUT_MAX 86400
#define STARTS_PER_CONN   4 /* the module makes one start a connection; more is not a PAM call */

/* ---- start ---- */

static void reply_started(struct conn *c, const struct nl_flow_started *st, const char *user_code,
                          const char *uri, const char *uri_complete, bool number)
{
	json_t *m = json_pack("{sb ss ss ss ss ss si si sb}", "ok", 1, "status",
	                      nl_status_word(NL_STATUS_PENDING), "flow", st->id, "user_code", user_code,
	                      "verification_uri", uri, "verification_uri_complete", uri_complete,
	                      "expires_in", st->expires_in, "interval", 1, "number_matching", number);
	srv_reply(c, m, "device_code", st->device_code);
}

/* A start that needs the provider first (discovery and JWKS loaded; device mode: the provider's
 * user code). A worker runs start_job_run; the loop finishes it in start_job_done. Strings are
 * copies: the request is gone by then. c is cleared if the connection closes meanwhile. */
struct start_job {
	struct conn *c;
	struct nl_oidc *oidc;
	struct nl_agent *agent; /* role = agent: the flow starts at the bridge */
	bool device, caller_supplied, number;
	char user[NL_USER_MAX + 1];
	char *service, *rhost, *tty;
	unsigned ttl;
	int r;
	char err[256];
	struct nl_device_auth da; /* device mode: what the provider handed out */
	struct nl_agent_flow af;  /* agent: what the bridge handed out */
};

void srv_start_job_free(void *arg)
{
	struct start_job *jb = arg;

	if (jb == NULL)
		return;
	free(jb->service);
	free(jb->rhost);
	free(jb->tty);
	nl_device_auth_clear(&jb->da);
	nl_agent_flow_clear(&jb->af);
	free(jb);
}

static char *dup_or_null(const char *v, bool *ok)
{
	char *d = NULL;
	if (v != NULL && (d = strdup(v)) == NULL)
		*ok = false;
	return d;
}

static struct start_job *start_job_new(struct nl_server *s, struct conn *c, const char *user,
                                       const char *service, const char *rhost, const char *tty, unsigned ttl)
{
	struct start_job *jb = calloc(1, sizeof(*jb));
	bool ok = true;

	if (jb == NULL)
		return NULL;
	jb->c = c;
	jb->oidc = s->ctx.oidc;
	jb->agent = s->ctx.agent;
	jb->device = jb->agent == NULL && s->ctx.cfg->env.flow == NL_FLOW_DEVICE;
	jb->ttl = ttl;
	jb->caller_supplied = !c->admin;
	snprintf(jb->user, sizeof(jb->user), "%s", user);
	jb->service = dup_or_null(service, &ok);
	jb->rhost = dup_or_null(rhost, &ok);
	jb->tty = dup_or_null(tty, &ok);
	if (!ok) {
		srv_start_job_free(jb);
		return NULL;
	}
	return jb;
}

/* On a worker: everything of a start that may wait on the network (at most http_timeout a call). */
static void start_job_run(void *arg)
{
	struct start_job *jb = arg;

	if ((jb->r = nl_oidc_ready(jb->oidc, jb->err, sizeof(jb->err))) != 0)
		return;
	if (jb->agent != NULL) {
		const struct nl_agent_start st = {.user = jb->user,
		                                  .service = jb->service,
		                                  .rhost = jb->rhost,
		                                  .tty = jb->tty,
		                                  .number_match = jb->number,
		                                  .ttl = jb->ttl};
		jb->r = nl_agent_create(jb->agent, &st, &jb->af, jb->err, sizeof(jb->err));
		return;
	}
	if (!jb->device)
		return;
	if (!nl_oidc_has_device_endpoint(jb->oidc)) {
		snprintf(jb->err, sizeof(jb->err), "the provider offers no device_authorization_endpoint");
		jb->r = NL_ERR_CONFIG;
		return;
	}
	jb->r = nl_oidc_device_start(jb->oidc, &jb->da, jb->err, sizeof(jb->err));
}

/* [policy] number_matching for a start from rhost (bridge mode only). */
static bool number_wanted(const struct nl_config *cfg, const char *rhost)
{
	bool device = cfg->env.flow == NL_FLOW_DEVICE;

	switch (cfg->number_matching) {
	case NL_NUMBER_ALWAYS:
		return !device;
	case NL_NUMBER_REMOTE:
		return !device && rhost != NULL && rhost[0] != '\0';
	case NL_NUMBER_NEVER:
		break;
	}
	return false;
}

static bool number_match(const struct nl_server *s, const struct start_job *jb)
{
	return number_wanted(s->ctx.cfg, jb->rhost);
}

static int start_flow(struct nl_server *s, const struct conn *c, const struct start_job *jb, unsigned ttl,
                      struct nl_flow_started *st)
{
	const struct nl_flow_origin o = {.user = jb->user,
	                                 .service = jb->service,
	                                 .rhost = jb->rhost,
	                                 .tty = jb->tty,
	                                 .owner = c->id,
	                                 .ttl = ttl,
	                                 .caller_supplied = jb->caller_supplied,
	                                 .number_match = number_match(s, jb)};
	return nl_flows_start_from(s->ctx.flows, &o, st);
}

static void start_bridge(struct nl_server *s, struct conn *c, const struct start_job *jb)
{
	struct nl_flow_started st = {0};
	char canon[NL_USER_CODE_LEN + 1];
	char *uri = NULL, *uric = NULL;
	int r;

	if ((r = start_flow(s, c, jb, jb->ttl, &st)) != 0) {
		srv_reply_flow_error(c, r, "user must be 1..64 bytes without control characters");
		goto out;
	}
	if ((r = nl_user_code_normalize(st.user_code, canon)) != 0 ||
	    (r = nl_bridge_verification_uri(s->ctx.bridge, canon, &uri, &uric)) != 0) {
		nl_err("flow %s: no verification URI: %s", st.id, nl_strerror(r));
		nl_flows_cancel(s->ctx.flows, st.device_code);
		srv_reply_error(c, NL_EWORD_INTERNAL, "could not build the verification address");
		goto out;
	}
	reply_started(c, &st, st.user_code, uri, uric, number_match(s, jb));
out:
	free(uri);
	free(uric);
	nl_flow_started_clear(&st);
}

static void start_device(struct nl_server *s, struct conn *c, struct start_job *jb)
{
	struct nl_device_auth *da = &jb->da; /* nl_device_add takes its device_code */
	struct nl_flow_started st = {0};
	unsigned ttl = jb->ttl;
	int r;

	if (s->ctx.device == NULL) {
		srv_reply_error(c, NL_EWORD_UNAVAILABLE, "native device mode is not running");
		return;
	}
	if (da->expires_in > 0 && (unsigned)da->expires_in < ttl)
		ttl = (unsigned)da->expires_in;
	if ((r = start_flow(s, c, jb, ttl, &st)) != 0) {
		srv_reply_flow_error(c, r, "user must be 1..64 bytes without control characters");
		goto out;
	}
	if ((r = nl_device_add(s->ctx.device, st.id, jb->user, da)) != 0) {
		nl_flows_cancel(s->ctx.flows, st.device_code);
		srv_reply_flow_error(c, r, "");
		goto out;
	}
	/* No number matching in device mode: the provider, not our page, tells the phone the outcome. */
	reply_started(c, &st, da->user_code, da->verification_uri,
	              da->verification_uri_complete != NULL ? da->verification_uri_complete
	                                                    : da->verification_uri,
	              false);
out:
	nl_flow_started_clear(&st);
}

/* An agent's start: the bridge made its flow (and holds the person's code); ours waits for it. */
static void start_agent(struct nl_server *s, struct conn *c, struct start_job *jb)
{
	struct nl_agent_flow *af = &jb->af;
	struct nl_flow_started st = {0};
	const struct nl_agent_start as = {.user = jb->user,
	                                  .service = jb->service,
	                                  .rhost = jb->rhost,
	                                  .tty = jb->tty,
	                                  .number_match = jb->number,
	                                  .ttl = jb->ttl};
	unsigned ttl = jb->ttl;
	int r;

	if (af->expires_in > 0 && (unsigned)af->expires_in < ttl)
		ttl = (unsigned)af->expires_in;
	if ((r = start_flow(s, c, jb, ttl, &st)) != 0) {
		nl_agent_forget(jb->agent, af); /* this computer's own limits: the bridge's flow goes */
		srv_reply_flow_error(c, r, "user must be 1..64 bytes without control characters");
		goto out;
	}
	if ((r = nl_agent_add(jb->agent, st.id, &as, af)) != 0) {
		nl_flows_cancel(s->ctx.flows, st.device_code);
		nl_agent_forget(jb->agent, af);
		srv_reply_flow_error(c, r, "");
		goto out;
	}
	reply_started(c, &st, af->user_code, af->verification_uri, af->verification_uri_complete, jb->number);
out:
	nl_flow_started_clear(&st);
}

void srv_start_forget(struct conn *c)
{
	if (c->job != NULL)
		c->job->c = NULL; /* the worker's result is dropped when it comes back */
	c->job = NULL;
}

/* On the loop: a worker finished jb. Answer its connection, if it is still there. */
static void start_job_done(struct nl_server *s, struct start_job *jb)
{
	struct conn *c = jb->c;

	if (c == NULL) {
		if (jb->agent != NULL && jb->r == 0)
			nl_agent_forget(jb->agent, &jb->af); /* the asker left: nobody will use it */
		goto out;
	}
	c->job = NULL;
	c->idle_deadline = nl_mono_ms() + NL_SERVER_IDLE_MS;
	if (jb->r == NL_ERR_LIMIT) {
		/* the bridge's 429: its bound on pending flows, answered as this computer's own limit */
		nl_notice("sign-in for %s refused: %s", jb->user, jb->err[0] ? jb->err : nl_strerror(jb->r));
		srv_reply_flow_error(c, NL_ERR_LIMIT, "");
	} else if (jb->r != 0) {
		nl_warn("sign-in for %s unavailable: %s", jb->user,
		        jb->err[0] ? jb->err : nl_strerror(jb->r));
		srv_reply_error(c, NL_EWORD_UNAVAILABLE,
		                jb->err[0]   ? jb->err
		                : jb->device ? "the provider could not be reached"
		                             : "the identity provider is not available");
	} else if (jb->agent != NULL) {
		start_agent(s, c, jb);
	} else if (jb->device) {
		start_device(s, c, jb);
	} else {
		start_bridge(s, c, jb);
	}
	srv_process(s, c);
	srv_settle(s, c);
out:
	srv_start_job_free(jb);
}

void srv_take_jobs(struct nl_server *s)
{
	struct start_job *jb;

	for (int i = 0; i < START_QUEUE_MAX && (jb = nl_jobs_take_done(s->jobs)) != NULL; i++)
		start_job_done(s, jb);
}

/* Is user the account of uid? (By name lookup, so that an alias of the uid counts too.) */
static bool own_account(uid_t uid, const char *user)
{
	struct passwd pw, *p = NULL;
	char buf[4096];

	return getpwnam_r(user, &pw, buf, sizeof(buf), &p) == 0 && p != NULL && p->pw_uid == uid;
}

/* The module's own timeout (its timeout= argument), so that the code's lifetime, the countdown
 * and the expiry the daemon logs are one and the same. Absent or 0: flow_ttl. */
static bool start_ttl(const struct nl_server *s, const json_t *req, unsigned *ttl)
{
	const json_t *tv = json_object_get(req, "timeout");
	json_int_t t;

	*ttl = s->ctx.cfg->flow_ttl;
	if (tv == NULL || json_is_null(tv))
		return true;
	if (!json_is_integer(tv) || (t = json_integer_value(tv)) < 0 || t > START_TIMEOUT_MAX)
		return false;
	if (t > 0 && (unsigned)t < *ttl)
		*ttl = (unsigned)t;
	return true;
}

/* May this start reuse user's cached sign-in (the rule is the token cache's)? Logged either way
 * when there was one to reuse. */
static bool start_reuses(struct nl_server *s, struct conn *c, const char *user, const char *service,
                         const char *rhost, const char *tty)
{
	struct nl_reuse_place here = {.service = service,
	                              .rhost = rhost,
	                              .tty = tty,
	                              .by_root = c->admin,
	                              .audit_session = NL_AUDIT_SESSION_NONE,
	                              .conn = c->id,
	                              .needs_number = number_wanted(s->ctx.cfg, rhost)};
	struct ucred cr;
	socklen_t len = sizeof(cr);
	const char *why = NULL;
	bool ok;

	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 && len == sizeof(cr))
		here.pid = cr.pid; /* its audit session is part of the place */
	ok = nl_tokcache_reuse(s->ctx.tc, s->ctx.cfg, user, &here, nl_now(), &why);
	if (ok)
		nl_info("user %s: cached sign-in reused (service %s, rhost %s, tty %s%s)", user,
		        service != NULL && *service ? service : "-", rhost != NULL && *rhost ? rhost : "-",
		        tty != NULL && *tty ? tty : "-", c->admin ? "" : "; supplied by a non-root caller");
	else if (why != NULL && s->ctx.cfg->reuse_window > 0 && strcmp(why, "no cached sign-in") != 0)
		nl_info("user %s: cached sign-in not reused: %s", user, why);
	return ok;
}

/* [policy] decides here, before a cached sign-in or a flow: a refusal is a denial (reason policy),
 * answered at once and logged with the rule that refused. */
static bool policy_refuses(struct nl_server *s, struct conn *c, const char *user, const char *service,
                           const char *rhost)
{
	char why[256];

	if (nl_policy_check(s->ctx.cfg, service, rhost, why, sizeof(why)) == 0)
		return false;
	nl_notice("user %s: sign-in refused by policy: %s%s", user, why,
	          c->admin ? "" : " (service and rhost supplied by a non-root caller)");
	srv_reply(c,
	          json_pack("{sbssssss}", "ok", 1, "status", nl_status_word(NL_STATUS_DENIED), "reason",
	                    nl_reason_word(NL_REASON_POLICY), "message",
	                    nl_reason_row(NL_REASON_POLICY)->flow),
	          NULL, NULL);
	return true;
}

void srv_handle_start(struct nl_server *s, struct conn *c, const json_t *req)
{
	const char *user = nl_json_str(req, "user"), *service, *rhost, *tty;
	struct start_job *jb;
	unsigned ttl;
	int r;

	if (user == NULL || user[0] == '\0' || !srv_plain_string(user, NL_USER_MAX)) {
		srv_reply_error(c, NL_EWORD_BAD_REQUEST,
		                "user must be 1..64 bytes without control characters");
		return;
	}
	if (!srv_optional_field(req, "service", &service) || !srv_optional_field(req, "rhost", &rhost) ||
	    !srv_optional_field(req, "tty", &tty)) {
		srv_reply_error(c, NL_EWORD_BAD_REQUEST,
		                "service, rhost and tty must be strings of at most 256 bytes");
		return;
	}
	if (!c->admin && !own_account(c->uid, user)) {
		nl_notice(
		    "uid %ld may not start a sign-in for %s: a caller that is not root acts for its own "
		    "account only",
		    (long)c->uid, user);
		srv_reply_error(c, NL_EWORD_FORBIDDEN,
		                "a caller that is not root may start a sign-in for its own account only");
		return;
	}
	if (policy_refuses(s, c, user, service, rhost))
		return;
	if (++c->starts > STARTS_PER_CONN) {
		srv_reply_error(c, NL_EWORD_LIMIT, "too many sign-ins started on one connection");
		return;
	}
	if (!start_ttl(s, req, &ttl)) {
		srv_reply_error(c, NL_EWORD_BAD_REQUEST,
		                "timeout must be an integer number of seconds, 0..86400");
		return;
	}
	if (s->ctx.tc != NULL && start_reuses(s, c, user, service, rhost, tty)) {
		srv_reply(c,
		          json_pack("{sbsssssb}", "ok", 1, "status", nl_status_word(NL_STATUS_APPROVED),
		                    "user", user, "reused", 1),
		          NULL, NULL);
		return;
	}
	if ((jb = start_job_new(s, c, user, service, rhost, tty, ttl)) == NULL) {
		srv_reply_error(c, NL_EWORD_INTERNAL, "out of memory");
		return;
	}
	jb->number = number_wanted(s->ctx.cfg, rhost);
	if ((r = nl_jobs_submit(s->jobs, start_job_run, jb)) != 0) {
		srv_start_job_free(jb);
		nl_warn("sign-in for %s refused: %u starts already wait for the provider", user,
		        (unsigned)START_QUEUE_MAX);
		srv_reply_error(c, NL_EWORD_UNAVAILABLE,
		                "nhslogind is busy waiting for NHS login; try again shortly");
		return;
	}
	c->job = jb; /* this connection reads nothing more until start_job_done answers */
}
