/* role = bridge end to end: a real redis-server, a real nhslogin-mock and TWO real nhslogind bridge
 * instances (A and B) sharing the Redis, the index key, the client key and hosts_dir. An agent
 * scripted here signs its requests with enrolled keys (doc/bridge.md's API); a scripted phone walks
 * /d, the confirmation page, the mock and the callback, hopping between the instances to prove that
 * neither keeps a flow to itself. */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "flows_store.h"
#include "harness.h"
#include "hostauth.h"
#include "mockproc.h"
#include "nl_config.h"
#include "nl_err.h"
#include "nl_ipc.h"
#include "nl_jose.h"
#include "nl_time.h"
#include "nl_wipe.h"
#include "oidc.h"
#include "ports.h"
#include "redisproc.h"
#include "skip.h"

#define STORE_TIMEOUT_MS 500
#define CODE_ATTEMPTS    4
#define MAX_FLOWS        20 /* the bridges' max_flows: pending flows of one workstation */
#define MAX_PER_USER     2  /* max_flows_per_user: (4 + 1) x 2 = 10 of one user at one workstation */
#define PAIR_BOUND       (NL_FLOWS_BRIDGE_USER_FACTOR * MAX_PER_USER)
#define NONCE            "bm9uY2Utb2YtdGhlLWFnZW50LWNob3Nlbi1ieS1pdAx" /* 43 characters */
#define NONCE2           "c2Vjb25kLW5vbmNlLW9mLXRoZS1hZ2VudC1jaG9zZW4" /* 43 characters */

/* ---- the fixture: Redis, the mock, two bridges ---- */

struct inst {
	int port;
	char conf[300], url[64], socket[108];
	pid_t pid;
};

static struct {
	const char *why; /* set: skip every test */
	char dir[64], hosts[128], keys[128];
	struct redisproc *rs;
	struct mockproc *mock;
	struct inst a, b;
	char public_url[64];
	cjose_jwk_t *ka, *kb, *kc; /* ws-a, ws-b enrolled; kc never */
	struct nl_config vcfg;     /* the agent's own check of the tokens */
	struct nl_oidc *verifier;
	bool redis_down; /* a test stopped it: the teardown starts it again if the test did not */
} fx;

static const char *builddir(void)
{
	const char *top = getenv("NL_TOP_BUILDDIR");
	return top != NULL && top[0] != '\0' ? top : ".";
}

/* Start instance i and wait for its ready line. */
static int start_inst(struct inst *i)
{
	char log[400];

	snprintf(log, sizeof(log), "%s/daemon-%d.log", fx.dir, i->port);
	return harness_spawn_daemon(i->conf, log, &i->pid) == 0 ? 0 : -1;
}

static int write_inst_config(struct inst *i, const char *name)
{
	char text[4096], state[200];

	snprintf(i->url, sizeof(i->url), "http://127.0.0.1:%d", i->port);
	snprintf(i->conf, sizeof(i->conf), "%s/%s.conf", fx.dir, name);
	snprintf(i->socket, sizeof(i->socket), "%s/run-%s/nhslogind.sock", fx.dir, name);
	snprintf(state, sizeof(state), "%s/state-%s", fx.dir, name);
	snprintf(
	    text, sizeof(text),
	    "environment = local\nenvironments_dir = %s/environments\n"
	    "[daemon]\nsocket = %s\nstate_dir = %s\ncache_dir = %s/cache-%s\nrole = bridge\ndebug = yes\n"
	    "max_flows = %d\nmax_flows_per_user = %d\n"
	    "[bridge]\nlisten = 127.0.0.1:%d\npublic_url = %s\nhosts_dir = %s\ncode_attempts = %d\n"
	    "[identity]\nclaim = nhs_number\nmap_file = %s/nhslogin.map\nmin_level = P9\n"
	    "[store]\nurl = redis://127.0.0.1:%d\nindex_key_file = %s/index.key\ntimeout_ms = %d\n",
	    fx.dir, i->socket, state, fx.dir, name, MAX_FLOWS, MAX_PER_USER, i->port, fx.public_url, fx.hosts,
	    CODE_ATTEMPTS, fx.dir, redisproc_port(fx.rs), fx.dir, STORE_TIMEOUT_MS);
	return test_write_file(i->conf, 0644, text);
}

static int enrol(const char *name, const cjose_jwk_t *key)
{
	char path[256], *pem = nl_jwk_public_pem(key);
	int r;

	snprintf(path, sizeof(path), "%s/%s.pem", fx.hosts, name);
	r = pem != NULL ? test_write_file(path, 0644, pem) : -1;
	free(pem);
	return r;
}

static cjose_jwk_t *new_key(const char *file)
{
	char path[256], err[512];
	cjose_jwk_t *jwk = NULL;
	bool created = false;

	snprintf(path, sizeof(path), "%s/%s", fx.keys, file);
	if (nl_hostauth_key_create(path, true, &created, err, sizeof(err)) != 0 ||
	    nl_hostauth_key_load(path, &jwk, err, sizeof(err)) != 0) {
		fprintf(stderr, "# %s\n", err);
		return NULL;
	}
	return jwk;
}

static void cfg_set(struct nl_config *cfg, const char *section, const char *key, const char *value)
{
	char err[256] = "";
	if (nl_config_set(cfg, section, key, value, err, sizeof(err)) != 0)
		fprintf(stderr, "# nl_config_set %s.%s: %s\n", section, key, err);
}

