/* The nhslogind socket server (doc/protocol.md): socket setup, the epoll loop, peer checks,
 * framing, dispatch of each op to its handler, and long-polled waits. Never trusts a byte.
 * Costs scale with what happens, not with what is open: epoll hands back the connections that are
 * ready, one min-heap holds every deadline, and a flow's end wakes only the waits parked on it. */
#include "config.h"
#include "server.h"
#include "jobs.h"
#include "nl_err.h"
#include "nl_ipc.h"
#include "nl_json.h"
#include "nl_log.h"
#include "nl_policy.h"
#include "nl_time.h"
#include "nl_wipe.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SWEEP_MS          1000
#define ACCEPTS_PER_ROUND 64
#define EVENTS_PER_ROUND  256
#define TAGS_PER_TAKE     256
#define WAIT_BUCKETS      8192 /* parked waits by flow tag (a power of two) */
#define ACCEPT_PAUSE_MS   100  /* after EMFILE/ENFILE: let fds come back before accepting again */
#define DEVICE_CODE_MAX   512
#define NO_HEAP           SIZE_MAX
#define START_WORKERS     4    /* provider fetches at once for starts (a slow provider delays these only) */
#define START_QUEUE_MAX   1024 /* starts waiting for a worker; past it, "unavailable" */
#define START_TIMEOUT_MAX 86400
#define STARTS_PER_CONN   4 /* the module makes one start a connection; more is not a PAM call */

/* epoll_data.ptr of the fixed fds: the address of one of these markers (a conn is anything else). */
static char mark_listen, mark_notify, mark_stop, mark_signal, mark_jobs;

struct start_job;

struct conn {
	int fd;
	uint64_t id;
	uid_t uid;
	bool admin, dead, close_after, parked, on_dead_list;
	unsigned starts; /* start requests this connection made */
	struct nl_linebuf_dyn lb;
	size_t counted; /* lb.cap as counted in the server's bufbytes */
	char *out;      /* pending reply bytes (may hold a device_code: wiped) */
	size_t outlen, outoff;
	char *wait_code;   /* secret, while parked */
	uint64_t wait_tag; /* the flow's wake-up tag, while parked */
	int64_t wait_deadline, idle_deadline;
	struct start_job *job;      /* a start waiting on the provider (off the loop), or NULL */
	uint32_t events;            /* what epoll watches for now */
	size_t heap_ix;             /* place in the deadline heap, or NO_HEAP */
	struct conn *prev, *next;   /* every connection */
	struct conn *wprev, *wnext; /* parked waits of one bucket */
	struct conn *next_dead;
};

struct nl_server {
	struct nl_server_ctx ctx;
	struct nl_jobs *jobs; /* provider I/O for starts, off the loop */
	int listen_fd, stop_fd, ep_fd;
	char *path;
	dev_t sock_dev;
	ino_t sock_ino;
	struct conn *conns; /* every connection, newest first */
	struct conn *dead;  /* to be freed at the end of this round */
	size_t nconns, nconns_public, max_conns;
	struct conn **heap; /* min-heap of connections by deadline (wait or idle) */
	size_t heap_n, heap_cap;
	struct conn *wait_bucket[WAIT_BUCKETS];
	size_t bufbytes; /* input buffered over every connection */
	uint64_t next_id;
	int64_t started_ms, next_sweep, accept_resume;
	bool stopping, accept_paused;
};

enum op {
	OP_UNKNOWN = 0,
	OP_START,
	OP_WAIT,
	OP_NUMBER,
	OP_CANCEL,
	OP_STATUS,
	OP_FLOWS,
	OP_FLOW_CANCEL,
	OP_FLUSH
};

static const struct {
	const char *name;
	enum op op;
	bool admin;
} ops[] = {
    {"start", OP_START, false},   {"wait", OP_WAIT, false},  {"number", OP_NUMBER, false},
    {"cancel", OP_CANCEL, false},
    {"status", OP_STATUS, false}, {"flows", OP_FLOWS, true}, {"flow_cancel", OP_FLOW_CANCEL, true},
    {"flush", OP_FLUSH, true},
};

/* err gets fmt with arg and then strerror(errno) (formats that do not want it end in %.0s). */
#define set_err(err, errlen, fmt, arg)                                                                       \
	do {                                                                                                 \
		const char *e_ = strerror(errno);                                                            \
		if ((err) != NULL && (errlen) > 0)                                                           \
			snprintf((err), (errlen), fmt, (arg), e_);                                           \
	} while (0)

/* ---- output ---- */

static void conn_flush(struct conn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n =
		    send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			c->dead = true;
			break;
		}
		c->outoff += (size_t)n;
	}
	nl_free_secret_buf(c->out, c->outlen);
	c->out = NULL;
	c->outlen = c->outoff = 0;
	if (c->close_after)
		c->dead = true;
}

/* Queue text (a JSON object without its newline) as one line, then try to send it. */
static void queue_text(struct conn *c, const char *text)
{
	size_t n = strlen(text);
	char *buf;

	if (c->dead)
		return;
	if ((buf = malloc(c->outlen + n + 1)) == NULL) {
		c->dead = true;
		return;
	}
	if (c->outlen > 0)
		memcpy(buf, c->out, c->outlen);
	memcpy(buf + c->outlen, text, n);
	buf[c->outlen + n] = '\n';
	nl_free_secret_buf(c->out, c->outlen);
	c->out = buf;
	c->outlen += n + 1;
	conn_flush(c);
}

/* Send msg (consumed). secret_name/secret_value, if given, are spliced in as the first member so
 * that the secret never passes through jansson's (unwiped) heap. */
static void reply(struct conn *c, json_t *msg, const char *secret_name, const char *secret_value)
{
	char *text = msg != NULL ? nl_json_dump(msg) : NULL, *full = NULL;

	json_decref(msg);
	if (text == NULL) {
		queue_text(c, "{\"ok\":false,\"error\":\"internal\",\"message\":\"out of memory\"}");
		return;
	}
	if (secret_name != NULL && secret_value != NULL && text[0] == '{') {
		/* Both are base64url/identifier characters: no JSON escaping needed. One exact
		 * allocation: asprintf would free its growing buffers, secret and all, unwiped. */
		size_t len = strlen(secret_name) + strlen(secret_value) + strlen(text) + 7;
		if ((full = malloc(len)) != NULL)
			snprintf(full, len, "{\"%s\":\"%s\",%s", secret_name, secret_value, text + 1);
		if (full == NULL) {
			free(text);
			queue_text(c, "{\"ok\":false,\"error\":\"internal\",\"message\":\"out of memory\"}");
			return;
		}
		queue_text(c, full);
		nl_free_secret(full);
	} else {
		queue_text(c, text);
	}
	free(text);
}

