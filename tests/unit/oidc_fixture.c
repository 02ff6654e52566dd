/* The OpenID client tests' fixture, shared by the tests/unit/test_oidc_*.c programs: a real
 * nhslogin-mock child started once a program, configurations and clients for it, and the steps of a
 * grant as the tests drive them. */
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
#include "oidc_fixture.h"

struct oidc_fixture fx;

/* Start a mock with our client registered; auto_approve signs p9 in at once (code and device). */
int mock_start(bool auto_approve, struct mockproc **out)
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
long mock_stat(const char *name)
{
	long v = -1;
	assert_int_equal(mockproc_stat(fx.mock, name, &v), 0);
	return v;
}

void mock_fault(const char *fault)
{
	char body[128];
	long status = 0;

	snprintf(body, sizeof(body), "{\"fault\":\"%s\"}", fault);
	assert_int_equal(mockproc_control(fx.mock, body, &status), 0);
	assert_int_equal(status, 200);
}

void set(struct nl_config *cfg, const char *section, const char *key, const char *value)
{
	char err[256] = "";
	int r = nl_config_set(cfg, section, key, value, err, sizeof(err));
	if (r != 0)
		fail_msg("nl_config_set %s.%s: %s", section, key, err);
}

/* A configuration for the mock with a fresh cache directory (or a named one, to share it). */
void make_cfg(struct nl_config *cfg, const char *cache_name)
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

struct nl_oidc *new_oidc(const struct nl_config *cfg)
{
	struct nl_oidc *o = NULL;
	char err[256] = "";
	int r = nl_oidc_new(cfg, &o, err, sizeof(err));
	if (r != 0)
		fail_msg("nl_oidc_new: %s", err);
	return o;
}

void ready(struct nl_oidc *o)
{
	char err[256] = "";
	int r = nl_oidc_ready(o, err, sizeof(err));
	if (r != 0)
		fail_msg("nl_oidc_ready: %s", err);
}

/* The value of name in a URL's query string (decoded), or NULL. */
char *query_param(const char *url, const char *name)
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
char *get_code(struct nl_oidc *o, const char *state, const char *nonce, const char *challenge)
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

int exchange(struct nl_oidc *o, const char *code, const char *verifier, const char *nonce,
             struct nl_identity *id, enum nl_outcome *oc, char *err, size_t errlen)
{
	struct nl_grant_result res;
	int r = nl_oidc_exchange_code(o, code, verifier, nonce, &res);

	return spread(r, &res, id, oc, err, errlen);
}

int device_poll(struct nl_oidc *o, const char *device_code, struct nl_identity *id, enum nl_outcome *oc,
                char *err, size_t errlen)
{
	struct nl_grant_result res;
	int r = nl_oidc_device_poll(o, device_code, &res);

	return spread(r, &res, id, oc, err, errlen);
}

/* ---- fixture ---- */

int group_setup(void **state)
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

int group_teardown(void **state)
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
int clear_faults(void **state)
{
	(void)state;
	mock_fault("none");
	return 0;
}

struct nl_oidc *device_client(struct nl_config *cfg, const char *issuer)
{
	make_cfg(cfg, NULL);
	set(cfg, "env", "issuer", issuer);
	set(cfg, "env", "flow", "device");
	struct nl_oidc *o = new_oidc(cfg);
	ready(o);
	assert_true(nl_oidc_has_device_endpoint(o));
	return o;
}