static int make_world(void)
{
	char path[400], client[700], text[1024], cache[300], err[256];
	char *pub = NULL, *key = NULL;
	cjose_jwk_t *jwk = NULL;
	unsigned char ik[32];
	char hex[65];
	const char *args[4];
	int r = -1;

	snprintf(fx.dir, sizeof(fx.dir), "/tmp/nl-bridgeapi.XXXXXX");
	if (mkdtemp(fx.dir) == NULL || chmod(fx.dir, 0755) != 0)
		return -1;
	snprintf(fx.hosts, sizeof(fx.hosts), "%s/hosts", fx.dir);
	snprintf(fx.keys, sizeof(fx.keys), "%s/keys", fx.dir);
	snprintf(path, sizeof(path), "%s/environments", fx.dir);
	if (mkdir(fx.hosts, 0755) != 0 || chmod(fx.hosts, 0755) != 0 || mkdir(fx.keys, 0700) != 0 ||
	    mkdir(path, 0755) != 0)
		return -1;
	if ((fx.ka = new_key("a.key")) == NULL || (fx.kb = new_key("b.key")) == NULL ||
	    (fx.kc = new_key("c.key")) == NULL || enrol("ws-a", fx.ka) != 0 || enrol("ws-b", fx.kb) != 0)
		return -1;
	/* the index key: the same file for both instances */
	if (nl_random_bytes(ik, sizeof(ik)) != 0)
		return -1;
	for (size_t i = 0; i < sizeof(ik); i++)
		snprintf(hex + 2 * i, 3, "%02x", ik[i]);
	snprintf(path, sizeof(path), "%s/index.key", fx.dir);
	if (test_write_file(path, 0600, hex) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/nhslogin.map", fx.dir);
	if (test_write_file(path, 0644, "clinician 9686368973\nnurse 9686368906\n") != 0)
		return -1;
	if ((r = redisproc_start(NULL, &fx.rs)) != 0)
		return -1;
	if ((fx.a.port = test_free_port()) <= 0 || (fx.b.port = test_free_port()) <= 0 ||
	    fx.a.port == fx.b.port)
		return -1;
	/* one public_url for both (behind a load balancer); NHS login sends the phone back to A's callback */
	snprintf(fx.public_url, sizeof(fx.public_url), "http://127.0.0.1:%d", fx.a.port);
	if (mockproc_client_key(fx.dir, "client", &jwk, &pub, &key) != 0)
		goto out;
	snprintf(client, sizeof(client), "nhslogin-test:%s:%s/callback", pub, fx.public_url);
	args[0] = "--client";
	args[1] = client;
	args[2] = NULL;
	if (mockproc_start(args, &fx.mock) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/environments/local.conf", fx.dir);
	snprintf(
	    text, sizeof(text),
	    "issuer = %s\nclient_id = nhslogin-test\nclient_key = %s\nredirect_uri = %s/callback\n"
	    "scope = openid profile\nvtr = [\"P9.Cp.Cd\",\"P9.Cp.Ck\",\"P9.Cm\"]\nallowed_algs = RS512\n",
	    mockproc_issuer(fx.mock), key, fx.public_url);
	if (test_write_file(path, 0644, text) != 0 || write_inst_config(&fx.a, "a") != 0 ||
	    write_inst_config(&fx.b, "b") != 0)
		goto out;
	if (start_inst(&fx.a) != 0 || start_inst(&fx.b) != 0)
		goto out;
	/* the agent's own verifier: NHS login's keys, fetched by itself */
	snprintf(cache, sizeof(cache), "%s/cache-verifier", fx.dir);
	if (mkdir(cache, 0700) != 0)
		goto out;
	nl_config_init(&fx.vcfg);
	cfg_set(&fx.vcfg, "env", "issuer", mockproc_issuer(fx.mock));
	cfg_set(&fx.vcfg, "env", "client_id", "nhslogin-test");
	cfg_set(&fx.vcfg, "env", "client_key", key);
	snprintf(text, sizeof(text), "%s/callback", fx.public_url);
	cfg_set(&fx.vcfg, "env", "redirect_uri", text);
	cfg_set(&fx.vcfg, "env", "scope", "openid profile");
	cfg_set(&fx.vcfg, "daemon", "cache_dir", cache);
	if (nl_oidc_new(&fx.vcfg, &fx.verifier, err, sizeof(err)) != 0) {
		fprintf(stderr, "# nl_oidc_new: %s\n", err);
		goto out;
	}
	r = 0;
out:
	if (jwk != NULL)
		cjose_jwk_release(jwk);
	free(pub);
	free(key);
	return r;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static int group_setup(void **state)
{
	(void)state;
	if (!redisproc_available(&fx.why))
		return 0;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (make_world() != 0) {
		fprintf(stderr, "# the test world did not start (logs in %s)\n", fx.dir);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	harness_stop_pid(&fx.a.pid, SIGTERM);
	harness_stop_pid(&fx.b.pid, SIGTERM);
	nl_oidc_free(fx.verifier);
	if (fx.verifier != NULL)
		nl_config_free(&fx.vcfg);
	if (fx.mock != NULL)
		mockproc_stop(fx.mock);
	redisproc_free(fx.rs);
	cjose_jwk_release(fx.ka);
	cjose_jwk_release(fx.kb);
	cjose_jwk_release(fx.kc);
	if (fx.dir[0] != '\0' && getenv("NL_KEEP_TEST_DIR") == NULL)
		nftw(fx.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* Each test starts with an empty Redis (the wrong-code counters of the one phone address too). */
static int setup(void **state)
{
	redisContext *c;
	redisReply *rep;

	(void)state;
	if (fx.why != NULL)
		return 0;
	if ((c = redisConnect("127.0.0.1", redisproc_port(fx.rs))) == NULL || c->err)
		return -1;
	rep = redisCommand(c, "FLUSHALL");
	freeReplyObject(rep);
	redisFree(c);
	return 0;
}

/* Whatever a failed test left stopped is started again, so that the next test has its world. */
static int teardown(void **state)
{
	(void)state;
	if (fx.why != NULL)
		return 0;
	if (fx.redis_down) {
		kill(redisproc_pid(fx.rs), SIGCONT);
		redisproc_kill(fx.rs);
		if (redisproc_restart(fx.rs) != 0)
			return -1;
		fx.redis_down = false;
	}
	if (fx.a.pid <= 0 && start_inst(&fx.a) != 0)
		return -1;
	if (fx.b.pid <= 0 && start_inst(&fx.b) != 0)
		return -1;
	return 0;
}

#define NEED_WORLD()                                                                                         \
	do {                                                                                                 \
		if (fx.why != NULL)                                                                          \
			skip_because("%s", fx.why);                                                          \
	} while (0)

/* ---- the agent: signed requests ---- */

struct answer {
	long status;
	char body[32768];
	size_t len;
	json_t *json;
	int64_t done_ms;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct answer *a = arg;
	size_t k = size * n;

	if (a->len + k >= sizeof(a->body))
		return 0;
	memcpy(a->body + a->len, p, k);
	a->len += k;
	a->body[a->len] = '\0';
	return k;
}

/* One request to base + target with auth as the Authorization value (NULL: none). */
static int agent_raw(const char *base, const char *method, const char *target, const char *body,
                     const char *auth, struct answer *a)
{
	char url[512], hdr[4096];
	struct curl_slist *h = NULL;
	CURL *cu = curl_easy_init();
	CURLcode cr;

	memset(a, 0, sizeof(*a));
	if (cu == NULL)
		return -1;
	snprintf(url, sizeof(url), "%s%s", base, target);
	curl_easy_setopt(cu, CURLOPT_URL, url);
	curl_easy_setopt(cu, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(cu, CURLOPT_TIMEOUT_MS, 40000L);
	curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(cu, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
	if (body != NULL) {
		curl_easy_setopt(cu, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(cu, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
		h = curl_slist_append(h, "Content-Type: application/json");
	}
	if (auth != NULL) {
		snprintf(hdr, sizeof(hdr), "Authorization: %s", auth);
		h = curl_slist_append(h, hdr);
	}
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(cu, CURLOPT_HTTPHEADER, h);
	cr = curl_easy_perform(cu);
	a->done_ms = nl_mono_ms();
	curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &a->status);
	curl_slist_free_all(h);
	curl_easy_cleanup(cu);
	if (cr != CURLE_OK)
		return -1;
	a->json = a->len > 0 ? json_loads(a->body, 0, NULL) : NULL;
	return 0;
}

static char *sign_as(const cjose_jwk_t *key, const char *name, const char *method, const char *target,
                     const char *body)
{
	char *v = NULL;
	if (nl_hostauth_sign(key, name, method, target, body != NULL ? body : "",
	                     body != NULL ? strlen(body) : 0, fx.public_url, time(NULL), &v) != 0)
		return NULL;
	return v;
}

/* A request signed by workstation name with key. */
static int agent_as(const struct inst *i, const cjose_jwk_t *key, const char *name, const char *method,
                    const char *target, const char *body, struct answer *a)
{
	char *auth = sign_as(key, name, method, target, body);
	int r;

	if (auth == NULL)
		return -1;
	r = agent_raw(i->url, method, target, body, auth, a);
	nl_free_secret(auth);
	return r;
}

static int agent(const struct inst *i, const char *method, const char *target, const char *body,
                 struct answer *a)
{
	return agent_as(i, fx.ka, "ws-a", method, target, body, a);
}

static void answer_clear(struct answer *a)
{
	json_decref(a->json);
	a->json = NULL;
}

static const char *jstr(const struct answer *a, const char *key)
{
	return json_string_value(json_object_get(a->json, key));
}

/* POST /agent/v1/flows on i as ws-a; flow and code out. */
static void start_flow(const struct inst *i, bool number_match, const char *nonce, char *flow, char *code)
{
	char body[512];
	struct answer a;

	snprintf(
	    body, sizeof(body),
	    "{\"user\":\"clinician\",\"service\":\"login\",\"rhost\":\"\",\"tty\":\"tty1\",\"nonce\":\"%s\","
	    "\"number_match\":%s,\"ttl\":120}",
	    nonce, number_match ? "true" : "false");
	assert_int_equal(agent(i, "POST", "/agent/v1/flows", body, &a), 0);
	assert_int_equal(a.status, 201);
	assert_non_null(jstr(&a, "flow"));
	assert_non_null(jstr(&a, "user_code"));
	assert_int_equal(strlen(jstr(&a, "user_code")), 9);
	snprintf(flow, 64, "%s", jstr(&a, "flow"));
	snprintf(code, 16, "%s", jstr(&a, "user_code"));
	assert_non_null(strstr(jstr(&a, "verification_uri"), fx.public_url));
	answer_clear(&a);
}

static void flow_target(const char *flow, int wait, char *out, size_t len)
{
	if (wait >= 0)
		snprintf(out, len, "/agent/v1/flows/%s?wait=%d", flow, wait);
	else
		snprintf(out, len, "/agent/v1/flows/%s", flow);
}

/* ---- the phone ---- */

/* jar NULL: the test's one phone browser (mockproc_fetch's cookies). */
static int fetch(struct mockproc_jar *jar, const char *method, const char *url, const char *ctype,
                 const char *body, const char *bearer, struct mockproc_resp *resp)
{
	if (jar == NULL)
		return mockproc_fetch(method, url, ctype, body, bearer, resp);
	return mockproc_fetch_in(jar, method, url, ctype, body, bearer, resp);
}

/* The code entry at instance i: the confirmation page (new string), its flow and token fields. */
static long phone_code(struct mockproc_jar *jar, const struct inst *i, const char *code, char **page,
                       char *flow, char *token)
{
	struct mockproc_resp p = {0};
	char url[256], body[64];
	long status;

	snprintf(url, sizeof(url), "%s/d", i->url);
	snprintf(body, sizeof(body), "code=%s", code);
	assert_int_equal(fetch(jar, "POST", url, "application/x-www-form-urlencoded", body, NULL, &p), 0);
	status = p.status;
	if (status == 200) {
		assert_int_equal(html_hidden(p.body, "flow", flow, 64), 0);
		assert_int_equal(html_hidden(p.body, "token", token, 64), 0);
	}
	if (page != NULL) {
		*page = p.body;
		p.body = NULL;
	}
	mockproc_resp_free(&p);
	return status;
}

/* The confirmation form's answer at instance i; *location gets the redirect (new string) if any. */
static long phone_answer(struct mockproc_jar *jar, const struct inst *i, const char *flow, const char *token,
                         const char *answer, char **location, char **page)
{
	struct mockproc_resp p = {0};
	char url[256], body[256];
	long status;

	snprintf(url, sizeof(url), "%s/d/confirm", i->url);
	snprintf(body, sizeof(body), "flow=%s&token=%s&answer=%s", flow, token, answer);
	assert_int_equal(fetch(jar, "POST", url, "application/x-www-form-urlencoded", body, NULL, &p), 0);
	status = p.status;
	if (location != NULL)
		*location = p.location != NULL ? strdup(p.location) : NULL;
	if (page != NULL) {
		*page = p.body;
		p.body = NULL;
	}
	mockproc_resp_free(&p);
	return status;
}

/* At the mock: sign in as p9 from the /authorize URL; the callback URL NHS login sends back (new). */
static char *phone_at_mock(struct mockproc_jar *jar, const char *authorize)
{
	struct mockproc_resp b = {0}, c = {0};
	char req[4096], body[4200], url[256];
	char *back = NULL, *enc;
	CURL *cu = curl_easy_init();

	assert_int_equal(fetch(jar, "GET", authorize, NULL, NULL, NULL, &b), 0);
	if (b.status == 200) {
		assert_int_equal(html_hidden(b.body, "req", req, sizeof(req)), 0);
		enc = curl_easy_escape(cu, req, 0);
		snprintf(body, sizeof(body), "req=%s&user=p9", enc);
		curl_free(enc);
		snprintf(url, sizeof(url), "%s/authorize/decision", mockproc_issuer(fx.mock));
		assert_int_equal(fetch(jar, "POST", url, "application/x-www-form-urlencoded", body, NULL, &c),
		                 0);
		if (c.location != NULL)
			back = strdup(c.location);
	} else if (b.location != NULL) {
		back = strdup(b.location);
	}
	curl_easy_cleanup(cu);
	mockproc_resp_free(&b);
	mockproc_resp_free(&c);
	assert_non_null(back);
	return back;
}

/* The callback URL as NHS login gave it (A's), sent to instance i instead. */
static char *on_inst(const char *url, const struct inst *i)
{
	const char *path = strstr(url, "/callback");
	char *out = NULL;

	assert_non_null(path);
	assert_true(asprintf(&out, "%s%s", i->url, path) > 0);
	return out;
}

static long phone_get(struct mockproc_jar *jar, const char *url, char **page)
{
	struct mockproc_resp p = {0};
	long status;

	assert_int_equal(fetch(jar, "GET", url, NULL, NULL, NULL, &p), 0);
	status = p.status;
	if (page != NULL) {
		*page = p.body;
		p.body = NULL;
	}
	mockproc_resp_free(&p);
	return status;
}

/* Code at code_at, confirmation at confirm_at, sign-in at the mock: the callback URL (A's; new). */
static char *phone_to_callback_via(struct mockproc_jar *jar, const struct inst *code_at,
                                   const struct inst *confirm_at, const char *code)
{
	char flow[64], token[64], *loc = NULL, *back;

	assert_int_equal(phone_code(jar, code_at, code, NULL, flow, token), 200);
	assert_int_equal(phone_answer(jar, confirm_at, flow, token, "continue", &loc, NULL), 302);
	assert_non_null(loc);
	back = phone_at_mock(jar, loc);
	free(loc);
	return back;
}

/* The agent's check of an approved answer: NHS login's signature and the agent's nonce. */
static void assert_tokens_verify(const struct answer *a, const char *nonce)
{
	struct nl_grant_result res = {0};
	int r;

	assert_string_equal(jstr(a, "status"), "approved");
	assert_non_null(jstr(a, "id_token"));
	assert_non_null(jstr(a, "access_token"));
	r = nl_oidc_verify_tokens(fx.verifier, jstr(a, "id_token"), jstr(a, "access_token"), nonce, &res);
	assert_int_equal(r, 0);
	assert_int_equal(res.outcome, NL_OUT_OK);
	nl_grant_result_clear(&res);
	/* and not with another nonce */
	r = nl_oidc_verify_tokens(fx.verifier, jstr(a, "id_token"), jstr(a, "access_token"), NONCE2, &res);
	assert_true(r != 0 || res.outcome != NL_OUT_OK);
	nl_grant_result_clear(&res);
}

/* A long poll in a thread. */
struct poll_job {
	const struct inst *i;
	char target[128];
	struct answer a;
	int rc;
	pthread_t th;
};

static void *poll_thread(void *arg)
{
	struct poll_job *j = arg;
	j->rc = agent(j->i, "GET", j->target, NULL, &j->a);
	return NULL;
}

static void poll_start(struct poll_job *j, const struct inst *i, const char *flow, int wait)
{
	memset(j, 0, sizeof(*j));
	j->i = i;
	flow_target(flow, wait, j->target, sizeof(j->target));
	assert_int_equal(pthread_create(&j->th, NULL, poll_thread, j), 0);
	usleep(300000); /* parked on the bridge by now */
}

/* ---- the tests ---- */

static void test_signin_hops_between_instances_and_wakes_the_parked_poll(void **state)
{
	char flow[64], code[16], *back, *cb;
	struct poll_job j;
	struct answer a;
	int64_t t_cb;
	(void)state;
	NEED_WORLD();

	start_flow(&fx.a, false, NONCE, flow, code);
	/* code on B, confirmation on A, sign-in at the mock */
	back = phone_to_callback_via(NULL, &fx.b, &fx.a, code);
	poll_start(&j, &fx.a, flow, 20);
	/* the callback on B; the poll parked on A */
	cb = on_inst(back, &fx.b);
	t_cb = nl_mono_ms();
	assert_int_equal(phone_get(NULL, cb, NULL), 200);
	int64_t t_cb_done = nl_mono_ms();
	pthread_join(j.th, NULL);
	assert_int_equal(j.rc, 0);
	assert_int_equal(j.a.status, 200);
	printf(
	    "# wake-up: callback on B answered in %lld ms; the poll parked on A returned %lld ms after the "
	    "callback's answer (%lld ms after it was sent)\n",
	    (long long)(t_cb_done - t_cb), (long long)(j.a.done_ms - t_cb_done),
	    (long long)(j.a.done_ms - t_cb));
	assert_true(j.a.done_ms - t_cb_done < 500);
	assert_tokens_verify(&j.a, NONCE);
	assert_null(json_object_get(j.a.json, "number"));
	answer_clear(&j.a);
	/* handed over once */
	flow_target(flow, 0, j.target, sizeof(j.target));
	assert_int_equal(agent(&fx.b, "GET", j.target, NULL, &a), 0);
	assert_int_equal(a.status, 404);
	assert_string_equal(jstr(&a, "error"), "not_found");
	answer_clear(&a);
	free(back);
	free(cb);
}

static void test_confirmation_page_names_the_enrolled_host_only(void **state)
{
	char flow[64], token[64], code[16], *page = NULL;
	struct answer a;
	const char *body =
	    "{\"user\":\"clinician\",\"service\":\"login\",\"host\":\"evil-name\",\"rhost\":\"\","
	    "\"tty\":\"tty1\",\"nonce\":\"" NONCE "\"}";
	(void)state;
	NEED_WORLD();

	assert_int_equal(agent_as(&fx.a, fx.kb, "ws-b", "POST", "/agent/v1/flows", body, &a), 0);
	assert_int_equal(a.status, 201);
	snprintf(code, sizeof(code), "%s", jstr(&a, "user_code"));
	answer_clear(&a);
	assert_int_equal(phone_code(NULL, &fx.b, code, &page, flow, token), 200);
	assert_non_null(strstr(page, "ws-b"));
	assert_null(strstr(page, "evil-name"));
	assert_null(strstr(page, "ws-a"));
	free(page);
}

static void test_unsigned_wrong_key_replayed_and_other_hosts_flow_are_refused(void **state)
{
	char flow[64], code[16], target[128], *auth;
	struct answer a;
	const char *body = "{\"user\":\"clinician\",\"nonce\":\"" NONCE "\"}";
	(void)state;
	NEED_WORLD();

	/* unsigned */
	assert_int_equal(agent_raw(fx.a.url, "POST", "/agent/v1/flows", body, NULL, &a), 0);
	assert_int_equal(a.status, 401);
	assert_string_equal(jstr(&a, "error"), "unauthorized");
	answer_clear(&a);
	/* the name ws-a, signed with a key that is not ws-a's */
	assert_int_equal(agent_as(&fx.a, fx.kc, "ws-a", "POST", "/agent/v1/flows", body, &a), 0);
	assert_int_equal(a.status, 401);
	answer_clear(&a);
	/* a request's Authorization used twice, the second time at the other instance */
	start_flow(&fx.a, false, NONCE, flow, code);
	flow_target(flow, 0, target, sizeof(target));
	auth = sign_as(fx.ka, "ws-a", "GET", target, NULL);
	assert_int_equal(agent_raw(fx.a.url, "GET", target, NULL, auth, &a), 0);
	assert_int_equal(a.status, 200);
	assert_string_equal(jstr(&a, "status"), "pending");
	answer_clear(&a);
	assert_int_equal(agent_raw(fx.b.url, "GET", target, NULL, auth, &a), 0);
	assert_int_equal(a.status, 401);
	answer_clear(&a);
	nl_free_secret(auth);
	/* another enrolled workstation: the flow does not exist for it */
	assert_int_equal(agent_as(&fx.b, fx.kb, "ws-b", "GET", target, NULL, &a), 0);
	assert_int_equal(a.status, 404);
	answer_clear(&a);
	flow_target(flow, -1, target, sizeof(target));
	assert_int_equal(agent_as(&fx.b, fx.kb, "ws-b", "DELETE", target, NULL, &a), 0);
	assert_int_equal(a.status, 404);
	answer_clear(&a);
	/* and it is still pending for its own */
	flow_target(flow, 0, target, sizeof(target));
	assert_int_equal(agent(&fx.b, "GET", target, NULL, &a), 0);
	assert_int_equal(a.status, 200);
	assert_string_equal(jstr(&a, "status"), "pending");
	answer_clear(&a);
}

static void test_body_over_16k_is_refused(void **state)
{
	char *body = malloc(20000);
	struct answer a;
	(void)state;
	NEED_WORLD();

	memset(body, ' ', 19999);
	body[0] = '{';
	body[19998] = '}';
	body[19999] = '\0';
	assert_int_equal(agent(&fx.a, "POST", "/agent/v1/flows", body, &a), 0);
	assert_int_equal(a.status, 413);
	answer_clear(&a);
	free(body);
}

static void test_wrong_code_limit_counts_across_instances(void **state)
{
	char flow[64], token[64], code[16];
	(void)state;
	NEED_WORLD();

	start_flow(&fx.a, false, NONCE, flow, code);
	/* CODE_ATTEMPTS wrong codes, spread over A and B */
	for (int n = 0; n < CODE_ATTEMPTS; n++)
		assert_int_equal(phone_code(NULL, n % 2 ? &fx.a : &fx.b, "KPWD-KPWD", NULL, flow, token),
		                 400);
	/* now the right code is refused at either */
	assert_int_equal(phone_code(NULL, &fx.a, code, NULL, flow, token), 429);
	assert_int_equal(phone_code(NULL, &fx.b, code, NULL, flow, token), 429);
}

static void test_wrong_codes_below_the_limit_leave_the_right_code_working(void **state)
{
	char flow[64], token[64], code[16];
	(void)state;
	NEED_WORLD();

	start_flow(&fx.a, false, NONCE, flow, code);
	for (int n = 0; n < CODE_ATTEMPTS - 1; n++)
		assert_int_equal(phone_code(NULL, n % 2 ? &fx.a : &fx.b, "KPWD-KPWD", NULL, flow, token),
		                 400);
	assert_int_equal(phone_code(NULL, &fx.b, code, NULL, flow, token), 200);
}

static void test_callback_from_another_browser_is_refused_and_the_flow_goes_on(void **state)
{
	char flow[64], code[16], target[128], *back, *cb, *page = NULL;
	struct mockproc_jar *other = mockproc_jar_new();
	struct answer a;
	(void)state;
	NEED_WORLD();

	start_flow(&fx.b, false, NONCE, flow, code);
	back = phone_to_callback_via(NULL, &fx.a, &fx.b, code);
	cb = on_inst(back, &fx.b);
	/* a forwarded link in another browser (no cookie), at either instance */
	assert_int_equal(phone_get(other, cb, &page), 403);
	assert_non_null(strstr(page, "another browser"));
	free(page);
	assert_int_equal(phone_get(other, back, NULL), 403);
	flow_target(flow, 0, target, sizeof(target));
	assert_int_equal(agent(&fx.a, "GET", target, NULL, &a), 0);
	assert_int_equal(a.status, 200);
	assert_string_equal(jstr(&a, "status"), "pending");
	answer_clear(&a);
	/* the browser that continued finishes it */
	assert_int_equal(phone_get(NULL, cb, NULL), 200);
	assert_int_equal(agent(&fx.a, "GET", target, NULL, &a), 0);
	assert_int_equal(a.status, 200);
	assert_tokens_verify(&a, NONCE);
	answer_clear(&a);
	mockproc_jar_free(other);
	free(back);
	free(cb);
}

static void test_second_browser_cannot_continue_a_bound_flow(void **state)
{
	char flow[64], token[64], flow2[64], token2[64], code[16], *loc = NULL;
	struct mockproc_jar *other = mockproc_jar_new();
	(void)state;
	NEED_WORLD();

	start_flow(&fx.a, false, NONCE, flow, code);
	assert_int_equal(phone_code(NULL, &fx.a, code, NULL, flow, token), 200);
	assert_int_equal(phone_code(other, &fx.b, code, NULL, flow2, token2), 200);
	assert_int_equal(phone_answer(NULL, &fx.b, flow, token, "continue", &loc, NULL), 302);
	free(loc);
	loc = NULL;
	/* the second browser's continue, at the other instance: the first binder keeps it */
	assert_int_equal(phone_answer(other, &fx.a, flow2, token2, "continue", &loc, NULL), 409);
	assert_null(loc);
	mockproc_jar_free(other);
}

static void test_number_matching_answer_carries_the_number_the_phone_showed(void **state)
{
	static const char ask[] = "type this number at the computer: ";
	char flow[64], code[16], target[128], *back, *cb, *page = NULL;
	unsigned shown = 0;
	struct answer a;
	const char *p;
	(void)state;
	NEED_WORLD();

	start_flow(&fx.b, true, NONCE, flow, code);
	back = phone_to_callback_via(NULL, &fx.b, &fx.b, code);
	cb = on_inst(back, &fx.a);
	assert_int_equal(phone_get(NULL, cb, &page), 200);
	assert_non_null(p = strstr(page, ask));
	shown = (unsigned)strtoul(p + sizeof(ask) - 1, NULL, 10);
	assert_true(shown >= 10 && shown <= 99);
	flow_target(flow, 5, target, sizeof(target));
	assert_int_equal(agent(&fx.b, "GET", target, NULL, &a), 0);
	assert_int_equal(a.status, 200);
	assert_tokens_verify(&a, NONCE);
	assert_int_equal(json_integer_value(json_object_get(a.json, "number")), shown);
	answer_clear(&a);
	free(page);
	free(back);
	free(cb);
}

static void test_delete_ends_the_flow_cancelled_and_the_phone_sees_it_ended(void **state)
{
	char flow[64], token[64], code[16], target[128];
	struct answer a;
	(void)state;
	NEED_WORLD();

	start_flow(&fx.a, false, NONCE, flow, code);
	assert_int_equal(phone_code(NULL, &fx.b, code, NULL, flow, token), 200);
	flow_target(flow, -1, target, sizeof(target));
	assert_int_equal(agent(&fx.b, "DELETE", target, NULL, &a), 0);
	assert_int_equal(a.status, 204);
	answer_clear(&a);
	/* the confirmation page's continue, and the code again: ended */
	assert_int_equal(phone_answer(NULL, &fx.a, flow, token, "continue", NULL, NULL), 410);
	assert_int_equal(phone_code(NULL, &fx.a, code, NULL, flow, token), 400);
	/* the agent learns it once */
	flow_target(flow, 0, target, sizeof(target));
	assert_int_equal(agent(&fx.a, "GET", target, NULL, &a), 0);
	assert_int_equal(a.status, 200);
	assert_string_equal(jstr(&a, "status"), "denied");
	assert_string_equal(jstr(&a, "reason"), "cancelled");
	answer_clear(&a);
}

static void test_this_was_not_me_on_the_phone_ends_the_flow_denied(void **state)
{
	char flow[64], token[64], code[16], target[128];
	struct answer a;
	(void)state;
	NEED_WORLD();

	start_flow(&fx.b, false, NONCE, flow, code);
	assert_int_equal(phone_code(NULL, &fx.a, code, NULL, flow, token), 200);
	assert_int_equal(phone_answer(NULL, &fx.b, flow, token, "refuse", NULL, NULL), 200);
	flow_target(flow, 0, target, sizeof(target));
	assert_int_equal(agent(&fx.a, "GET", target, NULL, &a), 0);
	assert_int_equal(a.status, 200);
	assert_string_equal(jstr(&a, "status"), "denied");
	assert_string_equal(jstr(&a, "reason"), "denied");
	assert_null(json_object_get(a.json, "id_token"));
	answer_clear(&a);
}

static void test_redis_down_answers_503_at_once(void **state)
{
	char flow[64], code[16], target[128];
	struct poll_job j;
	struct answer a;
	int64_t t0;
	(void)state;
	NEED_WORLD();

	start_flow(&fx.a, false, NONCE, flow, code);
	poll_start(&j, &fx.b, flow, 20);
	fx.redis_down = true;
	redisproc_kill(fx.rs);
	t0 = nl_mono_ms();
	pthread_join(j.th, NULL);
	printf("# Redis killed: the parked poll answered %ld after %lld ms\n", j.a.status,
	       (long long)(j.a.done_ms - t0));
	assert_int_equal(j.a.status, 503);
	assert_true(j.a.done_ms - t0 < STORE_TIMEOUT_MS + 1500);
	answer_clear(&j.a);
	t0 = nl_mono_ms();
	assert_int_equal(
	    agent(&fx.a, "POST", "/agent/v1/flows", "{\"user\":\"clinician\",\"nonce\":\"" NONCE "\"}", &a),
	    0);
	printf("# Redis down: POST answered %ld in %lld ms\n", a.status, (long long)(a.done_ms - t0));
	assert_int_equal(a.status, 503);
	assert_string_equal(jstr(&a, "error"), "unavailable");
	assert_true(a.done_ms - t0 < STORE_TIMEOUT_MS + 500);
	answer_clear(&a);
	flow_target(flow, 20, target, sizeof(target));
	t0 = nl_mono_ms();
	assert_int_equal(agent(&fx.b, "GET", target, NULL, &a), 0);
	assert_int_equal(a.status, 503);
	assert_true(a.done_ms - t0 < STORE_TIMEOUT_MS + 500);
	answer_clear(&a);
	assert_int_equal(redisproc_restart(fx.rs), 0);
	fx.redis_down = false;
}

static void test_redis_restarted_mid_flow_is_not_found_and_new_flows_work(void **state)
{
	char flow[64], token[64], code[16], target[128], *page = NULL;
	struct answer a;
	(void)state;
	NEED_WORLD();

	start_flow(&fx.a, false, NONCE, flow, code);
	assert_int_equal(phone_code(NULL, &fx.b, code, NULL, flow, token), 200);
	fx.redis_down = true;
	redisproc_kill(fx.rs);
	assert_int_equal(redisproc_restart(fx.rs), 0);
	fx.redis_down = false;
	flow_target(flow, 0, target, sizeof(target));
	assert_int_equal(agent(&fx.a, "GET", target, NULL, &a), 0);
	assert_int_equal(a.status, 404);
	answer_clear(&a);
	assert_int_equal(phone_answer(NULL, &fx.a, flow, token, "continue", NULL, &page), 410);
	assert_non_null(strstr(page, "start again"));
	free(page);
	/* new flows work at both */
	start_flow(&fx.a, false, NONCE, flow, code);
	assert_int_equal(phone_code(NULL, &fx.b, code, NULL, flow, token), 200);
}

static void test_instance_killed_after_code_entry_the_other_completes(void **state)
{
	char flow[64], code[16], target[128], *back, *cb;
	struct answer a;
	(void)state;
	NEED_WORLD();

	start_flow(&fx.a, false, NONCE, flow, code);
	back = phone_to_callback_via(NULL, &fx.a, &fx.a, code);
	harness_stop_pid(&fx.a.pid, SIGKILL);
	cb = on_inst(back, &fx.b);
	assert_int_equal(phone_get(NULL, cb, NULL), 200);
	flow_target(flow, 5, target, sizeof(target));
	assert_int_equal(agent(&fx.b, "GET", target, NULL, &a), 0);
	assert_int_equal(a.status, 200);
	assert_tokens_verify(&a, NONCE);
	answer_clear(&a);
	free(back);
	free(cb);
	assert_int_equal(start_inst(&fx.a), 0);
}

/* One request on the PAM socket of instance i, as the module sends it. */
static json_t *socket_call(const struct inst *i, const char *line)
{
	struct nl_linebuf lb;
	json_t *req = json_loads(line, 0, NULL), *rep = NULL;
	int fd = -1;

	memset(&lb, 0, sizeof(lb));
	assert_non_null(req);
	assert_int_equal(nl_ipc_connect(i->socket, 2000, &fd), 0);
	assert_int_equal(nl_ipc_send(fd, req, 2000), 0);
	assert_int_equal(nl_ipc_recv(fd, &lb, 5000, &rep), 0);
	close(fd);
	json_decref(req);
	return rep;
}

static void test_pam_socket_start_on_a_bridge_is_unavailable(void **state)
{
	json_t *m;
	(void)state;
	NEED_WORLD();

	m = socket_call(&fx.b,
	                "{\"op\":\"start\",\"user\":\"clinician\",\"service\":\"login\",\"tty\":\"tty1\"}");
	assert_false(json_is_true(json_object_get(m, "ok")));
	assert_string_equal(json_string_value(json_object_get(m, "error")), "unavailable");
	assert_non_null(strstr(json_string_value(json_object_get(m, "message")), "bridge"));
	json_decref(m);
}

/* nhsloginctl status on a bridge: the Redis in use and the enrolled hosts. */
static char *ctl_status(const struct inst *i, bool json)
{
	char cmd[700], *out = calloc(1, 8192);
	FILE *p;
	size_t n;

	snprintf(cmd, sizeof(cmd), "%s/nhsloginctl --config %s status%s 2>&1", builddir(), i->conf,
	         json ? " --json" : "");
	assert_non_null(p = popen(cmd, "r"));
	n = fread(out, 1, 8191, p);
	out[n] = '\0';
	pclose(p);
	return out;
}

static void test_status_shows_redis_and_the_enrolled_hosts(void **state)
{
	char want[128], *out;
	(void)state;
	NEED_WORLD();

	out = ctl_status(&fx.a, false);
	printf("# %s", out);
	snprintf(want, sizeof(want), "master at 127.0.0.1:%d", redisproc_port(fx.rs));
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, "Enrolled hosts:  2"));
	/* both instances hold their wake-up subscription on this Redis */
	assert_non_null(strstr(out, "Bridges:         2 connected to this Redis"));
	free(out);
}

/* The integer member key of the "bridge" object in instance i's status (JSON). */
static long long bridge_status_int(const struct inst *i, const char *key)
{
	char *out = ctl_status(i, true);
	json_t *m = json_loads(out, 0, NULL), *v;
	long long n;

	assert_non_null(m);
	v = json_object_get(json_object_get(m, "bridge"), key);
	assert_true(json_is_integer(v));
	n = json_integer_value(v);
	json_decref(m);
	free(out);
	return n;
}

/* The sign-ins pending over every instance, as instance i's status says. */
static long long shared_pending(const struct inst *i)
{
	return bridge_status_int(i, "flows_pending");
}

/* A flow started on one instance counts as in progress on the other until it is cancelled. */
static void test_status_counts_the_flows_of_every_instance(void **state)
{
	char flow[64], code[16], target[128];
	struct answer a;
	long long before;
	(void)state;
	NEED_WORLD();

	before = shared_pending(&fx.a);
	start_flow(&fx.b, false, NONCE, flow, code);
	assert_int_equal(shared_pending(&fx.a), before + 1);
	flow_target(flow, 0, target, sizeof(target));
	assert_int_equal(agent(&fx.b, "DELETE", target, NULL, &a), 0);
	answer_clear(&a);
	assert_int_equal(shared_pending(&fx.a), before);
}

/* Redis commands sent by instance i so far (its status op's own ROLE included). */
static long long store_commands(const struct inst *i)
{
	char *out = ctl_status(i, true);
	json_t *m = json_loads(out, 0, NULL);
	long long n;

	assert_non_null(m);
	n = json_integer_value(json_object_get(json_object_get(m, "bridge"), "store_commands"));
	json_decref(m);
	free(out);
	return n;
}

static void test_redis_commands_of_one_signin(void **state)
{
	char flow[64], code[16], target[128], *back, *cb;
	struct answer a;
	long long a0, b0, a1, b1;
	(void)state;
	NEED_WORLD();

	a0 = store_commands(&fx.a);
	b0 = store_commands(&fx.b);
	start_flow(&fx.a, false, NONCE, flow, code);
	back = phone_to_callback_via(NULL, &fx.b, &fx.a, code);
	cb = on_inst(back, &fx.b);
	assert_int_equal(phone_get(NULL, cb, NULL), 200);
	flow_target(flow, 0, target, sizeof(target));
	assert_int_equal(agent(&fx.a, "GET", target, NULL, &a), 0);
	assert_string_equal(jstr(&a, "status"), "approved");
	answer_clear(&a);
	a1 = store_commands(&fx.a);
	b1 = store_commands(&fx.b);
	/* each status call sends three: ROLE, the count of pending flows, PUBSUB NUMSUB */
	printf("# Redis commands for one sign-in (start, code, confirmation, callback, one poll, hand-over): "
	       "%lld (A %lld, B %lld)\n",
	       (a1 - a0 - 3) + (b1 - b0 - 3), a1 - a0 - 3, b1 - b0 - 3);
	free(back);
	free(cb);
}

static void test_redis_hung_answers_503_within_the_store_timeout(void **state)
{
	struct answer a;
	int64_t t0;
	(void)state;
	NEED_WORLD();

	fx.redis_down = true;
	kill(redisproc_pid(fx.rs), SIGSTOP);
	t0 = nl_mono_ms();
	assert_int_equal(
	    agent(&fx.b, "POST", "/agent/v1/flows", "{\"user\":\"clinician\",\"nonce\":\"" NONCE "\"}", &a),
	    0);
	kill(redisproc_pid(fx.rs), SIGCONT);
	fx.redis_down = false;
	printf("# Redis stopped (SIGSTOP): POST answered %ld in %lld ms (store timeout %d ms)\n", a.status,
	       (long long)(a.done_ms - t0), STORE_TIMEOUT_MS);
	assert_int_equal(a.status, 503);
	assert_true(a.done_ms - t0 < STORE_TIMEOUT_MS + 500);
	answer_clear(&a);
}

/* ---- the bounds on pending flows (429 limit) ---- */

/* POST a flow for user as workstation name (key) on instance i: the status; flow (64 bytes) set on
 * 201, and the error word checked on 429. */
static long post_as(const struct inst *i, const cjose_jwk_t *key, const char *name, const char *user,
                    char *flow)
{
	char body[512];
	struct answer a;
	long status;

	snprintf(body, sizeof(body),
	         "{\"user\":\"%s\",\"service\":\"sshd\",\"rhost\":\"10.1.2.3\",\"tty\":\"ssh\","
	         "\"nonce\":\"" NONCE "\",\"ttl\":120}",
	         user);
	assert_int_equal(agent_as(i, key, name, "POST", "/agent/v1/flows", body, &a), 0);
	status = a.status;
	if (status == 201 && flow != NULL)
		snprintf(flow, 64, "%s", jstr(&a, "flow"));
	if (status == 429) {
		assert_string_equal(jstr(&a, "error"), "limit");
		assert_non_null(jstr(&a, "message"));
	}
	answer_clear(&a);
	return status;
}

/* The starts instance i refused by the bounds, as its status says. */
static long long starts_limited(const struct inst *i)
{
	char *text = ctl_status(i, false);

	assert_non_null(strstr(text, "Refused (429):"));
	free(text);
	return bridge_status_int(i, "starts_limited");
}

/* Does instance i's log hold a line with both a and b? */
static bool log_has(const struct inst *i, const char *a, const char *b)
{
	char path[400], line[1024];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "%s/daemon-%d.log", fx.dir, i->port);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, a) != NULL && strstr(line, b) != NULL;
	fclose(f);
	return found;
}

/* One workstation floods starts for one person, alternating between the two instances: the bound
 * is the shared one. Another person there, and another workstation, go on; a DELETE frees a place. */
static void test_flood_of_starts_from_one_workstation_gets_429_on_both_instances(void **state)
{
	char flows[PAIR_BOUND][64], target[128], flow[64];
	struct answer a;
	(void)state;
	NEED_WORLD();

	for (int n = 0; n < PAIR_BOUND; n++)
		assert_int_equal(post_as(n % 2 ? &fx.b : &fx.a, fx.ka, "ws-a", "clinician", flows[n]), 201);
	assert_int_equal(post_as(&fx.a, fx.ka, "ws-a", "clinician", NULL), 429);
	assert_int_equal(post_as(&fx.b, fx.ka, "ws-a", "clinician", NULL), 429);
	assert_true(log_has(&fx.a, "workstation ws-a refused", "clinician") ||
	            log_has(&fx.b, "workstation ws-a refused", "clinician"));
	/* the same person at another workstation, another person at this one: not affected */
	assert_int_equal(post_as(&fx.b, fx.kb, "ws-b", "clinician", flow), 201);
	assert_int_equal(post_as(&fx.a, fx.ka, "ws-a", "nurse", flow), 201);
	/* the person gave up on one (DELETE): a new start works, on either instance */
	flow_target(flows[3], -1, target, sizeof(target));
	assert_int_equal(agent(&fx.b, "DELETE", target, NULL, &a), 0);
	assert_int_equal(a.status, 204);
	answer_clear(&a);
	assert_int_equal(post_as(&fx.a, fx.ka, "ws-a", "clinician", NULL), 201);
	assert_int_equal(post_as(&fx.b, fx.ka, "ws-a", "clinician", NULL), 429);
	/* each instance's status counts the starts it refused */
	assert_true(starts_limited(&fx.a) >= 1);
	assert_true(starts_limited(&fx.b) >= 2);
}

/* The workstation's own bound (max_flows), whoever its flows are for; only that workstation's. */
static void test_workstation_bound_counts_every_person_there(void **state)
{
	char user[32], flow[64], first[64] = "", target[128];
	struct answer a;
	int n = 0;
	(void)state;
	NEED_WORLD();

	for (; n < MAX_FLOWS; n++) {
		snprintf(user, sizeof(user), "user%d", n);
		assert_int_equal(post_as(n % 2 ? &fx.b : &fx.a, fx.ka, "ws-a", user, flow), 201);
		if (n == 0)
			snprintf(first, sizeof(first), "%s", flow);
	}
	assert_int_equal(post_as(&fx.a, fx.ka, "ws-a", "someone-new", NULL), 429);
	assert_int_equal(post_as(&fx.b, fx.ka, "ws-a", "someone-new", NULL), 429);
	assert_true(log_has(&fx.a, "workstation ws-a refused", "max_flows") ||
	            log_has(&fx.b, "workstation ws-a refused", "max_flows"));
	assert_int_equal(post_as(&fx.a, fx.kb, "ws-b", "someone-new", NULL), 201);
	/* a flow the workstation cancelled frees its place */
	flow_target(first, -1, target, sizeof(target));
	assert_int_equal(agent(&fx.a, "DELETE", target, NULL, &a), 0);
	answer_clear(&a);
	assert_int_equal(post_as(&fx.b, fx.ka, "ws-a", "someone-new", NULL), 201);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_signin_hops_between_instances_and_wakes_the_parked_poll,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_confirmation_page_names_the_enrolled_host_only, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_unsigned_wrong_key_replayed_and_other_hosts_flow_are_refused,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_body_over_16k_is_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_code_limit_counts_across_instances, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_codes_below_the_limit_leave_the_right_code_working,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_callback_from_another_browser_is_refused_and_the_flow_goes_on, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_second_browser_cannot_continue_a_bound_flow, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_number_matching_answer_carries_the_number_the_phone_showed,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_delete_ends_the_flow_cancelled_and_the_phone_sees_it_ended,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_this_was_not_me_on_the_phone_ends_the_flow_denied, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_redis_down_answers_503_at_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_redis_restarted_mid_flow_is_not_found_and_new_flows_work,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_instance_killed_after_code_entry_the_other_completes, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_pam_socket_start_on_a_bridge_is_unavailable, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_status_shows_redis_and_the_enrolled_hosts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_status_counts_the_flows_of_every_instance, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_redis_commands_of_one_signin, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_flood_of_starts_from_one_workstation_gets_429_on_both_instances, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_workstation_bound_counts_every_person_there, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_redis_hung_answers_503_within_the_store_timeout, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