static void reply_error(struct conn *c, const char *word, const char *message)
{
	reply(c, json_pack("{sbssss}", "ok", 0, "error", word, "message", message != NULL ? message : word),
	      NULL, NULL);
}

static void reply_ok(struct conn *c)
{
	reply(c, json_pack("{sb}", "ok", 1), NULL, NULL);
}

static void reply_flow_error(struct conn *c, int r, const char *what)
{
	switch (r) {
	case NL_ERR_NOT_FOUND:
		reply_error(c, "not_found", "no such sign-in (unknown, finished or expired)");
		break;
	case NL_ERR_LIMIT:
		reply_error(c, "limit", "too many sign-ins in progress; try again later");
		break;
	case NL_ERR_UNAVAILABLE:
		reply_error(c, "unavailable", "nhslogind has no room for another sign-in now");
		break;
	case NL_ERR_INVALID:
		reply_error(c, "bad_request", what);
		break;
	default:
		reply_error(c, "internal", nl_strerror(r));
		break;
	}
}

/* ---- request fields ---- */

static bool plain_string(const char *s, size_t max)
{
	size_t n;
	if (s == NULL || (n = strnlen(s, max + 1)) > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* An optional string member: absent is fine (NULL), anything but a short string is not. */
static bool optional_field(const json_t *req, const char *key, const char **out)
{
	const json_t *v = json_object_get(req, key);
	*out = NULL;
	if (v == NULL || json_is_null(v))
		return true;
	if (!json_is_string(v) || !plain_string(json_string_value(v), NL_FIELD_MAX))
		return false;
	*out = json_string_value(v);
	return true;
}

static const char *device_code_of(const json_t *req)
{
	const char *dc = nl_json_str(req, "device_code");
	return plain_string(dc, DEVICE_CODE_MAX) && dc[0] != '\0' ? dc : NULL;
}

/* ---- start ---- */

static void reply_started(struct conn *c, const struct nl_flow_started *st, const char *user_code,
                          const char *uri, const char *uri_complete, bool number)
{
	json_t *m = json_pack("{sb ss ss ss ss ss si si sb}", "ok", 1, "status", "pending", "flow", st->id,
	                      "user_code", user_code, "verification_uri", uri, "verification_uri_complete",
	                      uri_complete, "expires_in", st->expires_in, "interval", 1, "number_matching",
	                      number);
	reply(c, m, "device_code", st->device_code);
}

/* A start that needs the provider first (discovery and JWKS loaded; device mode: the provider's
 * user code). A worker runs start_job_run; the loop finishes it in start_job_done. Strings are
 * copies: the request is gone by then. c is cleared if the connection closes meanwhile. */
struct start_job {
	struct conn *c;
	struct nl_oidc *oidc;
	bool device, caller_supplied;
	char user[NL_USER_MAX + 1];
	char *service, *rhost, *tty;
	unsigned ttl;
	int r;
	char err[256];
	struct nl_device_auth da; /* device mode: what the provider handed out */
};

static void start_job_free(void *arg)
{
	struct start_job *jb = arg;

	if (jb == NULL)
		return;
	free(jb->service);
	free(jb->rhost);
	free(jb->tty);
	nl_device_auth_clear(&jb->da);
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
                                       const char *service, const char *rhost, const char *tty,
                                       unsigned ttl)
{
	struct start_job *jb = calloc(1, sizeof(*jb));
	bool ok = true;

	if (jb == NULL)
		return NULL;
	jb->c = c;
	jb->oidc = s->ctx.oidc;
	jb->device = s->ctx.cfg->env.flow == NL_FLOW_DEVICE;
	jb->ttl = ttl;
	jb->caller_supplied = !c->admin;
	snprintf(jb->user, sizeof(jb->user), "%s", user);
	jb->service = dup_or_null(service, &ok);
	jb->rhost = dup_or_null(rhost, &ok);
	jb->tty = dup_or_null(tty, &ok);
	if (!ok) {
		start_job_free(jb);
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
		reply_flow_error(c, r, "user must be 1..64 bytes without control characters");
		goto out;
	}
	if ((r = nl_user_code_normalize(st.user_code, canon)) != 0 ||
	    (r = nl_bridge_verification_uri(s->ctx.bridge, canon, &uri, &uric)) != 0) {
		nl_err("flow %s: no verification URI: %s", st.id, nl_strerror(r));
		nl_flows_cancel(s->ctx.flows, st.device_code);
		reply_error(c, "internal", "could not build the verification address");
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
		reply_error(c, "unavailable", "native device mode is not running");
		return;
	}
	if (da->expires_in > 0 && (unsigned)da->expires_in < ttl)
		ttl = (unsigned)da->expires_in;
	if ((r = start_flow(s, c, jb, ttl, &st)) != 0) {
		reply_flow_error(c, r, "user must be 1..64 bytes without control characters");
		goto out;
	}
	if ((r = nl_device_add(s->ctx.device, st.id, jb->user, da)) != 0) {
		nl_flows_cancel(s->ctx.flows, st.device_code);
		reply_flow_error(c, r, "");
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

static void conn_process(struct nl_server *s, struct conn *c);
static void settle(struct nl_server *s, struct conn *c);

/* On the loop: a worker finished jb. Answer its connection, if it is still there. */
static void start_job_done(struct nl_server *s, struct start_job *jb)
{
	struct conn *c = jb->c;

	if (c == NULL)
		goto out;
	c->job = NULL;
	c->idle_deadline = nl_mono_ms() + NL_SERVER_IDLE_MS;
	if (jb->r != 0) {
		nl_warn("sign-in for %s unavailable: %s", jb->user, jb->err[0] ? jb->err : nl_strerror(jb->r));
		reply_error(c, "unavailable",
		            jb->err[0] ? jb->err
		                       : jb->device ? "the provider could not be reached"
		                                    : "the identity provider is not available");
	} else if (jb->device) {
		start_device(s, c, jb);
	} else {
		start_bridge(s, c, jb);
	}
	conn_process(s, c);
	settle(s, c);
out:
	start_job_free(jb);
}

static void take_jobs(struct nl_server *s)
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
	reply(c,
	      json_pack("{sbssssss}", "ok", 1, "status", "denied", "reason",
	                nl_reason_word(NL_REASON_POLICY), "message",
	                nl_reason_row(NL_REASON_POLICY)->flow),
	      NULL, NULL);
	return true;
}

static void handle_start(struct nl_server *s, struct conn *c, const json_t *req)
{
	const char *user = nl_json_str(req, "user"), *service, *rhost, *tty;
	struct start_job *jb;
	unsigned ttl;
	int r;

	if (user == NULL || user[0] == '\0' || !plain_string(user, NL_USER_MAX)) {
		reply_error(c, "bad_request", "user must be 1..64 bytes without control characters");
		return;
	}
	if (!optional_field(req, "service", &service) || !optional_field(req, "rhost", &rhost) ||
	    !optional_field(req, "tty", &tty)) {
		reply_error(c, "bad_request", "service, rhost and tty must be strings of at most 256 bytes");
		return;
	}
	if (!c->admin && !own_account(c->uid, user)) {
		nl_notice("uid %ld may not start a sign-in for %s: a caller that is not root acts for its own "
		          "account only",
		          (long)c->uid, user);
		reply_error(c, "forbidden", "a caller that is not root may start a sign-in for its own account only");
		return;
	}
	if (policy_refuses(s, c, user, service, rhost))
		return;
	if (++c->starts > STARTS_PER_CONN) {
		reply_error(c, "limit", "too many sign-ins started on one connection");
		return;
	}
	if (!start_ttl(s, req, &ttl)) {
		reply_error(c, "bad_request", "timeout must be an integer number of seconds, 0..86400");
		return;
	}
	if (s->ctx.tc != NULL && start_reuses(s, c, user, service, rhost, tty)) {
		reply(c, json_pack("{sbsssssb}", "ok", 1, "status", "approved", "user", user, "reused", 1),
		      NULL, NULL);
		return;
	}
	if ((jb = start_job_new(s, c, user, service, rhost, tty, ttl)) == NULL) {
		reply_error(c, "internal", "out of memory");
		return;
	}
	if ((r = nl_jobs_submit(s->jobs, start_job_run, jb)) != 0) {
		start_job_free(jb);
		nl_warn("sign-in for %s refused: %u starts already wait for the provider", user,
		        (unsigned)START_QUEUE_MAX);
		reply_error(c, "unavailable", "nhslogind is busy waiting for NHS login; try again shortly");
		return;
	}
	c->job = jb; /* this connection reads nothing more until start_job_done answers */
}

/* ---- wait ---- */

static void unpark(struct nl_server *s, struct conn *c)
{
	if (c->parked) {
		if (c->wprev != NULL)
			c->wprev->wnext = c->wnext;
		else
			s->wait_bucket[c->wait_tag & (WAIT_BUCKETS - 1)] = c->wnext;
		if (c->wnext != NULL)
			c->wnext->wprev = c->wprev;
		c->wprev = c->wnext = NULL;
	}
	nl_free_secret(c->wait_code);
	c->wait_code = NULL;
	c->parked = false;
}

static void park(struct nl_server *s, struct conn *c, uint64_t tag)
{
	struct conn **b = &s->wait_bucket[tag & (WAIT_BUCKETS - 1)];

	c->wait_tag = tag;
	c->wprev = NULL;
	c->wnext = *b;
	if (*b != NULL)
		(*b)->wprev = c;
	*b = c;
	c->parked = true;
}

/* Answer c's wait if its flow has an outcome (or on timeout); true if answered. *tag gets the
 * flow's wake-up tag. */
static bool wait_check(struct nl_server *s, struct conn *c, const char *device_code, bool timed_out,
                       uint64_t *tag)
{
	struct nl_flow_status st;
	int r;

	if ((r = nl_flows_status(s->ctx.flows, device_code, &st)) != 0) {
		reply_flow_error(c, r, "");
		return true;
	}
	*tag = st.tag;
	if (st.state == NL_FLOW_PENDING && st.want_number) {
		reply(c, json_pack("{sbsssi}", "ok", 1, "status", "number", "expires_in", st.expires_in), NULL,
		      NULL);
	} else if (st.state == NL_FLOW_PENDING) {
		if (!timed_out)
			return false;
		reply(c, json_pack("{sbsssi}", "ok", 1, "status", "pending", "expires_in", st.expires_in),
		      NULL, NULL);
	} else if (st.state == NL_FLOW_APPROVED) {
		reply(c, json_pack("{sbssss}", "ok", 1, "status", "approved", "user", st.user), NULL, NULL);
	} else {
		reply(c,
		      json_pack("{sbssssss}", "ok", 1, "status", "denied", "reason",
		                nl_reason_word(st.reason), "message", st.message),
		      NULL, NULL);
	}
	return true;
}

static void handle_wait(struct nl_server *s, struct conn *c, const json_t *req)
{
	const char *dc = device_code_of(req);
	const json_t *tv = json_object_get(req, "timeout");
	long long timeout = NL_SERVER_DEFAULT_WAIT;
	uint64_t tag = 0;

	if (dc == NULL) {
		reply_error(c, "bad_request", "device_code is required");
		return;
	}
	if (tv != NULL && !json_is_integer(tv)) {
		reply_error(c, "bad_request", "timeout must be an integer");
		return;
	}
	if (tv != NULL)
		timeout = json_integer_value(tv);
	if (timeout < 1)
		timeout = 1;
	if (timeout > (long long)s->ctx.cfg->wait_max)
		timeout = s->ctx.cfg->wait_max;
	if (wait_check(s, c, dc, false, &tag))
		return;
	if ((c->wait_code = strdup(dc)) == NULL) {
		reply_error(c, "internal", "out of memory");
		return;
	}
	park(s, c, tag);
	c->wait_deadline = nl_mono_ms() + timeout * 1000;
}

/* ---- number ---- */

/* The number the person typed at the terminal (number matching). The answer is the flow's outcome,
 * as a wait would give it: approved, or denied with wrong_number. */
static void handle_number(struct nl_server *s, struct conn *c, const json_t *req)
{
	const char *dc = device_code_of(req), *typed = nl_json_str(req, "number");
	uint64_t tag = 0;
	int r;

	if (dc == NULL || typed == NULL || !plain_string(typed, 8)) {
		reply_error(c, "bad_request", "device_code and number (a short string) are required");
		return;
	}
	r = nl_flows_enter_number(s->ctx.flows, dc, typed);
	if (r == NL_ERR_INVALID) {
		reply_error(c, "bad_request", "this sign-in is not waiting for a number");
		return;
	}
	if (r != 0 && r != NL_ERR_DENIED && r != NL_ERR_EXPIRED) {
		reply_flow_error(c, r, "");
		return;
	}
	(void)wait_check(s, c, dc, true, &tag);
}

/* ---- the small ops ---- */

static void handle_cancel(struct nl_server *s, struct conn *c, const json_t *req)
{
	const char *dc = device_code_of(req);
	int r;
	if (dc == NULL) {
		reply_error(c, "bad_request", "device_code is required");
		return;
	}
	if ((r = nl_flows_cancel(s->ctx.flows, dc)) != 0)
		reply_flow_error(c, r, "");
	else
		reply_ok(c);
}

static json_t *age_or_null(time_t at, time_t now)
{
	return at > 0 ? json_integer(now > at ? (json_int_t)(now - at) : 0) : json_null();
}

static void handle_status(struct nl_server *s, struct conn *c, const json_t *req)
{
	const struct nl_config *cfg = s->ctx.cfg;
	struct nl_oidc_stats st;
	time_t now = nl_now();
	json_t *m;

	(void)req;
	if (!c->admin) {
		/* Whether anyone signed in lately, or how many sign-ins wait, is not a caller's business
		 * unless it is root. */
		reply(c, json_pack("{sb ss ss}", "ok", 1, "environment", cfg->environment ? cfg->environment : "",
		                   "issuer", cfg->env.issuer ? cfg->env.issuer : ""),
		      NULL, NULL);
		return;
	}
	memset(&st, 0, sizeof(st));
	if (s->ctx.oidc != NULL)
		nl_oidc_get_stats(s->ctx.oidc, &st);
	st.last_error[sizeof(st.last_error) - 1] = '\0';
	m = json_pack("{sb ss ss sI sI so so sI ss* sI}", "ok", 1, "environment",
	              cfg->environment ? cfg->environment : "", "issuer",
	              cfg->env.issuer ? cfg->env.issuer : "", "flows",
	              (json_int_t)nl_flows_count(s->ctx.flows), "flows_max", (json_int_t)cfg->max_flows,
	              "discovery_age", age_or_null(st.discovery_fetched_at, now), "jwks_age",
	              age_or_null(st.jwks_fetched_at, now), "cached_signins",
	              (json_int_t)(s->ctx.tc != NULL ? nl_tokcache_count(s->ctx.tc) : 0), "last_error",
	              st.last_error[0] ? st.last_error : NULL, "uptime",
	              (json_int_t)((nl_mono_ms() - s->started_ms) / 1000));
	reply(c, m, NULL, NULL);
}

static const char *state_word(enum nl_flow_state st)
{
	return st == NL_FLOW_PENDING ? "pending" : st == NL_FLOW_APPROVED ? "approved" : "denied";
}

static void handle_flows(struct nl_server *s, struct conn *c, const json_t *req)
{
	struct nl_flow_info *info = calloc(NL_SERVER_MAX_LISTED, sizeof(*info));
	json_t *arr = json_array();
	size_t n;

	(void)req;
	if (info == NULL || arr == NULL) {
		free(info);
		json_decref(arr);
		reply_error(c, "internal", "out of memory");
		return;
	}
	n = nl_flows_list(s->ctx.flows, info, NL_SERVER_MAX_LISTED);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr,
		                      json_pack("{sssssssssssi}", "flow", info[i].id, "user", info[i].user,
		                                "service", info[i].service, "rhost", info[i].rhost, "state",
		                                state_word(info[i].state), "expires_in", info[i].expires_in));
	free(info);
	reply(c, json_pack("{sbso}", "ok", 1, "flows", arr), NULL, NULL);
}

static void handle_flow_cancel(struct nl_server *s, struct conn *c, const json_t *req)
{
	const char *id = nl_json_str(req, "flow");
	int r;
	if (!plain_string(id, NL_FLOW_ID_LEN)) {
		reply_error(c, "bad_request", "flow is required");
		return;
	}
	if ((r = nl_flows_cancel_id(s->ctx.flows, id)) != 0) {
		reply_flow_error(c, r, "");
		return;
	}
	nl_notice("flow %s cancelled by an administrator", id);
	reply_ok(c);
}

static void handle_flush(struct nl_server *s, struct conn *c, const json_t *req)
{
	(void)req;
	if (s->ctx.oidc != NULL)
		nl_oidc_flush(s->ctx.oidc);
	if (s->ctx.tc != NULL)
		nl_tokcache_flush(s->ctx.tc);
	nl_notice("discovery, JWKS and token caches flushed by an administrator");
	reply_ok(c);
}

/* ---- dispatch ---- */

static void dispatch(struct nl_server *s, struct conn *c, const json_t *req)
{
	const char *name = nl_json_str(req, "op");
	enum op op = OP_UNKNOWN;
	bool admin = false;

	if (name == NULL) {
		reply_error(c, "bad_request", "op is required");
		return;
	}
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (strcmp(name, ops[i].name) == 0) {
			op = ops[i].op;
			admin = ops[i].admin;
			break;
		}
	}
	if (admin && !c->admin) {
		reply_error(c, "forbidden", "this operation is for root only");
		return;
	}
	switch (op) {
	case OP_START:
		handle_start(s, c, req);
		break;
	case OP_WAIT:
		handle_wait(s, c, req);
		break;
	case OP_NUMBER:
		handle_number(s, c, req);
		break;
	case OP_CANCEL:
		handle_cancel(s, c, req);
		break;
	case OP_STATUS:
		handle_status(s, c, req);
		break;
	case OP_FLOWS:
		handle_flows(s, c, req);
		break;
	case OP_FLOW_CANCEL:
		handle_flow_cancel(s, c, req);
		break;
	case OP_FLUSH:
		handle_flush(s, c, req);
		break;
	case OP_UNKNOWN:
		reply_error(c, "unknown_op", "unknown op");
		break;
	}
}

/* Answer the complete lines c has, one at a time: not while a wait is parked or a reply is
 * still going out. */
static void conn_process(struct nl_server *s, struct conn *c)
{
	char err[160];
	json_t *req;
	int r;

	while (!c->dead && !c->parked && c->job == NULL && c->outlen == 0 && c->lb.len > 0) {
		req = NULL;
		err[0] = '\0';
		if ((r = nl_linebuf_dyn_take(&c->lb, &req, err, sizeof(err))) == 0)
			break;
		c->idle_deadline = nl_mono_ms() + NL_SERVER_IDLE_MS;
		if (r < 0) {
			reply_error(c, "bad_request", err[0] ? err : "not a JSON object");
			continue;
		}
		dispatch(s, c, req);
		json_decref(req);
	}
}

/* Bring the server's count of buffered input up to date with c's buffer. */
static void account(struct nl_server *s, struct conn *c)
{
	s->bufbytes = s->bufbytes - c->counted + c->lb.cap;
	c->counted = c->lb.cap;
}

/* Too much input held over all connections: the one that has more than a small request's worth is
 * closed, as for an over-long line. */
static bool over_budget(const struct nl_server *s, const struct conn *c)
{
	return s->bufbytes > NL_SERVER_INPUT_BUDGET && c->lb.cap > 4 * NL_LINEBUF_MIN;
}

static void conn_read(struct nl_server *s, struct conn *c)
{
	int r = nl_linebuf_dyn_fill(&c->lb, c->fd);

	account(s, c);
	if (r == NL_ERR_TOO_BIG || over_budget(s, c)) {
		if (r == NL_ERR_TOO_BIG)
			nl_warn("connection %llu: line over %d bytes; closed", (unsigned long long)c->id,
			        NL_IPC_MAX_LINE);
		else
			nl_warn("connection %llu: over %d bytes held by all connections; closed",
			        (unsigned long long)c->id, NL_SERVER_INPUT_BUDGET);
		nl_linebuf_dyn_clear(&c->lb);
		account(s, c);
		unpark(s, c);
		nl_free_secret_buf(c->out, c->outlen);
		c->out = NULL;
		c->outlen = c->outoff = 0;
		c->close_after = true;
		reply_error(c, "too_big", "request line over 65536 bytes");
		return;
	}
	if (r < 0) {
		c->dead = true;
		return;
	}
	conn_process(s, c);
}

/* ---- connections ---- */

static bool in_group(uid_t uid, gid_t gid, gid_t want)
{
	struct passwd pw, *pwp = NULL;
	char buf[4096];
	gid_t groups[256];
	int n = (int)(sizeof(groups) / sizeof(groups[0]));

	if (gid == want)
		return true;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &pwp) != 0 || pwp == NULL)
		return false;
	if (pw.pw_gid == want)
		return true;
	if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
		return false; /* more groups than we look at: refuse rather than guess */
	for (int i = 0; i < n; i++)
		if (groups[i] == want)
			return true;
	return false;
}

