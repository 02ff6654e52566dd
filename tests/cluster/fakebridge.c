/* The stand-in bridge of the agent tests: the agent API on libmicrohttpd, each request's NL-Host
 * signature checked as a real bridge checks it, answers by mode (fakebridge.h). */
#include "config.h"
#include "fakebridge.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hostauth.h"
#include "mockproc.h"
#include "nl_b64.h"
#include "nl_config.h"
#include "nl_jose.h"
#include "nl_json.h"
#include "nl_time.h"
#include "oidc.h"

#define FB_FLOWS    32
#define FB_JTIS     4096
#define FB_MAX_BODY (16 * 1024)
#define FLOWS_PATH  "/agent/v1/flows"

struct fbflow {
	bool used, ended;
	char id[32], nonce[64], user[65];
	char *answer; /* the end, as JSON text, once the phone has acted */
};

struct fakebridge {
	struct MHD_Daemon *d;
	char url[64];
	struct nl_hostauth_hosts *hosts;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stopping, kick;
	enum fb_mode mode;
	unsigned start_status, start_delay_ms, fail_polls, number, nflows_made;
	struct fbflow flows[FB_FLOWS];
	int latest; /* index of the latest flow, -1 */
	char *jtis[FB_JTIS];
	size_t njtis;
	struct fakebridge_stats st;
	char *last_id_token; /* the last honest approval's, for FB_REPLAY */
	/* the bridge's client at NHS login */
	struct nl_config cfg;
	bool has_cfg;
	struct nl_oidc *oidc;
	cjose_jwk_t *own; /* a key of the bridge's own */
};

struct upload {
	char *buf;
	size_t len;
	bool too_big;
};

/* ---- the replay set (a real bridge: Redis SET NX) ---- */

static enum nl_hostauth_replay replay_note(void *ctx, const char *name, const char *jti, time_t expires_at)
{
	struct fakebridge *fb = ctx;
	char key[200];
	(void)expires_at;

	snprintf(key, sizeof(key), "%s/%s", name, jti);
	for (size_t i = 0; i < fb->njtis; i++)
		if (strcmp(fb->jtis[i], key) == 0) {
			fb->st.replayed++;
			return NL_HOSTAUTH_REPLAY_SEEN;
		}
	if (fb->njtis >= FB_JTIS || (fb->jtis[fb->njtis] = strdup(key)) == NULL)
		return NL_HOSTAUTH_REPLAY_ERROR;
	fb->njtis++;
	fb->st.jtis++;
	return NL_HOSTAUTH_REPLAY_NEW;
}

/* ---- answers ---- */

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, const char *text)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *word)
{
	char body[200];
	snprintf(body, sizeof(body), "{\"error\":\"%s\",\"message\":\"fake bridge\"}", word);
	return send_json(c, status, body);
}

static struct fbflow *find_flow(struct fakebridge *fb, const char *id)
{
	for (int i = 0; i < FB_FLOWS; i++)
		if (fb->flows[i].used && strcmp(fb->flows[i].id, id) == 0)
			return &fb->flows[i];
	return NULL;
}

static void flow_drop(struct fbflow *f)
{
	free(f->answer);
	memset(f, 0, sizeof(*f));
}

static enum MHD_Result handle_start(struct fakebridge *fb, struct MHD_Connection *c, const struct upload *up)
{
	json_t *m = up->buf != NULL ? json_loadb(up->buf, up->len, 0, NULL) : NULL;
	const char *nonce = m != NULL ? nl_json_str(m, "nonce") : NULL, *user = nl_json_str(m, "user");
	long long ttl = 0;
	char body[1024];
	struct fbflow *f = NULL;
	enum MHD_Result ret;
	unsigned delay;

