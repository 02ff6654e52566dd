/* The OpenID client against a real nhslogin-mock child: discovery/JWKS caches (memory and disk),
 * the authorize URL, the code exchange and its failure outcomes, key rotation, userinfo, PKCE and
 * the device grant. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nl_b64.h"
#include "nl_config.h"
#include "nl_err.h"
#include "nl_http.h"
#include "nl_json.h"
#include "nl_log.h"
#include "nl_time.h"
#include "nl_wipe.h"
#include "mockproc.h"
#include "oidc.h"

#define CLIENT_ID      "oidc-test-client"
#define REDIRECT_URI   "http://127.0.0.1:9/callback"
#define TEST_TIMEOUT_S 180
#define MOCK_START_MS  15000

/* The fixture shared by the group: a temp dir, the client key pair, the mock process. */
static struct {
	char dir[256];
	char *key_path, *pub_path;
	struct mockproc *mock;
	const char *issuer; /* the mock's */
	int n_cache;
} fx;

/* Start a mock with our client registered; auto_approve signs p9 in at once (code and device). */
static int mock_start(bool auto_approve, struct mockproc **out)
{
	char client[1024];
	/* Without auto_approve the list ends before "p9". */
	const char *args[] = {"--device-endpoint",
	                      "--device-interval",
	                      "1",
	                      "--client",
	                      client,
	                      auto_approve ? "--auto-approve" : NULL,
	                      "p9",
	                      NULL};

	snprintf(client, sizeof(client), "%s:%s:%s", CLIENT_ID, fx.pub_path, REDIRECT_URI);
	return mockproc_start(args, out);
}

/* One counter of GET /_mock/stats. */
static long mock_stat(const char *name)
{
	long v = -1;
	assert_int_equal(mockproc_stat(fx.mock, name, &v), 0);
	return v;
}

static void mock_fault(const char *fault)
{
	char body[128];
	long status = 0;

	snprintf(body, sizeof(body), "{\"fault\":\"%s\"}", fault);
	assert_int_equal(mockproc_control(fx.mock, body, &status), 0);
	assert_int_equal(status, 200);
}

/* POST a form to a mock page; returns the HTTP status. */
static long mock_post(const char *issuer, const char *path, const char *form)
{
	struct mockproc_resp resp;
	char *u = NULL;
	long status;

	assert_true(asprintf(&u, "%s%s", issuer, path) > 0);
	memset(&resp, 0, sizeof(resp));
	assert_int_equal(mockproc_fetch("POST", u, "application/x-www-form-urlencoded", form, NULL, &resp),
	                 0);
	status = resp.status;
	mockproc_resp_free(&resp);
	free(u);
	return status;
}

static void set(struct nl_config *cfg, const char *section, const char *key, const char *value)
{
	char err[256] = "";
	int r = nl_config_set(cfg, section, key, value, err, sizeof(err));
	if (r != 0)
		fail_msg("nl_config_set %s.%s: %s", section, key, err);
}

/* A configuration for the mock with a fresh cache directory (or a named one, to share it). */
static void make_cfg(struct nl_config *cfg, const char *cache_name)
{
	char cache[400], name[32];

	if (cache_name == NULL) {
		snprintf(name, sizeof(name), "cache%d", ++fx.n_cache);
		cache_name = name;
	}
	snprintf(cache, sizeof(cache), "%s/%s", fx.dir, cache_name);
	assert_true(mkdir(cache, 0700) == 0 || errno == EEXIST);
	nl_config_init(cfg);
	set(cfg, "env", "issuer", fx.issuer);
	set(cfg, "env", "client_id", CLIENT_ID);
	set(cfg, "env", "client_key", fx.key_path);
	set(cfg, "env", "redirect_uri", REDIRECT_URI);
	set(cfg, "env", "scope", "openid profile email");
	set(cfg, "daemon", "cache_dir", cache);
	set(cfg, "daemon", "http_timeout", "10");
}

static struct nl_oidc *new_oidc(const struct nl_config *cfg)
{
	struct nl_oidc *o = NULL;
	char err[256] = "";
	int r = nl_oidc_new(cfg, &o, err, sizeof(err));
	if (r != 0)
		fail_msg("nl_oidc_new: %s", err);
	return o;
}

static void ready(struct nl_oidc *o)
{
	char err[256] = "";
	int r = nl_oidc_ready(o, err, sizeof(err));
	if (r != 0)
		fail_msg("nl_oidc_ready: %s", err);
}

/* The value of name in a URL's query string (decoded), or NULL. */
static char *query_param(const char *url, const char *name)
{
	const char *q = strchr(url, '?');
	size_t nlen = strlen(name);
	char *out = NULL;
	int len = 0;

	while (q != NULL && *q != '\0') {
		q++;
		const char *end = strchr(q, '&');
		size_t seg = end != NULL ? (size_t)(end - q) : strlen(q);
		if (seg > nlen && strncmp(q, name, nlen) == 0 && q[nlen] == '=') {
			char *v = curl_easy_unescape(NULL, q + nlen + 1, (int)(seg - nlen - 1), &len);
			out = strdup(v);
			curl_free(v);
			return out;
		}
		q = end;
	}
	return NULL;
}

/* GET the authorize URL without following redirects; the mock auto-approves and redirects to
 * redirect_uri?code=..&state=..; return that Location. */
static char *follow_authorize(const char *url)
{
	struct mockproc_resp resp;
	char *out;

	memset(&resp, 0, sizeof(resp));
	assert_int_equal(mockproc_fetch("GET", url, NULL, NULL, NULL, &resp), 0);
	assert_true(resp.status == 302 || resp.status == 303);
	assert_non_null(resp.location);
	out = strdup(resp.location);
	mockproc_resp_free(&resp);
	return out;
}

/* Run /authorize for the flow and return the code; checks that state came back. */
static char *get_code(struct nl_oidc *o, const char *state, const char *nonce, const char *challenge)
{
	char *url = NULL, *loc, *code, *st;

	assert_int_equal(nl_oidc_authorize_url(o, state, nonce, challenge, &url), 0);
	loc = follow_authorize(url);
	assert_true(strncmp(loc, REDIRECT_URI "?", strlen(REDIRECT_URI) + 1) == 0);
	code = query_param(loc, "code");
	st = query_param(loc, "state");
	assert_non_null(code);
	assert_non_null(st);
	assert_string_equal(st, state);
	free(st);
	free(loc);
	free(url);
	return code;
}

/* A grant's result taken apart into what the tests below check: the identity (moved), the
 * outcome and the error line. */