/* 1 admin (root, or the daemon's own uid: a daemon a person runs, as the tests do, serves that
 * person), 0 allowed (socket group), -1 refused. */
static int peer_class(const struct nl_server *s, int fd, uid_t *uid)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	struct group gr, *grp = NULL;
	char buf[4096];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || len != sizeof(cr))
		return -1;
	*uid = cr.uid;
	if (cr.uid == 0 || cr.uid == geteuid())
		return 1;
	if (s->ctx.cfg->socket_group == NULL)
		return -1;
	if (getgrnam_r(s->ctx.cfg->socket_group, &gr, buf, sizeof(buf), &grp) != 0 || grp == NULL)
		return -1;
	return in_group(cr.uid, cr.gid, grp->gr_gid) ? 0 : -1;
}

static void refuse(int fd, const char *text)
{
	ssize_t n = send(fd, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)n;
	close(fd);
}

/* ---- deadlines: one min-heap of connections, keyed by the wait's or the idle deadline ---- */

static int64_t conn_deadline(const struct conn *c)
{
	return c->parked ? c->wait_deadline : c->idle_deadline;
}

static void heap_swap(struct nl_server *s, size_t i, size_t j)
{
	struct conn *t = s->heap[i];
	s->heap[i] = s->heap[j];
	s->heap[j] = t;
	s->heap[i]->heap_ix = i;
	s->heap[j]->heap_ix = j;
}