	pthread_mutex_lock(&fb->mu);
	fb->st.starts++;
	if (fb->start_status != 0) {
		unsigned s = fb->start_status;
		pthread_mutex_unlock(&fb->mu);
		json_decref(m);
		return send_error(c, s, s == 503 ? "unavailable" : s == 429 ? "limit" : "error");
	}
	if (nonce == NULL || strlen(nonce) != 43 || user == NULL || nl_json_int(m, "ttl", &ttl) != 0) {
		pthread_mutex_unlock(&fb->mu);
		json_decref(m);
		return send_error(c, 400, "bad_request");
	}
	fb->st.last_ttl = (unsigned)ttl;
	fb->st.last_number_match = json_is_true(json_object_get(m, "number_match"));
	for (int i = 0; i < FB_FLOWS && f == NULL; i++)
		if (!fb->flows[i].used) {
			f = &fb->flows[i];
			fb->latest = i;
		}
	if (f == NULL) {
		pthread_mutex_unlock(&fb->mu);
		json_decref(m);
		return send_error(c, 503, "unavailable");
	}
	f->used = true;
	snprintf(f->id, sizeof(f->id), "fb-flow-%u", ++fb->nflows_made);
	snprintf(f->nonce, sizeof(f->nonce), "%s", nonce);
	snprintf(f->user, sizeof(f->user), "%s", user);
	snprintf(body, sizeof(body),
	         "{\"flow\":\"%s\",\"user_code\":\"BCDF-GHJK\",\"verification_uri\":\"%s/d\","
	         "\"verification_uri_complete\":\"%s/d?code=BCDFGHJK\",\"expires_in\":%lld}",
	         f->id, fb->url, fb->url, ttl > 0 && ttl < 600 ? ttl : 600);
	delay = fb->start_delay_ms;
	pthread_mutex_unlock(&fb->mu);
	json_decref(m);
	if (delay > 0) /* the flow is made; its answer is slow */
		usleep((useconds_t)delay * 1000);
	ret = send_json(c, 201, body);
	return ret;
}

/* The long-poll: the end if there is one (handed over once, then the flow is gone), else pending
 * after at most wait s. */
static enum MHD_Result handle_poll(struct fakebridge *fb, struct MHD_Connection *c, const char *id)
{
	const char *w = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "wait");
	int wait = w != NULL ? atoi(w) : 0;
	int64_t until = nl_mono_ms() + (int64_t)(wait < 0 ? 0 : wait > 25 ? 25 : wait) * 1000;
	struct fbflow *f;
	char *answer = NULL;
	unsigned fail;

	pthread_mutex_lock(&fb->mu);
	fb->st.polls++;
	if ((fail = fb->fail_polls) > 0) {
		fb->fail_polls--;
		pthread_mutex_unlock(&fb->mu);
		return fail % 2 == 1 ? MHD_NO : send_error(c, 502, "bad_gateway");
	}
	while ((f = find_flow(fb, id)) != NULL && f->answer == NULL && !fb->stopping &&
	       nl_mono_ms() < until) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&fb->cv, &fb->mu, &ts);
	}
	if (fb->kick) {
		fb->kick = false;
		pthread_mutex_unlock(&fb->mu);
		return send_error(c, 502, "bad_gateway");
	}
	if (f != NULL && f->answer != NULL) {
		answer = f->answer;
		f->answer = NULL;
		flow_drop(f);
	}
	pthread_mutex_unlock(&fb->mu);
	if (f == NULL)
		return send_error(c, 404, "not_found");
	if (answer != NULL) {
		enum MHD_Result ret = send_json(c, 200, answer);
		free(answer);
		return ret;
	}
	return send_json(c, 200, "{\"status\":\"pending\",\"expires_in\":60}");
}

static enum MHD_Result handle_delete(struct fakebridge *fb, struct MHD_Connection *c, const char *id)
{
	struct fbflow *f;
	struct MHD_Response *r;
	enum MHD_Result ret;

	pthread_mutex_lock(&fb->mu);
	fb->st.deletes++;
	if ((f = find_flow(fb, id)) != NULL)
		flow_drop(f);
	pthread_cond_broadcast(&fb->cv);
	pthread_mutex_unlock(&fb->mu);
	if (f == NULL)
		return send_error(c, 404, "not_found");
	if ((r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT)) == NULL)
		return MHD_NO;
	ret = MHD_queue_response(c, 204, r);
	MHD_destroy_response(r);
	return ret;
}