static int spread(int r, struct nl_grant_result *res, struct nl_identity *id, enum nl_outcome *oc, char *err,
                  size_t errlen)
{
	*id = res->id;
	memset(&res->id, 0, sizeof(res->id));
	*oc = res->outcome;
	snprintf(err, errlen, "%s", res->error);
	nl_grant_result_clear(res);
	return r;
}

static int exchange(struct nl_oidc *o, const char *code, const char *verifier, const char *nonce,
                    struct nl_identity *id, enum nl_outcome *oc, char *err, size_t errlen)
{
	struct nl_grant_result res;
	int r = nl_oidc_exchange_code(o, code, verifier, nonce, &res);

	return spread(r, &res, id, oc, err, errlen);
}

static int device_poll(struct nl_oidc *o, const char *device_code, struct nl_identity *id,
                       enum nl_outcome *oc, char *err, size_t errlen)
{
	struct nl_grant_result res;
	int r = nl_oidc_device_poll(o, device_code, &res);

	return spread(r, &res, id, oc, err, errlen);
}

/* ---- fixture ---- */

static int group_setup(void **state)
{
	cjose_jwk_t *key = NULL;
	(void)state;

	alarm(TEST_TIMEOUT_S);
	nl_log_open("test_oidc", NL_LOG_STDERR, false);
	if (nl_http_global_init() != 0)
		return -1;
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/test_oidc.XXXXXX");
	if (mkdtemp(fx.dir) == NULL)
		return -1;
	if (mockproc_client_key(fx.dir, "client", &key, &fx.pub_path, &fx.key_path) != 0)
		return -1;
	cjose_jwk_release(key);
	if (mock_start(true, &fx.mock) != 0) {
		fprintf(stderr, "# could not start nhslogin-mock\n");
		return -1;
	}
	fx.issuer = mockproc_issuer(fx.mock);
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[400];
	(void)state;

	mockproc_stop(fx.mock);
	fx.mock = NULL;
	if (strncmp(fx.dir, "/tmp/test_oidc.", 15) == 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.dir);
		if (system(cmd) != 0)
			fprintf(stderr, "# could not remove %s\n", fx.dir);
	}
	free(fx.key_path);
	free(fx.pub_path);
	return 0;
}

/* Every test starts and ends with no fault active. */
static int clear_faults(void **state)
{
	(void)state;
	mock_fault("none");
	return 0;
}

/* ---- discovery and JWKS caches ---- */