static void heap_fix(struct nl_server *s, size_t i)
{
	while (i > 0 && conn_deadline(s->heap[i]) < conn_deadline(s->heap[(i - 1) / 2])) {
		heap_swap(s, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < s->heap_n && conn_deadline(s->heap[l]) < conn_deadline(s->heap[m]))
			m = l;
		if (r < s->heap_n && conn_deadline(s->heap[r]) < conn_deadline(s->heap[m]))
			m = r;
		if (m == i)
			break;
		heap_swap(s, i, m);
		i = m;
	}
}

static int heap_add(struct nl_server *s, struct conn *c)
{
	if (s->heap_n == s->heap_cap) {
		size_t cap = s->heap_cap ? s->heap_cap * 2 : 256;
		struct conn **h = realloc(s->heap, cap * sizeof(*h));
		if (h == NULL)
			return NL_ERR_NOMEM;
		s->heap = h;
		s->heap_cap = cap;
	}
	c->heap_ix = s->heap_n;
	s->heap[s->heap_n++] = c;
	heap_fix(s, c->heap_ix);
	return 0;
}

static void heap_del(struct nl_server *s, struct conn *c)
{
	size_t i = c->heap_ix;

	if (i == NO_HEAP)
		return;
	c->heap_ix = NO_HEAP;
	if (i != --s->heap_n) {
		s->heap[i] = s->heap[s->heap_n];
		s->heap[i]->heap_ix = i;
		heap_fix(s, i);
	}
}