/* The request target as signed: the path and, for a poll, its query. */
static void target_of(struct MHD_Connection *c, const char *url, char *out, size_t outlen)
{
	const char *w = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "wait");
	if (w != NULL)
		snprintf(out, outlen, "%s?wait=%s", url, w);
	else
		snprintf(out, outlen, "%s", url);
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size,
                              void **req_cls)
{
	struct fakebridge *fb = cls;
	struct upload *up = *req_cls;
	const char *auth;
	struct nl_hostauth_error herr;
	char name[NL_HOSTAUTH_NAME_MAX + 1], target[512];
	int r;
	(void)version;

	if (up == NULL) {
		if ((up = calloc(1, sizeof(*up))) == NULL)
			return MHD_NO;
		*req_cls = up;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		if (up->len + n > FB_MAX_BODY) {
			up->too_big = true;
		} else {
			char *nb = realloc(up->buf, up->len + n + 1);
			if (nb == NULL)
				return MHD_NO;
			memcpy(nb + up->len, upload_data, n);
			up->buf = nb;
			up->len += n;
			up->buf[up->len] = '\0';
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (up->too_big)
		return send_error(c, 413, "too_big");
	auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	target_of(c, url, target, sizeof(target));
	pthread_mutex_lock(&fb->mu);
	r = nl_hostauth_verify(fb->hosts, auth, method, target, up->buf != NULL ? up->buf : "", up->len,
	                       fb->url, nl_now(), replay_note, fb, name, &herr);
	if (r != 0) {
		fb->st.refused++;
		snprintf(fb->st.last_refusal, sizeof(fb->st.last_refusal), "%.8s %.100s: %.40s (%.100s)",
		         method, target, nl_hostauth_reason_word(herr.reason), herr.detail);
	}
	pthread_mutex_unlock(&fb->mu);
	if (r != 0)
		return send_error(c, 401, "unauthorized");
	if (strcmp(url, FLOWS_PATH) == 0 && strcmp(method, "POST") == 0)
		return handle_start(fb, c, up);
	if (strncmp(url, FLOWS_PATH "/", strlen(FLOWS_PATH) + 1) == 0) {
		const char *id = url + strlen(FLOWS_PATH) + 1;
		if (strcmp(method, "GET") == 0)
			return handle_poll(fb, c, id);
		if (strcmp(method, "DELETE") == 0)
			return handle_delete(fb, c, id);
	}
	return send_error(c, 404, "not_found");
}

static void completed(void *cls, struct MHD_Connection *c, void **req_cls, enum MHD_RequestTerminationCode t)
{
	struct upload *up = *req_cls;
	(void)cls;
	(void)c;
	(void)t;
	if (up != NULL) {
		free(up->buf);
		free(up);
		*req_cls = NULL;
	}
}

struct fakebridge *fakebridge_start(const char *hosts_dir)
{
	struct fakebridge *fb = calloc(1, sizeof(*fb));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
	const union MHD_DaemonInfo *info;

	if (fb == NULL)
		return NULL;
	fb->latest = -1;
	pthread_mutex_init(&fb->mu, NULL);
	pthread_cond_init(&fb->cv, NULL);
	if (nl_hostauth_hosts_new(hosts_dir, 0, &fb->hosts) != 0)
		goto fail;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fb->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
	                         NULL, answer, fb, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	                         MHD_OPTION_NOTIFY_COMPLETED, completed, fb, MHD_OPTION_CONNECTION_TIMEOUT,
	                         (unsigned int)60, MHD_OPTION_END);
	if (fb->d == NULL || (info = MHD_get_daemon_info(fb->d, MHD_DAEMON_INFO_BIND_PORT)) == NULL ||
	    info->port == 0)
		goto fail;
	snprintf(fb->url, sizeof(fb->url), "http://127.0.0.1:%u", (unsigned)info->port);
	return fb;
fail:
	fakebridge_stop(fb);
	return NULL;
}

int fakebridge_client(struct fakebridge *fb, const char *issuer, const char *client_id, const char *key_path,
                      const char *redirect_uri, const char *dir)
{
	char err[256] = "", cache[300];
	char *pub = NULL, *priv = NULL;
	int r;

	snprintf(cache, sizeof(cache), "%s/fb-cache", dir);
	nl_config_init(&fb->cfg);
	fb->has_cfg = true;
	if (nl_config_set(&fb->cfg, "env", "issuer", issuer, err, sizeof(err)) != 0 ||
	    nl_config_set(&fb->cfg, "env", "client_id", client_id, err, sizeof(err)) != 0 ||
	    nl_config_set(&fb->cfg, "env", "client_key", key_path, err, sizeof(err)) != 0 ||
	    nl_config_set(&fb->cfg, "env", "redirect_uri", redirect_uri, err, sizeof(err)) != 0 ||
	    nl_config_set(&fb->cfg, "env", "scope", "openid profile", err, sizeof(err)) != 0 ||
	    nl_config_set(&fb->cfg, "env", "vtr", "[\"P9.Cp.Cd\",\"P9.Cp.Ck\",\"P9.Cm\"]", err,
	                  sizeof(err)) != 0 ||
	    nl_config_set(&fb->cfg, "daemon", "cache_dir", cache, err, sizeof(err)) != 0 ||
	    nl_config_set(&fb->cfg, "daemon", "http_timeout", "5", err, sizeof(err)) != 0) {
		fprintf(stderr, "# fakebridge config: %s\n", err);
		return -1;
	}
	if (nl_oidc_new(&fb->cfg, &fb->oidc, err, sizeof(err)) != 0) {
		fprintf(stderr, "# fakebridge oidc: %s\n", err);
		return -1;
	}
	nl_oidc_keep_raw(fb->oidc, true);
	r = mockproc_client_key(dir, "bridge-own", &fb->own, &pub, &priv);
	free(pub);
	free(priv);
	return r == 0 ? 0 : -1;
}

int fakebridge_warm(struct fakebridge *fb)
{
	char err[256] = "";

	if (fb->oidc == NULL || nl_oidc_ready(fb->oidc, err, sizeof(err)) != 0) {
		fprintf(stderr, "# fakebridge: NHS login's keys: %s\n", err);
		return -1;
	}
	return 0;
}

void fakebridge_stop(struct fakebridge *fb)
{
	if (fb == NULL)
		return;
	pthread_mutex_lock(&fb->mu);
	fb->stopping = true;
	pthread_cond_broadcast(&fb->cv);
	pthread_mutex_unlock(&fb->mu);
	if (fb->d != NULL)
		MHD_stop_daemon(fb->d);
	for (int i = 0; i < FB_FLOWS; i++)
		flow_drop(&fb->flows[i]);
	for (size_t i = 0; i < fb->njtis; i++)
		free(fb->jtis[i]);
	nl_hostauth_hosts_free(fb->hosts);
	nl_oidc_free(fb->oidc);
	if (fb->has_cfg)
		nl_config_free(&fb->cfg);
	if (fb->own != NULL)
		cjose_jwk_release(fb->own);
	free(fb->last_id_token);
	pthread_cond_destroy(&fb->cv);
	pthread_mutex_destroy(&fb->mu);
	free(fb);
}

const char *fakebridge_url(const struct fakebridge *fb)
{
	return fb->url;
}

void fakebridge_mode(struct fakebridge *fb, enum fb_mode mode)
{
	pthread_mutex_lock(&fb->mu);
	fb->mode = mode;
	pthread_mutex_unlock(&fb->mu);
}

void fakebridge_start_status(struct fakebridge *fb, unsigned status)
{
	pthread_mutex_lock(&fb->mu);
	fb->start_status = status;
	pthread_mutex_unlock(&fb->mu);
}

void fakebridge_start_delay(struct fakebridge *fb, unsigned ms)
{
	pthread_mutex_lock(&fb->mu);
	fb->start_delay_ms = ms;
	pthread_mutex_unlock(&fb->mu);
}

void fakebridge_fail_polls(struct fakebridge *fb, unsigned n)
{
	pthread_mutex_lock(&fb->mu);
	fb->fail_polls = n;
	pthread_mutex_unlock(&fb->mu);
}

void fakebridge_revoke(struct fakebridge *fb, const char *hosts_dir, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s.pem", hosts_dir, name);
	pthread_mutex_lock(&fb->mu);
	(void)unlink(path);
	fb->kick = true;
	pthread_cond_broadcast(&fb->cv);
	pthread_mutex_unlock(&fb->mu);
}

void fakebridge_number(struct fakebridge *fb, unsigned number)
{
	pthread_mutex_lock(&fb->mu);
	fb->number = number;
	pthread_mutex_unlock(&fb->mu);
}

void fakebridge_stats(struct fakebridge *fb, struct fakebridge_stats *st)
{
	pthread_mutex_lock(&fb->mu);
	*st = fb->st;
	pthread_mutex_unlock(&fb->mu);
}

/* ---- the phone, and the lies ---- */

/* A real sign-in at the mock (auto-approved there) for nonce: the raw ID token and access token. */
static int real_signin(struct fakebridge *fb, const char *nonce, char **idt, char **at)
{
	struct mockproc_resp resp = {0};
	struct nl_grant_result res;
	char *url = NULL, *code = NULL;
	int r = -1;

	*idt = *at = NULL;
	memset(&res, 0, sizeof(res));
	if (nl_oidc_authorize_url(fb->oidc, "st-fakebridge-0001", nonce, NULL, &url) != 0 ||
	    mockproc_fetch("GET", url, NULL, NULL, NULL, &resp) != 0 || resp.location == NULL ||
	    (code = mockproc_query_param(resp.location, "code")) == NULL)
		goto out;
	if (nl_oidc_exchange_code(fb->oidc, code, NULL, nonce, &res) != 0 || res.raw_id_token == NULL) {
		fprintf(stderr, "# fakebridge: code exchange failed: %s\n", res.error);
		goto out;
	}
	*idt = strdup(res.raw_id_token);
	*at = res.raw_access_token != NULL ? strdup(res.raw_access_token) : NULL;
	r = *idt != NULL ? 0 : -1;
out:
	nl_grant_result_clear(&res);
	mockproc_resp_free(&resp);
	free(url);
	free(code);
	return r;
}

static json_t *part_json(const char *compact, int part)
{
	const char *a = strchr(compact, '.'), *b = a != NULL ? strchr(a + 1, '.') : NULL, *s;
	uint8_t *raw = NULL;
	size_t n, len = 0;
	json_t *j;

	if (a == NULL || b == NULL)
		return NULL;
	s = part == 0 ? compact : a + 1;
	n = part == 0 ? (size_t)(a - compact) : (size_t)(b - a - 1);
	if (nl_b64url_decode(s, n, &raw, &len) != 0)
		return NULL;
	j = json_loadb((const char *)raw, len, 0, NULL);
	free(raw);
	return j;
}

/* The lie of the mode, made from a real token of the flow (idt) where it needs one. New string. */
static char *told_token(struct fakebridge *fb, enum fb_mode mode, const char *idt)
{
	json_t *claims = part_json(idt, 1), *hdr = part_json(idt, 0);
	char *out = NULL, *payload = NULL, *enc = NULL, *kid = NULL;
	const char *a = strchr(idt, '.'), *b = strchr(a + 1, '.');

	if (claims == NULL || hdr == NULL)
		goto out;
	switch (mode) {
	case FB_OWN_KEY_NHS_KID:
		(void)nl_jws_sign(fb->own, "RS512", nl_json_str(hdr, "kid"), claims, &out);
		break;
	case FB_OWN_KEY_OWN_KID:
		if ((kid = nl_jwk_thumbprint(fb->own)) != NULL)
			(void)nl_jws_sign(fb->own, "RS512", kid, claims, &out);
		break;
	case FB_ALTERED:
		json_object_set_new(claims, "nhs_number", json_string("9686368906"));
		json_object_set_new(claims, "family_name", json_string("Altered"));
		if ((payload = json_dumps(claims, JSON_COMPACT)) != NULL &&
		    nl_b64url_encode((const uint8_t *)payload, strlen(payload), &enc) == 0 &&
		    asprintf(&out, "%.*s.%s%s", (int)(a - idt), idt, enc, b) < 0)
			out = NULL;
		break;
	default:
		out = strdup(idt);
	}
out:
	json_decref(claims);
	json_decref(hdr);
	free(payload);
	free(enc);
	free(kid);
	return out;
}

int fakebridge_approve(struct fakebridge *fb)
{
	char nonce[64], other[64], *idt = NULL, *at = NULL, *tok = NULL, id[32];
	enum fb_mode mode;
	unsigned number;
	json_t *ans;
	struct fbflow *f;
	int r = -1;

	pthread_mutex_lock(&fb->mu);
	mode = fb->mode;
	number = fb->number;
	f = fb->latest >= 0 && fb->flows[fb->latest].used ? &fb->flows[fb->latest] : NULL;
	if (f != NULL) {
		snprintf(nonce, sizeof(nonce), "%s", f->nonce);
		snprintf(id, sizeof(id), "%s", f->id);
	}
	pthread_mutex_unlock(&fb->mu);
	if (f == NULL)
		return -1;
	snprintf(other, sizeof(other), "another-flows-nonce-%ld", (long)nl_mono_ms());
	if (mode != FB_NO_TOKEN && mode != FB_GARBAGE &&
	    real_signin(fb, mode == FB_OTHER_NONCE ? other : nonce, &idt, &at) != 0)
		goto out;
	ans = json_pack("{ss}", "status", "approved");
	switch (mode) {
	case FB_NO_TOKEN:
		break;
	case FB_GARBAGE:
		json_object_set_new(ans, "id_token", json_string("not.a.token"));
		break;
	case FB_TWO_TOKENS:
	case FB_REPLAY:
		pthread_mutex_lock(&fb->mu);
		if (fb->last_id_token != NULL)
			json_object_set_new(ans, "id_token", json_string(fb->last_id_token));
		pthread_mutex_unlock(&fb->mu);
		break;
	default:
		if ((tok = told_token(fb, mode, idt)) != NULL)
			json_object_set_new(ans, "id_token", json_string(tok));
		if (at != NULL)
			json_object_set_new(ans, "access_token", json_string(at));
	}
	if (number != 0)
		json_object_set_new(ans, "number", json_integer(number));
	pthread_mutex_lock(&fb->mu);
	if (mode == FB_HONEST) {
		free(fb->last_id_token);
		fb->last_id_token = strdup(idt);
	}
	if ((f = find_flow(fb, id)) != NULL && f->answer == NULL) {
		f->answer = json_dumps(ans, JSON_COMPACT);
		if (mode == FB_TWO_TOKENS && f->answer != NULL && fb->last_id_token != NULL) {
			/* json_dumps cannot write a key twice: add the second by hand, before the '}' */
			char *two = NULL;
			size_t n = strlen(f->answer);
			if (asprintf(&two, "%.*s,\"id_token\":\"%s\"}", (int)(n - 1), f->answer, idt) < 0)
				two = NULL;
			free(f->answer);
			f->answer = two;
		}
		r = f->answer != NULL ? 0 : -1;
	}
	pthread_cond_broadcast(&fb->cv);
	pthread_mutex_unlock(&fb->mu);
	json_decref(ans);
out:
	free(idt);
	free(at);
	free(tok);
	return r;
}