static void test_ready_fetches_discovery_and_jwks_once(void **state)
{
	struct nl_config cfg;
	struct nl_oidc_stats st;
	long d0 = mock_stat("discovery"), j0 = mock_stat("jwks");
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	ready(o);
	assert_int_equal(mock_stat("discovery") - d0, 1);
	assert_int_equal(mock_stat("jwks") - j0, 1);
	nl_oidc_get_stats(o, &st);
	assert_int_equal(st.discovery_fetches, 1);
	assert_int_equal(st.jwks_fetches, 1);
	assert_true(st.discovery_fetched_at > 0);
	assert_true(st.jwks_fetched_at > 0);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_ready_again_makes_no_request(void **state)
{
	struct nl_config cfg;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	ready(o);
	long d0 = mock_stat("discovery"), j0 = mock_stat("jwks");
	ready(o);
	ready(o);
	assert_int_equal(mock_stat("discovery"), d0);
	assert_int_equal(mock_stat("jwks"), j0);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_ready_reads_disk_cache_in_a_new_client(void **state)
{
	struct nl_config cfg;
	struct nl_oidc_stats st;
	struct stat sb;
	char path[512];
	(void)state;

	make_cfg(&cfg, "shared-disk");
	struct nl_oidc *o = new_oidc(&cfg);
	ready(o);
	nl_oidc_free(o);
	snprintf(path, sizeof(path), "%s/discovery.json", cfg.cache_dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/jwks.json", cfg.cache_dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);

	long d0 = mock_stat("discovery"), j0 = mock_stat("jwks");
	o = new_oidc(&cfg);
	ready(o);
	assert_int_equal(mock_stat("discovery"), d0);
	assert_int_equal(mock_stat("jwks"), j0);
	nl_oidc_get_stats(o, &st);
	assert_int_equal(st.discovery_fetches, 0);
	assert_int_equal(st.jwks_fetches, 0);
	assert_true(nl_oidc_pkce_s256(o));
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void overwrite(const char *dir, const char *name, const char *text)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void test_ready_ignores_damaged_cache_file(void **state)
{
	struct nl_config cfg;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	ready(o);
	nl_oidc_free(o);
	overwrite(cfg.cache_dir, "discovery.json", "{\"fetched_at\": 1, \"body\": tru");
	overwrite(cfg.cache_dir, "jwks.json", "{\"fetched_at\":1,\"max_age\":3600,\"issuer\":\"x\"}");

	long d0 = mock_stat("discovery"), j0 = mock_stat("jwks");
	o = new_oidc(&cfg);
	ready(o);
	assert_int_equal(mock_stat("discovery") - d0, 1);
	assert_int_equal(mock_stat("jwks") - j0, 1);
	nl_oidc_free(o);

	/* ... and the refetch repaired the cache. */
	d0 = mock_stat("discovery");
	o = new_oidc(&cfg);
	ready(o);
	assert_int_equal(mock_stat("discovery"), d0);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_ready_ignores_cache_of_another_issuer(void **state)
{
	struct nl_config cfg;
	char text[256];
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	ready(o);
	nl_oidc_free(o);
	snprintf(text, sizeof(text),
	         "{\"fetched_at\":%lld,\"max_age\":3600,\"issuer\":\"https://evil.example\",\"body\":\"{}\"}",
	         (long long)time(NULL));
	overwrite(cfg.cache_dir, "discovery.json", text);

	long d0 = mock_stat("discovery");
	o = new_oidc(&cfg);
	ready(o);
	assert_int_equal(mock_stat("discovery") - d0, 1);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_ready_ignores_stale_cache(void **state)
{
	struct nl_config cfg;
	char text[256];
	(void)state;

	make_cfg(&cfg, NULL);
	snprintf(text, sizeof(text),
	         "{\"fetched_at\":%lld,\"max_age\":300,\"issuer\":\"%s\",\"body\":\"{}\"}",
	         (long long)time(NULL) - 301, fx.issuer);
	overwrite(cfg.cache_dir, "discovery.json", text);
	long d0 = mock_stat("discovery");
	struct nl_oidc *o = new_oidc(&cfg);
	ready(o);
	assert_int_equal(mock_stat("discovery") - d0, 1);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_ready_refuses_discovery_of_another_issuer(void **state)
{
	struct nl_config cfg;
	char issuer[300], err[256] = "";
	(void)state;

	/* Same server, but not the same issuer string: discovery's issuer must equal it exactly. */
	make_cfg(&cfg, NULL);
	snprintf(issuer, sizeof(issuer), "%s/", fx.issuer);
	set(&cfg, "env", "issuer", issuer);
	struct nl_oidc *o = new_oidc(&cfg);
	assert_int_not_equal(nl_oidc_ready(o, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "issuer"));
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_ready_reports_unreachable_provider(void **state)
{
	struct nl_config cfg;
	struct nl_oidc_stats st;
	char err[256] = "";
	(void)state;

	make_cfg(&cfg, NULL);
	set(&cfg, "env", "issuer", "http://127.0.0.1:9");
	struct nl_oidc *o = new_oidc(&cfg);
	assert_int_equal(nl_oidc_ready(o, err, sizeof(err)), NL_ERR_UNAVAILABLE);
	assert_non_null(strstr(err, "discovery"));
	nl_oidc_get_stats(o, &st);
	assert_string_equal(st.last_error, err);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_flush_drops_memory_and_disk_caches(void **state)
{
	struct nl_config cfg;
	struct stat sb;
	char path[512];
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	ready(o);
	nl_oidc_flush(o);
	snprintf(path, sizeof(path), "%s/discovery.json", cfg.cache_dir);
	assert_int_not_equal(stat(path, &sb), 0);
	snprintf(path, sizeof(path), "%s/jwks.json", cfg.cache_dir);
	assert_int_not_equal(stat(path, &sb), 0);
	long d0 = mock_stat("discovery"), j0 = mock_stat("jwks");
	ready(o);
	assert_int_equal(mock_stat("discovery") - d0, 1);
	assert_int_equal(mock_stat("jwks") - j0, 1);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_new_refuses_readable_client_key(void **state)
{
	struct nl_config cfg;
	struct nl_oidc *o = NULL;
	char err[256] = "";
	(void)state;

	make_cfg(&cfg, NULL);
	assert_int_equal(chmod(fx.key_path, 0644), 0);
	int r = nl_oidc_new(&cfg, &o, err, sizeof(err));
	assert_int_equal(chmod(fx.key_path, 0600), 0);
	assert_int_not_equal(r, 0);
	assert_null(o);
	assert_non_null(strstr(err, "client key"));
	nl_config_free(&cfg);
}

struct race {
	struct nl_oidc *o;
	bool flusher;
	int failures;
};

/* No cmocka asserts in threads: count failures and let the test check them. */
static void *race_thread(void *arg)
{
	struct race *rc = arg;
	struct nl_oidc_stats st;
	char err[256], *url;

	for (int i = 0; i < 25; i++) {
		if (rc->flusher) {
			if (i % 5 == 0)
				nl_oidc_flush(rc->o);
			continue;
		}
		if (nl_oidc_ready(rc->o, err, sizeof(err)) != 0)
			rc->failures++;
		if (nl_oidc_authorize_url(rc->o, "s", "n", NULL, &url) == 0)
			free(url);
		else
			rc->failures++;
		(void)nl_oidc_pkce_s256(rc->o);
		nl_oidc_get_stats(rc->o, &st);
	}
	return NULL;
}

static void test_ready_from_many_threads_is_safe(void **state)
{
	struct nl_config cfg;
	struct race rc[5];
	pthread_t th[5];
	int failures = 0;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	/* A cold start from four threads at once: every call must succeed. */
	for (int i = 0; i < 4; i++) {
		rc[i] = (struct race){.o = o};
		assert_int_equal(pthread_create(&th[i], NULL, race_thread, &rc[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		failures += rc[i].failures;
	}
	assert_int_equal(failures, 0);
	/* Now with a thread flushing: no crash, and the client works afterwards. */
	for (int i = 0; i < 5; i++) {
		rc[i] = (struct race){.o = o, .flusher = i == 4};
		assert_int_equal(pthread_create(&th[i], NULL, race_thread, &rc[i]), 0);
	}
	for (int i = 0; i < 5; i++)
		pthread_join(th[i], NULL);
	ready(o);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

/* ---- the authorize URL and PKCE ---- */

static void test_authorize_url_carries_every_parameter(void **state)
{
	struct nl_config cfg;
	char *url = NULL, *v;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	assert_int_equal(nl_oidc_authorize_url(o, "st-1", "no-1", "ch-1", &url), 0);
	assert_true(strncmp(url, fx.issuer, strlen(fx.issuer)) == 0);
	assert_non_null(strstr(url, "/authorize?"));
	const char *want[][2] = {
	    {"response_type", "code"},
	    {"scope", "openid profile email"},
	    {"client_id", CLIENT_ID},
	    {"redirect_uri", REDIRECT_URI},
	    {"state", "st-1"},
	    {"nonce", "no-1"},
	    {"vtr", cfg.env.vtr},
	    {"code_challenge", "ch-1"},
	    {"code_challenge_method", "S256"},
	    {"prompt", "login"},
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		v = query_param(url, want[i][0]);
		if (v == NULL)
			fail_msg("authorize URL lacks %s", want[i][0]);
		assert_string_equal(v, want[i][1]);
		free(v);
	}
	/* The vtr JSON array is percent-encoded, never raw. */
	assert_null(strchr(url, '"'));
	assert_null(strchr(url, '['));
	free(url);
	assert_int_equal(nl_oidc_authorize_url(o, "st-2", "no-2", NULL, &url), 0);
	assert_null(strstr(url, "code_challenge"));
	free(url);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

/* prompt_login = no: NHS login may reuse its own session (nhslogin.conf(5) says what that costs). */
static void test_authorize_url_without_prompt_when_prompt_login_is_off(void **state)
{
	struct nl_config cfg;
	char *url = NULL;
	(void)state;

	make_cfg(&cfg, NULL);
	cfg.env.prompt_login = false;
	struct nl_oidc *o = new_oidc(&cfg);
	assert_int_equal(nl_oidc_authorize_url(o, "st-3", "no-3", NULL, &url), 0);
	assert_null(strstr(url, "prompt="));
	free(url);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_pkce_pair_is_s256_of_the_verifier(void **state)
{
	char *v1 = NULL, *c1 = NULL, *v2 = NULL, *c2 = NULL, *want = NULL;
	unsigned char md[32];
	unsigned int mdlen = 0;
	(void)state;

	assert_int_equal(nl_pkce_pair(&v1, &c1), 0);
	assert_int_equal(nl_pkce_pair(&v2, &c2), 0);
	assert_true(strlen(v1) >= 43 && strlen(v1) <= 128);
	assert_int_equal(strlen(c1), 43);
	assert_string_not_equal(v1, v2);
	assert_int_equal(EVP_Digest(v1, strlen(v1), md, &mdlen, EVP_sha256(), NULL), 1);
	assert_int_equal(nl_b64url_encode(md, mdlen, &want), 0);
	assert_string_equal(c1, want);
	free(want);
	nl_free_secret(v1);
	nl_free_secret(c1);
	nl_free_secret(v2);
	nl_free_secret(c2);
}

/* ---- the code exchange ---- */

static void test_exchange_code_signs_in_at_p9(void **state)
{
	struct nl_config cfg;
	struct nl_identity id;
	struct nl_oidc_stats st;
	enum nl_outcome oc = NL_OUT_UNAVAILABLE;
	char err[256] = "", *code;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	code = get_code(o, "state-a", "nonce-a", NULL);
	long t0 = mock_stat("token");
	assert_int_equal(exchange(o, code, NULL, "nonce-a", &id, &oc, err, sizeof(err)), 0);
	assert_int_equal(oc, NL_OUT_OK);
	assert_int_equal(mock_stat("token") - t0, 1);
	assert_non_null(id.sub);
	assert_string_equal(id.sub, "2b6c1b7e-4f5d-4c1a-9b8e-0d9f3e6a7c21");
	assert_non_null(id.vot);
	assert_true(strncmp(id.vot, "P9.", 3) == 0);
	assert_int_equal(id.level, 9);
	assert_true(id.id_exp > time(NULL));
	assert_true(id.auth_time > 0 && id.auth_time <= time(NULL) + 60);
	assert_non_null(id.claims);
	assert_string_equal(nl_json_str(id.claims, "nonce"), "nonce-a");
	nl_oidc_get_stats(o, &st);
	assert_int_equal(st.token_requests, 1);
	assert_int_equal(st.userinfo_requests, 0);
	nl_identity_clear(&id);
	assert_null(id.sub);
	nl_free_secret(code);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_exchange_with_wrong_nonce_is_invalid_token(void **state)
{
	struct nl_config cfg;
	struct nl_identity id;
	enum nl_outcome oc = NL_OUT_OK;
	char err[256] = "", *code;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	code = get_code(o, "state-b", "nonce-b", NULL);
	long j0 = mock_stat("jwks");
	assert_int_not_equal(exchange(o, code, NULL, "another-nonce", &id, &oc, err, sizeof(err)), 0);
	assert_int_equal(oc, NL_OUT_INVALID_TOKEN);
	assert_string_equal(err, "ID token rejected: nonce");
	assert_null(id.sub);
	/* Only an unknown kid refetches the JWKS. */
	assert_int_equal(mock_stat("jwks"), j0);
	nl_free_secret(code);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

/* The result names the rule, not only the line: a caller never parses the error text. */
static void test_exchange_result_names_the_failed_rule_and_holds_no_identity(void **state)
{
	struct nl_config cfg;
	struct nl_grant_result res;
	char *code;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	code = get_code(o, "state-r", "nonce-r", NULL);
	assert_int_equal(nl_oidc_exchange_code(o, code, NULL, "another-nonce", &res), NL_ERR_CLAIM);
	assert_int_equal(res.outcome, NL_OUT_INVALID_TOKEN);
	assert_int_equal(res.rule, NL_RULE_NONCE);
	assert_string_equal(res.error, "ID token rejected: nonce");
	assert_null(res.id.sub);
	assert_null(res.id.claims);
	nl_grant_result_clear(&res);
	nl_free_secret(code);

	code = get_code(o, "state-s", "nonce-s", NULL);
	assert_int_equal(nl_oidc_exchange_code(o, code, NULL, "nonce-s", &res), 0);
	assert_int_equal(res.outcome, NL_OUT_OK);
	assert_int_equal(res.rule, NL_RULE_NONE);
	assert_string_equal(res.error, "");
	assert_non_null(res.id.sub);
	assert_int_equal(res.id.level, 9);
	nl_grant_result_clear(&res);
	assert_null(res.id.sub);
	nl_free_secret(code);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_exchange_of_a_used_code_is_denied(void **state)
{
	struct nl_config cfg;
	struct nl_identity id;
	enum nl_outcome oc = NL_OUT_OK;
	char err[256] = "", *code;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	code = get_code(o, "state-c", "nonce-c", NULL);
	assert_int_equal(exchange(o, code, NULL, "nonce-c", &id, &oc, err, sizeof(err)), 0);
	nl_identity_clear(&id);
	assert_int_not_equal(exchange(o, code, NULL, "nonce-c", &id, &oc, err, sizeof(err)), 0);
	assert_int_equal(oc, NL_OUT_DENIED);
	assert_non_null(strstr(err, "invalid_grant"));
	assert_null(strstr(err, code));
	nl_free_secret(code);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_exchange_with_server_error_is_unavailable(void **state)
{
	struct nl_config cfg;
	struct nl_identity id;
	enum nl_outcome oc = NL_OUT_OK;
	char err[256] = "", *code;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	code = get_code(o, "state-d", "nonce-d", NULL);
	mock_fault("status_500");
	assert_int_equal(exchange(o, code, NULL, "nonce-d", &id, &oc, err, sizeof(err)), NL_ERR_UNAVAILABLE);
	assert_int_equal(oc, NL_OUT_UNAVAILABLE);
	assert_non_null(strstr(err, "500"));
	nl_free_secret(code);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_exchange_without_id_token_is_unavailable(void **state)
{
	struct nl_config cfg;
	struct nl_identity id;
	enum nl_outcome oc = NL_OUT_OK;
	char err[256] = "", *code;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	code = get_code(o, "state-e", "nonce-e", NULL);
	mock_fault("token_no_id_token");
	assert_int_equal(exchange(o, code, NULL, "nonce-e", &id, &oc, err, sizeof(err)), NL_ERR_UNAVAILABLE);
	assert_int_equal(oc, NL_OUT_UNAVAILABLE);
	assert_non_null(strstr(err, "id_token"));
	nl_free_secret(code);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_exchange_with_non_json_answer_is_unavailable(void **state)
{
	struct nl_config cfg;
	struct nl_identity id;
	enum nl_outcome oc = NL_OUT_OK;
	char err[256] = "", *code;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	code = get_code(o, "state-f", "nonce-f", NULL);
	mock_fault("token_not_json");
	assert_int_equal(exchange(o, code, NULL, "nonce-f", &id, &oc, err, sizeof(err)), NL_ERR_UNAVAILABLE);
	assert_int_equal(oc, NL_OUT_UNAVAILABLE);
	assert_non_null(strstr(err, "JSON"));
	nl_free_secret(code);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_exchange_after_key_rotation_refetches_jwks_once(void **state)
{
	struct nl_config cfg;
	struct nl_identity id;
	struct nl_oidc_stats st;
	enum nl_outcome oc = NL_OUT_UNAVAILABLE;
	char err[256] = "", *code;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	ready(o);
	mock_fault("rotate_key");
	code = get_code(o, "state-g", "nonce-g", NULL);
	long j0 = mock_stat("jwks");
	if (exchange(o, code, NULL, "nonce-g", &id, &oc, err, sizeof(err)) != 0)
		fail_msg("exchange after rotation: %s", err);
	assert_int_equal(oc, NL_OUT_OK);
	assert_int_equal(mock_stat("jwks") - j0, 1);
	nl_oidc_get_stats(o, &st);
	assert_int_equal(st.jwks_fetches, 2);
	nl_identity_clear(&id);
	nl_free_secret(code);

	/* A second rotation within the minute: the refetch is rate-limited, so the kid stays unknown. */
	mock_fault("rotate_key");
	code = get_code(o, "state-h", "nonce-h", NULL);
	j0 = mock_stat("jwks");
	assert_int_not_equal(exchange(o, code, NULL, "nonce-h", &id, &oc, err, sizeof(err)), 0);
	assert_int_equal(oc, NL_OUT_INVALID_TOKEN);
	assert_string_equal(err, "ID token rejected: kid");
	assert_int_equal(mock_stat("jwks"), j0);
	nl_free_secret(code);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_exchange_below_min_level_is_level(void **state)
{
	struct nl_config cfg;
	struct nl_identity id;
	enum nl_outcome oc = NL_OUT_OK;
	char err[256] = "", *code;
	(void)state;

	/* Asking for P5 only: the P9 user is given a P5 vector, below the P9 minimum. */
	make_cfg(&cfg, NULL);
	set(&cfg, "env", "vtr", "[\"P5.Cp.Cd\"]");
	set(&cfg, "identity", "min_level", "P9");
	struct nl_oidc *o = new_oidc(&cfg);
	code = get_code(o, "state-i", "nonce-i", NULL);
	assert_int_not_equal(exchange(o, code, NULL, "nonce-i", &id, &oc, err, sizeof(err)), 0);
	assert_int_equal(oc, NL_OUT_LEVEL);
	assert_null(id.sub);
	nl_free_secret(code);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_exchange_with_userinfo_merges_claims(void **state)
{
	struct nl_config cfg;
	struct nl_identity id;
	struct nl_oidc_stats st;
	enum nl_outcome oc = NL_OUT_UNAVAILABLE;
	char err[256] = "", *code;
	(void)state;

	make_cfg(&cfg, NULL);
	set(&cfg, "identity", "userinfo", "true");
	struct nl_oidc *o = new_oidc(&cfg);
	code = get_code(o, "state-j", "nonce-j", NULL);
	long u0 = mock_stat("userinfo");
	if (exchange(o, code, NULL, "nonce-j", &id, &oc, err, sizeof(err)) != 0)
		fail_msg("exchange with userinfo: %s", err);
	assert_int_equal(oc, NL_OUT_OK);
	assert_int_equal(mock_stat("userinfo") - u0, 1);
	nl_oidc_get_stats(o, &st);
	assert_int_equal(st.userinfo_requests, 1);
	assert_string_equal(nl_json_str(id.claims, "email"), "p9@example.nhs.uk");
	/* ID token claims are kept, not overridden. */
	assert_string_equal(nl_json_str(id.claims, "nonce"), "nonce-j");
	assert_string_equal(nl_json_str(id.claims, "iss"), fx.issuer);
	nl_identity_clear(&id);
	nl_free_secret(code);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_exchange_with_pkce_s256(void **state)
{
	struct nl_config cfg;
	struct nl_identity id;
	enum nl_outcome oc = NL_OUT_UNAVAILABLE;
	char err[256] = "", *code, *verifier = NULL, *challenge = NULL, *other = NULL, *other_ch = NULL;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	ready(o);
	assert_true(nl_oidc_pkce_s256(o));
	assert_int_equal(nl_pkce_pair(&verifier, &challenge), 0);
	assert_int_equal(nl_pkce_pair(&other, &other_ch), 0);

	code = get_code(o, "state-k", "nonce-k", challenge);
	if (exchange(o, code, verifier, "nonce-k", &id, &oc, err, sizeof(err)) != 0)
		fail_msg("exchange with PKCE: %s", err);
	nl_identity_clear(&id);
	nl_free_secret(code);

	/* The provider checks the verifier: a different one is refused. */
	code = get_code(o, "state-l", "nonce-l", challenge);
	assert_int_not_equal(exchange(o, code, other, "nonce-l", &id, &oc, err, sizeof(err)), 0);
	assert_int_equal(oc, NL_OUT_DENIED);
	nl_free_secret(code);
	nl_free_secret(verifier);
	nl_free_secret(challenge);
	nl_free_secret(other);
	nl_free_secret(other_ch);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

/* ---- the device grant ---- */

static struct nl_oidc *device_client(struct nl_config *cfg, const char *issuer)
{
	make_cfg(cfg, NULL);
	set(cfg, "env", "issuer", issuer);
	set(cfg, "env", "flow", "device");
	struct nl_oidc *o = new_oidc(cfg);
	ready(o);
	assert_true(nl_oidc_has_device_endpoint(o));
	return o;
}

static void device_start(struct nl_oidc *o, struct nl_device_auth *da)
{
	char err[256] = "";

	memset(da, 0, sizeof(*da));
	if (nl_oidc_device_start(o, da, err, sizeof(err)) != 0)
		fail_msg("device start: %s", err);
	assert_non_null(da->device_code);
	assert_non_null(da->user_code);
	assert_non_null(da->verification_uri);
	assert_non_null(da->verification_uri_complete);
	assert_true(da->expires_in > 0);
	assert_int_equal(da->interval, 1);
}

/* Poll at the interval until something other than pending (bounded); returns the last r. */
static int device_poll_until_done(struct nl_oidc *o, struct nl_device_auth *da, struct nl_identity *id,
                                  enum nl_outcome *oc, char *err, size_t errlen)
{
	int r = NL_ERR_INTERNAL;

	for (int i = 0; i < 10; i++) {
		memset(id, 0, sizeof(*id));
		r = device_poll(o, da->device_code, id, oc, err, errlen);
		if (*oc != NL_OUT_PENDING && *oc != NL_OUT_SLOW_DOWN)
			break;
		if (*oc == NL_OUT_SLOW_DOWN)
			da->interval += 5;
		sleep((unsigned)da->interval);
	}
	return r;
}

static void test_device_grant_auto_approved_signs_in(void **state)
{
	struct nl_config cfg;
	struct nl_device_auth da;
	struct nl_identity id;
	enum nl_outcome oc = NL_OUT_UNAVAILABLE;
	char err[256] = "";
	(void)state;

	struct nl_oidc *o = device_client(&cfg, fx.issuer);
	device_start(o, &da);
	if (device_poll_until_done(o, &da, &id, &oc, err, sizeof(err)) != 0)
		fail_msg("device poll: %s (%s)", nl_outcome_word(oc), err);
	assert_int_equal(oc, NL_OUT_OK);
	assert_string_equal(id.sub, "2b6c1b7e-4f5d-4c1a-9b8e-0d9f3e6a7c21");
	assert_int_equal(id.level, 9);
	nl_identity_clear(&id);

	/* The device code is single use. */
	memset(&id, 0, sizeof(id));
	assert_int_not_equal(device_poll(o, da.device_code, &id, &oc, err, sizeof(err)), 0);
	assert_int_equal(oc, NL_OUT_DENIED);
	nl_device_auth_clear(&da);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_device_grant_pending_slow_down_then_signed_in(void **state)
{
	struct nl_config cfg;
	struct nl_device_auth da;
	struct nl_identity id;
	struct mockproc *manual = NULL;
	enum nl_outcome oc = NL_OUT_OK;
	char err[256] = "", form[128];
	(void)state;

	/* A second mock that waits for the person to approve on its /device page. */
	assert_int_equal(mock_start(false, &manual), 0);
	struct nl_oidc *o = device_client(&cfg, mockproc_issuer(manual));
	device_start(o, &da);

	memset(&id, 0, sizeof(id));
	assert_int_equal(device_poll(o, da.device_code, &id, &oc, err, sizeof(err)), NL_ERR_LIMIT);
	assert_int_equal(oc, NL_OUT_PENDING);
	assert_null(id.sub);
	/* At once again: faster than the interval. */
	assert_int_equal(device_poll(o, da.device_code, &id, &oc, err, sizeof(err)), NL_ERR_LIMIT);
	assert_int_equal(oc, NL_OUT_SLOW_DOWN);

	snprintf(form, sizeof(form), "user_code=%s&user=p9", da.user_code);
	assert_int_equal(mock_post(mockproc_issuer(manual), "/device", form), 200);
	sleep(1);
	if (device_poll_until_done(o, &da, &id, &oc, err, sizeof(err)) != 0)
		fail_msg("device poll: %s (%s)", nl_outcome_word(oc), err);
	assert_int_equal(oc, NL_OUT_OK);
	assert_string_equal(id.sub, "2b6c1b7e-4f5d-4c1a-9b8e-0d9f3e6a7c21");
	nl_identity_clear(&id);
	nl_device_auth_clear(&da);

	/* Declined on the page: denied. */
	device_start(o, &da);
	snprintf(form, sizeof(form), "user_code=%s&decline=1", da.user_code);
	assert_int_equal(mock_post(mockproc_issuer(manual), "/device", form), 200);
	assert_int_not_equal(device_poll_until_done(o, &da, &id, &oc, err, sizeof(err)), 0);
	assert_int_equal(oc, NL_OUT_DENIED);
	assert_null(id.sub);
	nl_device_auth_clear(&da);
	nl_oidc_free(o);
	nl_config_free(&cfg);
	mockproc_stop(manual);
}

/* ---- spec clauses: what the provider's answers must hold, one clause a test ---- */

/* A code exchange whose token response carries fault: unavailable, no identity, and err says why
 * (never a code or token). Returns nothing; want is a substring of err. */
static void assert_exchange_refused(const char *fault, const char *want)
{
	struct nl_config cfg;
	struct nl_identity id;
	enum nl_outcome oc = NL_OUT_OK;
	char err[256] = "", *code;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	code = get_code(o, "state-s", "nonce-s", NULL);
	mock_fault(fault);
	assert_int_equal(exchange(o, code, NULL, "nonce-s", &id, &oc, err, sizeof(err)), NL_ERR_UNAVAILABLE);
	assert_int_equal(oc, NL_OUT_UNAVAILABLE);
	assert_null(id.sub);
	assert_null(id.claims);
	if (strstr(err, want) == NULL)
		fail_msg("err \"%s\" does not say \"%s\"", err, want);
	assert_null(strstr(err, code));
	nl_free_secret(code);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

/* RFC 6749 5.1: access_token REQUIRED (even when userinfo is not asked). */
static void test_token_response_without_access_token_is_refused(void **state)
{
	(void)state;
	assert_exchange_refused("token_no_access_token", "token response has no access_token");
}

/* RFC 6749 5.1: token_type REQUIRED. */
static void test_token_response_without_token_type_is_refused(void **state)
{
	(void)state;
	assert_exchange_refused("token_no_token_type", "token response has no token_type");
}

/* RFC 6749 7.1 (a type we do not understand is not used) and OIDC Core 3.1.3.3 (MUST be Bearer). */
static void test_token_response_with_token_type_other_than_bearer_is_refused(void **state)
{
	(void)state;
	assert_exchange_refused("token_type_mac", "token_type other than Bearer");
}

/* RFC 6749 5.1: token_type "is case insensitive". */
static void test_token_response_with_token_type_bearer_in_lower_case_is_accepted(void **state)
{
	struct nl_config cfg;
	struct nl_identity id;
	enum nl_outcome oc = NL_OUT_UNAVAILABLE;
	char err[256] = "", *code;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	code = get_code(o, "state-t", "nonce-t", NULL);
	mock_fault("token_type_lowercase");
	if (exchange(o, code, NULL, "nonce-t", &id, &oc, err, sizeof(err)) != 0)
		fail_msg("exchange: %s", err);
	assert_int_equal(oc, NL_OUT_OK);
	nl_identity_clear(&id);
	nl_free_secret(code);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

/* RFC 6749 5.1 and A.14: expires_in is a number of seconds (1*DIGIT). */
static void test_token_response_with_negative_expires_in_is_refused(void **state)
{
	(void)state;
	assert_exchange_refused("token_expires_in_negative", "expires_in that is not a non-negative integer");
}

static void test_token_response_with_expires_in_as_a_string_is_refused(void **state)
{
	(void)state;
	assert_exchange_refused("token_expires_in_string", "expires_in that is not a non-negative integer");
}

/* RFC 6749 5.1: the parameters come "using the application/json media type". */
static void test_token_response_with_content_type_text_plain_is_refused(void **state)
{
	(void)state;
	assert_exchange_refused("token_content_type_text", "Content-Type is not application/json");
}

/* RFC 6749 5.1: the response is a JSON object ("top level structure"). */
static void test_token_response_that_is_a_json_array_is_refused(void **state)
{
	(void)state;
	assert_exchange_refused("token_json_array", "response is not a JSON object");
}

/* RFC 6749 5.2: error is one ASCII code of %x20-21 / %x23-5B / %x5D-7E; anything else (here markup
 * and a terminal escape) is not repeated into the log. */
static void test_token_error_with_an_unsafe_error_word_is_not_repeated(void **state)
{
	(void)state;
	assert_exchange_refused("token_error_unsafe", "token endpoint: HTTP 400");
}

/* OIDC Core 5.3.2: an unsigned UserInfo answer MUST be application/json. */
static void test_userinfo_answer_that_is_not_application_json_is_refused(void **state)
{
	struct nl_config cfg;
	struct nl_identity id;
	enum nl_outcome oc = NL_OUT_OK;
	char err[256] = "", *code;
	(void)state;

	make_cfg(&cfg, NULL);
	set(&cfg, "identity", "userinfo", "true");
	struct nl_oidc *o = new_oidc(&cfg);
	code = get_code(o, "state-u", "nonce-u", NULL);
	mock_fault("userinfo_content_type_jwt");
	assert_int_equal(exchange(o, code, NULL, "nonce-u", &id, &oc, err, sizeof(err)), NL_ERR_UNAVAILABLE);
	assert_int_equal(oc, NL_OUT_UNAVAILABLE);
	assert_null(id.sub);
	assert_string_equal(err, "userinfo: Content-Type is not application/json (OIDC Core 5.3.2)");
	nl_free_secret(code);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

/* A new client (cold cache) is not ready while fault is on; err says want. */
static void assert_not_ready(const char *fault, const char *want)
{
	struct nl_config cfg;
	char err[256] = "";

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	mock_fault(fault);
	assert_int_not_equal(nl_oidc_ready(o, err, sizeof(err)), 0);
	if (strstr(err, want) == NULL)
		fail_msg("err \"%s\" does not say \"%s\"", err, want);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

/* RFC 6749 3.1, 3.2: endpoint URIs "MUST NOT include a fragment component". */
static void test_discovery_with_a_fragment_in_an_endpoint_is_refused(void **state)
{
	(void)state;
	assert_not_ready("discovery_fragment", "token_endpoint has a fragment");
}

/* OIDC Discovery 3: the provider signs ID tokens with none of our allowed_algs - nothing would verify. */
static void test_discovery_without_a_shared_id_token_alg_is_refused(void **state)
{
	(void)state;
	assert_not_ready("discovery_algs_hs256",
	                 "id_token_signing_alg_values_supported has none of allowed_algs");
}

/* RFC 9207 3: the metadata that obliges us to require iss on the callback. */
static void test_discovery_iss_parameter_supported_is_read(void **state)
{
	struct nl_config cfg;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	ready(o);
	assert_false(nl_oidc_iss_param_required(o));
	nl_oidc_free(o);
	nl_config_free(&cfg);
	make_cfg(&cfg, NULL);
	o = new_oidc(&cfg);
	mock_fault("discovery_iss_param");
	ready(o);
	assert_true(nl_oidc_iss_param_required(o));
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

/* The provider's signing key, published with private members: nothing in that set is trusted. */
static void test_jwks_with_a_private_key_is_refused(void **state)
{
	(void)state;
	assert_not_ready("jwks_private_members", "jwks refused: key 1 carries private key members");
}

/* RFC 7518 6.3.1.1: n "MUST NOT" have a leading zero octet; with it the only key is left out. */
static void test_jwks_whose_signing_key_has_a_leading_zero_in_n_is_refused(void **state)
{
	(void)state;
	assert_not_ready("jwks_n_leading_zero",
	                 "jwks refused: no usable signing key; key 1: n has a leading zero octet");
}

/* RFC 7518 3.3: at least 2048 bits, counted exactly. */
static void test_jwks_whose_signing_key_has_2047_bits_is_refused(void **state)
{
	(void)state;
	assert_not_ready("jwks_rsa_2047", "key 1: n is 2047 bits");
}

/* RFC 7517 5: a broken extra key is ignored, the others serve. */
static void test_jwks_with_a_broken_extra_key_is_ready_with_the_good_one(void **state)
{
	struct nl_config cfg;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	mock_fault("jwks_ec_off_curve");
	ready(o);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

/* A device authorization answer with fault is refused (unavailable); err says want. */
static void assert_device_start_refused(const char *fault, const char *want)
{
	struct nl_config cfg;
	struct nl_device_auth da;
	char err[256] = "";

	struct nl_oidc *o = device_client(&cfg, fx.issuer);
	mock_fault(fault);
	memset(&da, 0, sizeof(da));
	assert_int_equal(nl_oidc_device_start(o, &da, err, sizeof(err)), NL_ERR_UNAVAILABLE);
	assert_null(da.device_code);
	assert_null(da.user_code);
	if (strstr(err, want) == NULL)
		fail_msg("err \"%s\" does not say \"%s\"", err, want);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

/* RFC 8628 3.2: interval is the minimum wait; one we cannot keep is refused, not shortened. */
static void test_device_authorization_with_an_interval_we_cannot_keep_is_refused(void **state)
{
	(void)state;
	assert_device_start_refused("device_interval_long", "interval is not an integer of 0..60");
}

static void test_device_authorization_with_a_negative_interval_is_refused(void **state)
{
	(void)state;
	assert_device_start_refused("device_interval_negative", "interval is not an integer of 0..60");
}

/* What the workstation shows must not be able to drive its terminal. */
static void test_device_authorization_with_an_escape_in_user_code_is_refused(void **state)
{
	(void)state;
	assert_device_start_refused("device_user_code_escape", "user_code is not printable ASCII");
}

/* RFC 8628 3.2: the answer is application/json. */
static void test_device_authorization_that_is_not_application_json_is_refused(void **state)
{
	(void)state;
	assert_device_start_refused("device_content_type_text", "Content-Type is not application/json");
}

static void test_outcome_words_are_the_protocol_reasons(void **state)
{
	(void)state;
	assert_string_equal(nl_outcome_word(NL_OUT_OK), "ok");
	assert_string_equal(nl_outcome_word(NL_OUT_DENIED), "denied");
	assert_string_equal(nl_outcome_word(NL_OUT_EXPIRED), "expired");
	assert_string_equal(nl_outcome_word(NL_OUT_INVALID_TOKEN), "invalid_token");
	assert_string_equal(nl_outcome_word(NL_OUT_LEVEL), "level");
	assert_string_equal(nl_outcome_word(NL_OUT_UNAVAILABLE), "unavailable");
	assert_string_equal(nl_outcome_word(NL_OUT_PENDING), "pending");
	assert_string_equal(nl_outcome_word(NL_OUT_SLOW_DOWN), "slow_down");
}

/* A C1 control in UTF-8 (U+009B, CSI) passes a URL parser; the terminal would obey it. */
static void test_device_authorization_with_a_c1_control_in_verification_uri_is_refused(void **state)
{
	(void)state;
	assert_device_start_refused("device_uri_c1", "a verification URI is not printable ASCII");
}

/* The kid of the client assertions: the thumbprint by default, client_key_id when set, none for
 * "none"; and the hint an invalid_client gets in the log. */
static void test_client_kid_follows_client_key_id(void **state)
{
	struct nl_env env = {0};
	cjose_jwk_t *key = NULL;
	char err[256], *kid = NULL, *thumb;

	(void)state;
	assert_int_equal(nl_jwk_load_private_pem(fx.key_path, &key, err, sizeof(err)), 0);
	assert_non_null(thumb = nl_jwk_thumbprint(key));
	assert_int_equal(nl_oidc_client_kid(&env, key, &kid), 0);
	assert_string_equal(kid, thumb);
	free(kid);
	env.client_key_id = "registered-kid-1";
	assert_int_equal(nl_oidc_client_kid(&env, key, &kid), 0);
	assert_string_equal(kid, "registered-kid-1");
	free(kid);
	env.client_key_id = "none";
	assert_int_equal(nl_oidc_client_kid(&env, key, &kid), 0);
	assert_null(kid);
	assert_non_null(strstr(nl_oidc_error_hint("invalid_client"), "nhsloginctl key"));
	assert_string_equal(nl_oidc_error_hint("invalid_grant"), "");
	assert_string_equal(nl_oidc_error_hint(NULL), "");
	free(thumb);
	cjose_jwk_release(key);
}

#define T(f) cmocka_unit_test_setup_teardown(f, clear_faults, clear_faults)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_ready_fetches_discovery_and_jwks_once),
	    T(test_ready_again_makes_no_request),
	    T(test_ready_reads_disk_cache_in_a_new_client),
	    T(test_ready_ignores_damaged_cache_file),
	    T(test_ready_ignores_cache_of_another_issuer),
	    T(test_ready_ignores_stale_cache),
	    T(test_ready_refuses_discovery_of_another_issuer),
	    T(test_ready_reports_unreachable_provider),
	    T(test_flush_drops_memory_and_disk_caches),
	    T(test_ready_from_many_threads_is_safe),
	    T(test_new_refuses_readable_client_key),
	    T(test_authorize_url_carries_every_parameter),
	    T(test_authorize_url_without_prompt_when_prompt_login_is_off),
	    T(test_pkce_pair_is_s256_of_the_verifier),
	    T(test_client_kid_follows_client_key_id),
	    T(test_exchange_code_signs_in_at_p9),
	    T(test_exchange_with_wrong_nonce_is_invalid_token),
	    T(test_exchange_result_names_the_failed_rule_and_holds_no_identity),
	    T(test_exchange_of_a_used_code_is_denied),
	    T(test_exchange_with_server_error_is_unavailable),
	    T(test_exchange_without_id_token_is_unavailable),
	    T(test_exchange_with_non_json_answer_is_unavailable),
	    T(test_exchange_after_key_rotation_refetches_jwks_once),
	    T(test_exchange_below_min_level_is_level),
	    T(test_exchange_with_userinfo_merges_claims),
	    T(test_exchange_with_pkce_s256),
	    T(test_device_grant_auto_approved_signs_in),
	    T(test_device_grant_pending_slow_down_then_signed_in),
	    T(test_token_response_without_access_token_is_refused),
	    T(test_token_response_without_token_type_is_refused),
	    T(test_token_response_with_token_type_other_than_bearer_is_refused),
	    T(test_token_response_with_token_type_bearer_in_lower_case_is_accepted),
	    T(test_token_response_with_negative_expires_in_is_refused),
	    T(test_token_response_with_expires_in_as_a_string_is_refused),
	    T(test_token_response_with_content_type_text_plain_is_refused),
	    T(test_token_response_that_is_a_json_array_is_refused),
	    T(test_token_error_with_an_unsafe_error_word_is_not_repeated),
	    T(test_userinfo_answer_that_is_not_application_json_is_refused),
	    T(test_discovery_with_a_fragment_in_an_endpoint_is_refused),
	    T(test_discovery_without_a_shared_id_token_alg_is_refused),
	    T(test_discovery_iss_parameter_supported_is_read),
	    T(test_jwks_with_a_private_key_is_refused),
	    T(test_jwks_whose_signing_key_has_a_leading_zero_in_n_is_refused),
	    T(test_jwks_whose_signing_key_has_2047_bits_is_refused),
	    T(test_jwks_with_a_broken_extra_key_is_ready_with_the_good_one),
	    T(test_device_authorization_with_an_interval_we_cannot_keep_is_refused),
	    T(test_device_authorization_with_a_negative_interval_is_refused),
	    T(test_device_authorization_with_an_escape_in_user_code_is_refused),
	    T(test_device_authorization_that_is_not_application_json_is_refused),
	    T(test_outcome_words_are_the_protocol_reasons),
	    T(test_device_authorization_with_a_c1_control_in_verification_uri_is_refused),
	};
	return cmocka_run_group_tests_name("oidc", tests, group_setup, group_teardown);
}