/* ---- connections ---- */

static void set_events(struct nl_server *s, struct conn *c, uint32_t ev)
{
	struct epoll_event e = {.events = ev, .data.ptr = c};

	if (ev == c->events)
		return;
	if (epoll_ctl(s->ep_fd, EPOLL_CTL_MOD, c->fd, &e) != 0) {
		nl_warn("connection %llu: epoll: %s", (unsigned long long)c->id, strerror(errno));
		c->dead = true;
		return;
	}
	c->events = ev;
}

/* After anything happened to c: a dead connection goes on the list to be freed; a live one gets
 * its deadline and its epoll interest brought up to date. */
static void settle(struct nl_server *s, struct conn *c)
{
	uint32_t ev = 0;

	account(s, c);
	if (!c->dead) {
		/* A full buffer is not read further until a line is answered (no busy loop). */
		if (!nl_linebuf_dyn_full(&c->lb))
			ev |= EPOLLIN;
		if (c->outlen > 0)
			ev |= EPOLLOUT;
		set_events(s, c, ev);
		heap_fix(s, c->heap_ix);
	}
	if (c->dead && !c->on_dead_list) {
		heap_del(s, c);
		c->on_dead_list = true;
		c->next_dead = s->dead;
		s->dead = c;
	}
}

static void accept_some(struct nl_server *s)
{
	for (int i = 0; i < ACCEPTS_PER_ROUND; i++) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), cls;
		struct epoll_event e = {.events = EPOLLIN};
		struct conn *c;
		uid_t uid = (uid_t)-1;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				/* The listener stays readable: stop watching it for a moment. */
				nl_warn("accept: %s; not accepting for %d ms", strerror(errno),
				        ACCEPT_PAUSE_MS);
				e.events = 0;
				e.data.ptr = &mark_listen;
				if (epoll_ctl(s->ep_fd, EPOLL_CTL_MOD, s->listen_fd, &e) == 0) {
					s->accept_paused = true;
					s->accept_resume = nl_mono_ms() + ACCEPT_PAUSE_MS;
				}
			}
			return;
		}
		if ((cls = peer_class(s, fd, &uid)) < 0) {
			nl_notice("socket peer uid %ld refused", (long)uid);
			refuse(fd, "{\"ok\":false,\"error\":\"forbidden\",\"message\":\"not allowed to use "
			           "nhslogind\"}\n");
			continue;
		}
		if (s->nconns >= s->max_conns) {
			/* "unavailable": the daemon is full, not the person refused (break-glass applies) */
			refuse(fd, "{\"ok\":false,\"error\":\"unavailable\",\"message\":\"too many "
			           "connections\"}\n");
			continue;
		}
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			refuse(fd, "{\"ok\":false,\"error\":\"internal\",\"message\":\"out of memory\"}\n");
			continue;
		}
		c->fd = fd;
		c->id = s->next_id++;
		c->uid = uid;
		c->admin = cls == 1;
		c->idle_deadline = nl_mono_ms() + NL_SERVER_IDLE_MS;
		c->events = EPOLLIN;
		c->heap_ix = NO_HEAP;
		e.data.ptr = c;
		if (heap_add(s, c) != 0 || epoll_ctl(s->ep_fd, EPOLL_CTL_ADD, fd, &e) != 0) {
			heap_del(s, c);
			free(c);
			refuse(fd, "{\"ok\":false,\"error\":\"internal\",\"message\":\"out of memory\"}\n");
			continue;
		}
		c->next = s->conns;
		if (s->conns != NULL)
			s->conns->prev = c;
		s->conns = c;
		s->nconns++;
	}
	__atomic_store_n(&s->nconns_public, s->nconns, __ATOMIC_RELAXED);
}

static void conn_free(struct nl_server *s, struct conn *c)
{
	if (c->job != NULL)
		c->job->c = NULL; /* the worker's result is dropped when it comes back */
	nl_flows_cancel_owner(s->ctx.flows, c->id);
	unpark(s, c);
	heap_del(s, c);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	s->nconns--;
	nl_free_secret_buf(c->out, c->outlen);
	nl_linebuf_dyn_clear(&c->lb);
	account(s, c);
	close(c->fd); /* also takes it out of the epoll set */
	free(c);
}

/* Free the connections that died this round. */
static void reap(struct nl_server *s)
{
	while (s->dead != NULL) {
		struct conn *c = s->dead;
		s->dead = c->next_dead;
		conn_free(s, c);
	}
	__atomic_store_n(&s->nconns_public, s->nconns, __ATOMIC_RELAXED);
}

/* A parked wait's flow changed, or its time ran out: answer it if there is an answer. */
static void wake(struct nl_server *s, struct conn *c, int64_t now)
{
	uint64_t tag = 0;

	if (c->dead || !c->parked)
		return;
	if (wait_check(s, c, c->wait_code, now >= c->wait_deadline, &tag)) {
		unpark(s, c);
		c->idle_deadline = now + NL_SERVER_IDLE_MS;
		conn_process(s, c);
	}
	settle(s, c);
}

/* The flows table says some flows ended: wake the waits parked on them (every wait if the table
 * could not keep count). */
static void wake_changed(struct nl_server *s)
{
	uint64_t tags[TAGS_PER_TAKE];
	int64_t now = nl_mono_ms();
	bool overflow = false, all = false;
	size_t n;

	do {
		n = nl_flows_take_changed(s->ctx.flows, tags, TAGS_PER_TAKE, &overflow);
		all = all || overflow;
		for (size_t i = 0; i < n && !all; i++) {
			struct conn *c = s->wait_bucket[tags[i] & (WAIT_BUCKETS - 1)], *next;
			/* Waking c may only unpark c itself; a new wait goes to a bucket's head. */
			for (; c != NULL; c = next) {
				next = c->wnext;
				if (c->wait_tag == tags[i])
					wake(s, c, now);
			}
		}
	} while (n > 0);
	if (all) {
		for (struct conn *c = s->conns; c != NULL; c = c->next)
			wake(s, c, now);
	}
}

/* Deadlines: waits that ran out, idle connections, the once-a-second sweep, the paused listener.
 * Returns the epoll timeout until the next one. */
static int timers(struct nl_server *s)
{
	int64_t now = nl_mono_ms(), next;

	if (now >= s->next_sweep) {
		nl_flows_sweep(s->ctx.flows);
		s->next_sweep = now + SWEEP_MS;
	}
	if (s->accept_paused && now >= s->accept_resume) {
		struct epoll_event e = {.events = EPOLLIN, .data.ptr = &mark_listen};
		if (epoll_ctl(s->ep_fd, EPOLL_CTL_MOD, s->listen_fd, &e) == 0)
			s->accept_paused = false;
		else
			s->accept_resume = now + ACCEPT_PAUSE_MS;
	}
	while (s->heap_n > 0 && conn_deadline(s->heap[0]) <= now) {
		struct conn *c = s->heap[0];
		if (c->dead) {
			heap_del(s, c);
			continue;
		}
		if (c->parked) {
			wake(s, c, now); /* timed out: always answered */
			continue;
		}
		/* A person is reading a code or signing in on the phone, and the module is quiet while
		 * it waits for them to press Enter: not idle. The flow's own expiry, a cancel, or the
		 * connection closing ends it, never silence. */
		if (c->job != NULL || nl_flows_owner_active(s->ctx.flows, c->id)) {
			c->idle_deadline = now + NL_SERVER_IDLE_MS;
			heap_fix(s, c->heap_ix);
			continue;
		}
		nl_debug("connection %llu idle; closed", (unsigned long long)c->id);
		c->dead = true;
		settle(s, c); /* out of the heap; freed at the end of the round */
	}
	next = s->next_sweep;
	if (s->accept_paused && s->accept_resume < next)
		next = s->accept_resume;
	if (s->heap_n > 0 && conn_deadline(s->heap[0]) < next)
		next = conn_deadline(s->heap[0]);
	now = nl_mono_ms();
	return next <= now ? 0 : next - now > INT_MAX ? INT_MAX : (int)(next - now);
}

static void drain_fd(int fd)
{
	uint64_t v;
	for (int i = 0; i < 64 && read(fd, &v, sizeof(v)) > 0; i++)
		;
}

static void read_signals(struct nl_server *s)
{
	struct signalfd_siginfo si;
	while (read(s->ctx.signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			nl_notice(
			    "SIGHUP: reload is not supported; restart nhslogind to read the configuration");
		} else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
			nl_notice("signal %u: stopping", si.ssi_signo);
			s->stopping = true;
		}
	}
}

/* What epoll said about connection c. */
static void conn_event(struct nl_server *s, struct conn *c, uint32_t re)
{
	if (c->dead)
		return;
	if (re & EPOLLOUT) {
		conn_flush(c);
		if (c->outlen == 0)
			conn_process(s, c);
	}
	if (re & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		if (nl_linebuf_dyn_full(&c->lb) && (re & (EPOLLHUP | EPOLLERR)))
			c->dead = true; /* gone, and nothing more can be read: the reply has nowhere to go */
		else if (!c->dead)
			conn_read(s, c);
	}
	settle(s, c);
}

/* Stopping: every sign-in in progress ends as "restarted" (logged once each), and the waits parked
 * on them are told so before the socket closes, rather than seeing it drop. */
static void goodbye(struct nl_server *s)
{
	if (nl_flows_end_all(s->ctx.flows, NL_REASON_RESTARTED, "daemon restarted or stopped") > 0) {
		drain_fd(s->ctx.notify_fd);
		wake_changed(s);
	}
	reap(s);
}

int nl_server_run(struct nl_server *s)
{
	struct epoll_event ev[EVENTS_PER_ROUND];
	int timeout = 0, n;

	if (s == NULL)
		return NL_ERR_INTERNAL;
	s->next_sweep = nl_mono_ms() + SWEEP_MS;
	while (!s->stopping) {
		bool accept = false, changed = false;

		if ((n = epoll_wait(s->ep_fd, ev, EVENTS_PER_ROUND, timeout)) < 0) {
			if (errno != EINTR) {
				nl_err("epoll_wait: %s", strerror(errno));
				return NL_ERR_IO;
			}
			n = 0;
		}
		for (int i = 0; i < n; i++) {
			void *p = ev[i].data.ptr;
			if (p == &mark_stop) {
				goodbye(s);
				return 0;
			}
			if (p == &mark_signal)
				read_signals(s);
			else if (p == &mark_notify)
				changed = true;
			else if (p == &mark_listen)
				accept = true;
			else if (p == &mark_jobs)
				take_jobs(s);
			else
				conn_event(s, p, ev[i].events);
		}
		if (changed) {
			drain_fd(s->ctx.notify_fd);
			wake_changed(s);
		}
		if (accept)
			accept_some(s);
		timeout = timers(s);
		reap(s);
	}
	goodbye(s);
	return 0;
}

/* ---- setup ---- */

/* The socket's directory: created 0755 if missing; else a directory that others cannot write to
 * (sticky or not), owned by root or us. */
static int prepare_dir(const char *path, char *err, size_t errlen)
{
	char *dir = strdup(path), *slash;
	struct stat st;
	int r = NL_ERR_CONFIG;

	if (dir == NULL)
		return NL_ERR_NOMEM;
	if ((slash = strrchr(dir, '/')) == NULL || slash == dir) {
		r = 0; /* the root directory, or relative: nothing to make */
		goto out;
	}
	*slash = '\0';
	if (stat(dir, &st) != 0) {
		if (errno != ENOENT || mkdir(dir, 0755) != 0 || chmod(dir, 0755) != 0) {
			set_err(err, errlen, "cannot create socket directory %s: %s", dir);
			r = NL_ERR_IO;
			goto out;
		}
		r = 0;
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		set_err(err, errlen, "socket directory %s is not a directory%.0s", dir);
		goto out;
	}
	/* Sticky or not: in a directory others can write to, another uid could bind the path first
	 * and answer the module in the daemon's place. */
	if ((st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & 0022)) {
		set_err(err, errlen,
		        "socket directory %s is writable by others or not owned by root (use a root-owned "
		        "0755 directory such as /run/nhslogin)%.0s",
		        dir);
		r = NL_ERR_PERM;
		goto out;
	}
	r = 0;
out:
	free(dir);
	return r;
}

/* A socket left by a daemon that died is removed; a live one, or a non-socket, is an error. */
static int clear_stale(const char *path, const struct sockaddr_un *sa, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		set_err(err, errlen, "%s: %s", path);
		return NL_ERR_IO;
	}
	if (!S_ISSOCK(st.st_mode)) {
		set_err(err, errlen, "%s exists and is not a socket%.0s", path);
		return NL_ERR_CONFIG;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0) {
		bool live = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
		close(fd);
		if (live) {
			set_err(err, errlen, "another nhslogind is listening on %s%.0s", path);
			return NL_ERR_CONFIG;
		}
	}
	if (unlink(path) != 0) {
		set_err(err, errlen, "cannot remove stale socket %s: %s", path);
		return NL_ERR_IO;
	}
	return 0;
}

static int set_mode(const struct nl_config *cfg, const char *path, char *err, size_t errlen)
{
	struct group gr, *grp = NULL;
	char buf[4096];

	if (cfg->socket_group == NULL) {
		if (chmod(path, 0600) == 0)
			return 0;
		set_err(err, errlen, "chmod %s: %s", path);
		return NL_ERR_IO;
	}
	if (getgrnam_r(cfg->socket_group, &gr, buf, sizeof(buf), &grp) != 0 || grp == NULL) {
		set_err(err, errlen, "socket_group %s: no such group%.0s", cfg->socket_group);
		return NL_ERR_CONFIG;
	}
	if (chown(path, (uid_t)-1, grp->gr_gid) != 0 || chmod(path, 0660) != 0) {
		set_err(err, errlen, "setting the group of %s: %s", path);
		return NL_ERR_IO;
	}
	return 0;
}

/* Raise the soft RLIMIT_NOFILE to the hard one (a socket a waiting login), and size the
 * connection limit to what is left after the bridge's and everything else's fds. */
static size_t conn_limit(void)
{
	struct rlimit rl;
	size_t fds, n;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 256;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t want = rl.rlim_max;
		rl.rlim_cur = want;
		/* Refused under a seccomp filter without @resources: the unit's LimitNOFILE= rules. */
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && getrlimit(RLIMIT_NOFILE, &rl) != 0)
			return 256;
	}
	fds = rl.rlim_cur > (rlim_t)NL_SERVER_MAX_CONNS * 2 ? (size_t)NL_SERVER_MAX_CONNS * 2
	                                                    : (size_t)rl.rlim_cur;
	n = fds > 2 * NL_SERVER_RESERVED_FDS ? fds - NL_SERVER_RESERVED_FDS : fds / 2;
	return n < NL_SERVER_MAX_CONNS ? n : NL_SERVER_MAX_CONNS;
}

static int watch(struct nl_server *s, int fd, void *mark)
{
	struct epoll_event e = {.events = EPOLLIN, .data.ptr = mark};
	return fd < 0 || epoll_ctl(s->ep_fd, EPOLL_CTL_ADD, fd, &e) == 0 ? 0 : NL_ERR_IO;
}

int nl_server_new(const struct nl_server_ctx *ctx, struct nl_server **out, char *err, size_t errlen)
{
	struct nl_server *s = NULL;
	struct sockaddr_un sa;
	struct stat st;
	const char *path;
	int r = NL_ERR_INTERNAL;

	if (ctx == NULL || ctx->cfg == NULL || ctx->flows == NULL || out == NULL)
		return NL_ERR_INTERNAL;
	path = ctx->cfg->socket_path != NULL ? ctx->cfg->socket_path : NL_DEFAULT_SOCKET;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		set_err(err, errlen, "socket path %s is too long%.0s", path);
		return NL_ERR_CONFIG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NL_ERR_NOMEM;
	s->ctx = *ctx;
	s->listen_fd = s->stop_fd = s->ep_fd = -1;
	s->max_conns = conn_limit();
	s->next_id = 1;
	s->started_ms = nl_mono_ms();
	if ((s->path = strdup(path)) == NULL) {
		r = NL_ERR_NOMEM;
		goto out;
	}
	if ((r = prepare_dir(path, err, errlen)) != 0 || (r = clear_stale(path, &sa, err, errlen)) != 0)
		goto out;
	if ((s->ep_fd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (s->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    (s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
		set_err(err, errlen, "socket%s: %s", "");
		r = NL_ERR_IO;
		goto out;
	}
	if (bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		set_err(err, errlen, "bind %s: %s", path);
		r = NL_ERR_IO;
		goto out;
	}
	if (lstat(path, &st) == 0) {
		s->sock_dev = st.st_dev;
		s->sock_ino = st.st_ino;
	}
	if ((r = set_mode(ctx->cfg, path, err, errlen)) != 0)
		goto out;
	if (listen(s->listen_fd, SOMAXCONN) != 0) {
		set_err(err, errlen, "listen %s: %s", path);
		r = NL_ERR_IO;
		goto out;
	}
	if ((r = watch(s, s->listen_fd, &mark_listen)) != 0 || (r = watch(s, s->stop_fd, &mark_stop)) != 0 ||
	    (r = watch(s, ctx->notify_fd, &mark_notify)) != 0 ||
	    (r = watch(s, ctx->signal_fd, &mark_signal)) != 0 ||
	    (r = nl_jobs_new(START_WORKERS, START_QUEUE_MAX, &s->jobs)) != 0 ||
	    (r = watch(s, nl_jobs_fd(s->jobs), &mark_jobs)) != 0) {
		set_err(err, errlen, "epoll%s: %s", "");
		goto out;
	}
	*out = s;
	s = NULL;
	r = 0;
out:
	nl_server_free(s);
	return r;
}

void nl_server_stop(struct nl_server *s)
{
	uint64_t one = 1;
	if (s != NULL && s->stop_fd >= 0) {
		ssize_t n = write(s->stop_fd, &one, sizeof(one));
		(void)n;
	}
}

size_t nl_server_conn_count(struct nl_server *s)
{
	return s != NULL ? __atomic_load_n(&s->nconns_public, __ATOMIC_RELAXED) : 0;
}

void nl_server_free(struct nl_server *s)
{
	struct stat st;

	if (s == NULL)
		return;
	while (s->conns != NULL)
		conn_free(s, s->conns);
	s->dead = NULL;
	nl_jobs_free(s->jobs, start_job_free);
	free(s->heap);
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		/* Unlink only the socket we made, not one a newer daemon put there. */
		if (s->path != NULL && lstat(s->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
		    st.st_dev == s->sock_dev && st.st_ino == s->sock_ino)
			unlink(s->path);
	}
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	if (s->ep_fd >= 0)
		close(s->ep_fd);
	free(s->path);
	free(s);
}
