/* The hostile-provider suite (issue 4, item 1): nhslogin-mock made hostile one fault at a time, and
 * the real path pam_nhslogin.so -> nhslogind -> nhslogin-mock with a phone walking the pages. Each
 * case: the sign-in fails closed with the PAM code DESIGN.md gives it, the daemon's log has exactly
 * one line naming what failed, and the next honest sign-in on the same daemon succeeds. The table of
 * cases, with what each expects, is tests/hostile/README.md. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fnmatch.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <security/pam_appl.h>

#include "faultutil.h"
#include "harness.h"
#include "nl_json.h"
#include "nl_time.h"

#define LOG_WAIT_MS 10000 /* a log line may follow the PAM result by a moment */

/* Two worlds, started on first use and stopped at the end: the daemon of `tok` asks userinfo
 * too; the daemon of `net` gives the provider 2 s an HTTP exchange. */
static struct world *tok_world, *net_world;

static struct world *tok(void)
{
	static const struct world_opts o = {.identity_extra = "userinfo = yes"};
	if (tok_world == NULL && world_start(&o, &tok_world) != 0)
		fail_msg("could not start the token world");
	return tok_world;
}

static struct world *net(void)
{
	static const struct world_opts o = {.daemon_extra = "http_timeout = 2"};
	if (net_world == NULL && world_start(&o, &net_world) != 0)
		fail_msg("could not start the network world");
	return net_world;
}

static int stop_worlds(void **state)
{
	(void)state;
	world_stop(tok_world);
	world_stop(net_world);
	tok_world = net_world = NULL;
	return 0;
}

/* ---- the mock ---- */

/* Before each test: no fault left over from a failed one. */
static int reset_faults(void **state)
{
	struct world *worlds[] = {tok_world, net_world};
	long status = 0;
	(void)state;

	for (size_t i = 0; i < 2; i++)
		if (worlds[i] != NULL &&
		    (mockproc_control(worlds[i]->mock, "{\"fault\":\"none\"}", &status) != 0 ||
		     status != 200))
			return -1;
	return 0;
}

static void set_fault(struct world *w, const char *name)
{
	char json[128];
	long status = 0;

	snprintf(json, sizeof(json), "{\"fault\":\"%s\"}", name);
	assert_int_equal(mockproc_control(w->mock, json, &status), 0);
	if (status != 200)
		fail_msg("the mock refused fault %s (HTTP %ld)", name, status);
}

static long stat_of(struct world *w, const char *endpoint)
{
	long n = -1;
	assert_int_equal(mockproc_stat(w->mock, endpoint, &n), 0);
	return n;
}

/* ---- the daemon's log (its stderr, w->dir/daemon.log) ---- */

static long log_mark(const struct world *w)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/daemon.log", w->dir);
	return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* Lines after mark that match the glob pattern (fnmatch; "*" around it is implied). */
static int log_count(const struct world *w, long mark, const char *needle)
{
	char path[PATH_MAX], pat[256], *line = NULL;
	size_t cap = 0;
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/daemon.log", w->dir);
	snprintf(pat, sizeof(pat), "*%s*", needle);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	if (fseek(f, mark, SEEK_SET) == 0)
		while (getline(&line, &cap, f) > 0)
			if (fnmatch(pat, line, 0) == 0)
				n++;
	free(line);
	fclose(f);
	return n;
}

/* Exactly one line after mark names needle (waiting a moment for it). */
static void assert_one_log_line(const struct world *w, long mark, const char *needle)
{
	int64_t deadline = nl_mono_ms() + LOG_WAIT_MS;
	int n;

	while ((n = log_count(w, mark, needle)) == 0 && nl_mono_ms() < deadline)
		usleep(20 * 1000);
	if (n != 1)
		fail_msg("%d lines of the daemon's log name \"%s\" (want 1; see %s/daemon.log)", n, needle,
		         w->dir);
}

/* ---- the daemon's socket (root: admin ops allowed) ---- */

static int daemon_connect(const struct world *w)
{
	int fd = fu_connect(w->socket);

	assert_true(fd >= 0);
	return fd;
}

/* One request and its answer on fd (a flow lives as long as the connection that started it). */
static json_t *daemon_call_on(int fd, const char *line)
{
	json_t *m = fu_call(fd, line, 20000);

	assert_non_null(m);
	return m;
}

static json_t *daemon_call(const struct world *w, const char *line)
{
	int fd = daemon_connect(w);
	json_t *m = daemon_call_on(fd, line);

	close(fd);
	return m;
}

/* Empty the daemon's discovery and JWKS caches: the next sign-in fetches both. */
static void flush_caches(const struct world *w)
{
	json_t *m = daemon_call(w, "{\"op\":\"flush\"}");
	assert_true(json_is_true(json_object_get(m, "ok")));
	json_decref(m);
}

/* A fresh daemon on the same config (its once-a-minute unknown-kid refetch allowance renewed). */
static void restart_daemon(struct world *w)
{
	world_kill_daemon(w, SIGTERM);
	assert_int_equal(world_restart_daemon(w), 0);
}

/* ---- sign-ins ---- */

static int signin(struct world *w, struct pam_run *run)
{
	assert_int_equal(world_activate(w), 0);
	return pam_run_auth(w, run);
}

/* An honest sign-in as clinician (p9 on the phone) must succeed on this daemon. */
static void assert_honest_signin(struct world *w)
{
	struct pam_run run = {.service = "nl-long", .user = "clinician", .as_user = "p9"};

	assert_int_equal(signin(w, &run), PAM_SUCCESS);
	assert_int_equal(run.phone_rc, 0);
	assert_int_equal(run.phone_status, 200);
}

/* The common case: fault on, a sign-in fails with want (the phone's callback page says it could
 * not finish), one log line names needle; fault off, an honest sign-in succeeds. */
static void assert_fault_refused(struct world *w, const char *fault, int want, const char *needle)
{
	struct pam_run run = {.service = "nl-long", .user = "clinician", .as_user = "p9"};
	long mark = log_mark(w);

	set_fault(w, fault);
	assert_int_equal(signin(w, &run), want);
	assert_int_equal(run.phone_rc, 0);
	assert_int_equal(run.phone_status, 502);
	assert_one_log_line(w, mark, needle);
	set_fault(w, "none");
	assert_honest_signin(w);
}

/* With a cold cache, a broken discovery or JWKS stops the sign-in before a code is shown. */
static void assert_cold_cache_unavailable(struct world *w, const char *fault, const char *needle)
{
	struct pam_run run = {.service = "nl-long", .user = "clinician", .as_user = "p9"};
	long mark = log_mark(w);

	set_fault(w, fault);
	flush_caches(w);
	assert_int_equal(signin(w, &run), PAM_AUTHINFO_UNAVAIL);
	assert_int_equal(run.user_code[0], '\0');
	assert_one_log_line(w, mark, needle);
	set_fault(w, "none");
	assert_honest_signin(w);
}

/* ---- the callback URL ---- */

/* The raw (still encoded) value of name in url's query. */
static void url_param(const char *url, const char *name, char *out, size_t outlen)
{
	const char *q = strchr(url, '?'), *p, *end;
	size_t nlen = strlen(name), len;

	assert_non_null(q);
	for (p = q + 1; p != NULL && *p != '\0'; p = strchr(p, '&') != NULL ? strchr(p, '&') + 1 : NULL) {
		if (strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			p += nlen + 1;
			end = p + strcspn(p, "&#");
			len = (size_t)(end - p);
			assert_true(len > 0 && len < outlen);
			memcpy(out, p, len);
			out[len] = '\0';
			return;
		}
	}
	fail_msg("no %s in the callback URL", name);
}

/* GET the bridge's callback with this code and state; the HTTP status. */
static long callback(const struct world *w, const char *code, const char *state)
{
	struct mockproc_resp resp = {0};
	char url[8192];
	long status;

	snprintf(url, sizeof(url), "%s/callback?code=%s&state=%s", w->bridge, code, state);
	assert_int_equal(mockproc_fetch("GET", url, NULL, NULL, NULL, &resp), 0);
	status = resp.status;
	mockproc_resp_free(&resp);
	return status;
}

static long get(const char *url)
{
	struct mockproc_resp resp = {0};
	long status;

	assert_int_equal(mockproc_fetch("GET", url, NULL, NULL, NULL, &resp), 0);
	status = resp.status;
	mockproc_resp_free(&resp);
	return status;
}

/* What the custom phones remember between sign-ins. */
static char saved_code[4096], saved_state[4096];

/* An honest phone that remembers the code and state it brought back. */
static int phone_saving(struct world *w, struct pam_run *run)
{
	char *url = NULL;
	int r = phone_to_callback(w, run->user_code, "p9", &url);

	if (r != 0)
		return r;
	url_param(url, "code", saved_code, sizeof(saved_code));
	url_param(url, "state", saved_state, sizeof(saved_state));
	run->phone_status = get(url);
	free(url);
	return 0;
}

/* A phone whose callback carries a forged state (the right code). */
static int phone_wrong_state(struct world *w, struct pam_run *run)
{
	char *url = NULL, code[4096];
	int r = phone_to_callback(w, run->user_code, "p9", &url);

	if (r != 0)
		return r;
	url_param(url, "code", code, sizeof(code));
	run->phone_status = callback(w, code, "Zm9yZ2VkLXN0YXRlLW5vdC1mcm9tLXRoaXMtZGFlbW9u");
	free(url);
	return 0;
}

/* A phone that brings this flow's code back with the state of an earlier, finished flow. */
static int phone_old_state(struct world *w, struct pam_run *run)
{
	char *url = NULL, code[4096];
	int r = phone_to_callback(w, run->user_code, "p9", &url);

	if (r != 0)
		return r;
	url_param(url, "code", code, sizeof(code));
	run->phone_status = callback(w, code, saved_state);
	free(url);
	return 0;
}

/* A phone that brings this flow's state back with the code of an earlier, finished flow. */
static int phone_old_code(struct world *w, struct pam_run *run)
{
	char *url = NULL, state[4096];
	int r = phone_to_callback(w, run->user_code, "p9", &url);

	if (r != 0)
		return r;
	url_param(url, "state", state, sizeof(state));
	run->phone_status = callback(w, saved_code, state);
	free(url);
	return 0;
}

/* ---- the ID token: signature and header ---- */

static void test_id_token_bad_signature_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_bad_signature", PAM_AUTH_ERR, "ID token rejected: signature");
}

static void test_id_token_alg_none_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_alg_none", PAM_AUTH_ERR, "ID token rejected: alg");
}

static void test_id_token_hs256_keyed_with_public_pem_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_hs256_public_pem", PAM_AUTH_ERR, "ID token rejected: alg");
}

static void test_id_token_hs256_keyed_with_public_modulus_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_hs256_public_n", PAM_AUTH_ERR, "ID token rejected: alg");
}

/* ---- the ID token: claims ---- */

static void test_id_token_issuer_mismatch_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_wrong_iss", PAM_AUTH_ERR, "ID token rejected: iss");
}

static void test_id_token_audience_missing_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_no_aud", PAM_AUTH_ERR, "ID token rejected: aud");
}

static void test_id_token_audience_wrong_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_wrong_aud", PAM_AUTH_ERR, "ID token rejected: aud");
}

static void test_id_token_several_audiences_without_azp_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_auds_no_azp", PAM_AUTH_ERR, "ID token rejected: azp");
}

static void test_id_token_several_audiences_with_wrong_azp_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_auds_wrong_azp", PAM_AUTH_ERR, "ID token rejected: azp");
}

static void test_id_token_expired_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_expired", PAM_AUTH_ERR, "ID token rejected: exp");
}

static void test_id_token_iat_in_the_future_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_iat_future", PAM_AUTH_ERR, "ID token rejected: iat");
}

static void test_id_token_nonce_missing_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_no_nonce", PAM_AUTH_ERR, "ID token rejected: nonce");
}

static void test_id_token_nonce_wrong_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_wrong_nonce", PAM_AUTH_ERR, "ID token rejected: nonce");
}

static void test_id_token_vot_not_among_requested_vtr_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_wrong_vot", PAM_AUTH_ERR, "ID token rejected: vot");
}

static void test_userinfo_sub_different_from_id_token_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "userinfo_wrong_sub", PAM_AUTH_ERR, "userinfo sub mismatch");
}

/* ---- keys: kid ---- */

/* OpenID RP conformance (rp-id_token-kid-absent-single-jwks): with one key there is no doubt. */
static void test_id_token_without_kid_and_one_key_is_accepted(void **state)
{
	struct world *w = tok();
	struct pam_run run = {.service = "nl-long", .user = "clinician", .as_user = "p9"};
	long jwks = stat_of(w, "jwks");
	(void)state;

	set_fault(w, "id_token_no_kid");
	assert_int_equal(signin(w, &run), PAM_SUCCESS);
	assert_int_equal(stat_of(w, "jwks"), jwks); /* no refetch was needed */
	set_fault(w, "none");
	assert_honest_signin(w);
}

static void test_id_token_without_kid_and_several_keys_is_refused(void **state)
{
	struct world *w = tok();
	(void)state;

	restart_daemon(w);
	set_fault(w, "jwks_second_key");
	flush_caches(w); /* the daemon learns the two-key set at the next sign-in */
	assert_fault_refused(w, "id_token_no_kid", PAM_AUTH_ERR, "ID token rejected: kid");
}

static void test_id_token_unknown_kid_refetches_jwks_once_then_is_refused(void **state)
{
	struct world *w = tok();
	struct pam_run again = {.service = "nl-long", .user = "clinician", .as_user = "p9"};
	long jwks, mark;
	(void)state;

	restart_daemon(w);
	jwks = stat_of(w, "jwks");
	mark = log_mark(w);
	set_fault(w, "id_token_unknown_kid");
	{
		struct pam_run run = {.service = "nl-long", .user = "clinician", .as_user = "p9"};
		assert_int_equal(signin(w, &run), PAM_AUTH_ERR);
		assert_int_equal(run.phone_status, 502);
	}
	assert_one_log_line(w, mark, "ID token rejected: kid");
	assert_int_equal(stat_of(w, "jwks"), jwks + 1);
	/* A second unknown kid within the minute: refused without another fetch. */
	assert_int_equal(signin(w, &again), PAM_AUTH_ERR);
	assert_int_equal(stat_of(w, "jwks"), jwks + 1);
	set_fault(w, "none");
	assert_honest_signin(w);
}

static void test_signing_key_rotated_new_kid_is_accepted_after_one_refetch(void **state)
{
	struct world *w = tok();
	struct pam_run run = {.service = "nl-long", .user = "clinician", .as_user = "p9"};
	long jwks;
	(void)state;

	restart_daemon(w);
	jwks = stat_of(w, "jwks");
	set_fault(w, "rotate_key");
	assert_int_equal(signin(w, &run), PAM_SUCCESS);
	assert_int_equal(stat_of(w, "jwks"), jwks + 1);
	assert_honest_signin(w);
	assert_int_equal(stat_of(w, "jwks"), jwks + 1); /* the new key is cached now */
}

/* ---- the callback ---- */

static void test_callback_with_wrong_state_is_refused(void **state)
{
	struct world *w = tok();
	struct pam_run run = {.service = "nl-login2", .user = "clinician", .phone = phone_wrong_state};
	long token = stat_of(w, "token"), mark = log_mark(w);
	(void)state;

	/* The flow never finishes: the PAM timeout (2 s) ends it. */
	assert_int_equal(signin(w, &run), PAM_AUTH_ERR);
	assert_int_equal(run.phone_rc, 0);
	assert_int_equal(run.phone_status, 400);
	assert_int_equal(stat_of(w, "token"), token); /* the code never went to NHS login */
	assert_one_log_line(w, mark, "callback with an unknown or used state");
	assert_honest_signin(w);
}

static void test_callback_with_replayed_state_is_refused(void **state)
{
	struct world *w = tok();
	struct pam_run first = {.service = "nl-long", .user = "clinician", .phone = phone_saving};
	struct pam_run second = {.service = "nl-login2", .user = "clinician", .phone = phone_old_state};
	long token, mark;
	(void)state;

	assert_int_equal(signin(w, &first), PAM_SUCCESS);
	assert_int_equal(first.phone_status, 200);
	token = stat_of(w, "token");
	mark = log_mark(w);
	/* The second flow's code with the first, finished flow's state. */
	assert_int_equal(signin(w, &second), PAM_AUTH_ERR);
	assert_int_equal(second.phone_rc, 0);
	assert_int_equal(second.phone_status, 400);
	assert_int_equal(stat_of(w, "token"), token);
	assert_one_log_line(w, mark, "callback with an unknown or used state");
	assert_honest_signin(w);
}

/* The phone replays the whole callback URL (code and state) after the sign-in finished: refused,
 * the code never reaches NHS login again, and the flow keeps its outcome. Driven over the socket
 * so that the outcome can be read after the replay. */
static void test_replayed_callback_is_refused_and_keeps_the_outcome(void **state)
{
	struct world *w = tok();
	json_t *start, *out;
	char *url = NULL, line[512];
	long token, mark;
	int fd = daemon_connect(w);
	(void)state;

	start = daemon_call_on(fd, "{\"op\":\"start\",\"user\":\"clinician\",\"service\":\"hostile\"}");
	assert_string_equal(nl_json_str(start, "status"), "pending");
	assert_int_equal(phone_to_callback(w, nl_json_str(start, "user_code"), "p9", &url), 0);
	token = stat_of(w, "token");
	assert_int_equal(get(url), 200);
	assert_int_equal(stat_of(w, "token"), token + 1);
	mark = log_mark(w);
	assert_int_equal(get(url), 400);
	assert_int_equal(stat_of(w, "token"), token + 1);
	assert_one_log_line(w, mark, "callback with an unknown or used state");
	snprintf(line, sizeof(line), "{\"op\":\"wait\",\"device_code\":\"%s\",\"timeout\":5}",
	         nl_json_str(start, "device_code"));
	out = daemon_call_on(fd, line);
	assert_string_equal(nl_json_str(out, "status"), "approved");
	assert_string_equal(nl_json_str(out, "user"), "clinician");
	json_decref(out);
	json_decref(start);
	close(fd);
	free(url);
	assert_honest_signin(w);
}

/* A used code brought back inside a new flow's callback: NHS login refuses it (invalid_grant) and
 * the new flow is denied. */
static void test_code_replayed_in_a_new_flow_is_refused(void **state)
{
	struct world *w = tok();
	struct pam_run first = {.service = "nl-long", .user = "clinician", .phone = phone_saving};
	struct pam_run second = {.service = "nl-long", .user = "clinician", .phone = phone_old_code};
	long mark;
	(void)state;

	assert_int_equal(signin(w, &first), PAM_SUCCESS);
	mark = log_mark(w);
	assert_int_equal(signin(w, &second), PAM_AUTH_ERR);
	assert_int_equal(second.phone_rc, 0);
	assert_int_equal(second.phone_status, 403);
	assert_one_log_line(w, mark, "token endpoint refused the code: invalid_grant");
	assert_honest_signin(w);
}

/* ---- provider trouble: unavailable, so that a break-glass login may follow ---- */

static void test_token_response_without_id_token_is_unavailable(void **state)
{
	(void)state;
	assert_fault_refused(net(), "token_no_id_token", PAM_AUTHINFO_UNAVAIL,
	                     "token response has no usable id_token");
}

static void test_token_response_200_not_json_is_unavailable(void **state)
{
	(void)state;
	assert_fault_refused(net(), "token_not_json", PAM_AUTHINFO_UNAVAIL,
	                     "token endpoint: response is not a JSON object");
}

static void test_token_response_500_is_unavailable(void **state)
{
	(void)state;
	assert_fault_refused(net(), "token_status_500", PAM_AUTHINFO_UNAVAIL, "token endpoint: HTTP 500");
}

static void test_token_response_of_10_mb_is_unavailable(void **state)
{
	(void)state;
	assert_fault_refused(net(), "token_huge", PAM_AUTHINFO_UNAVAIL,
	                     "token endpoint: POST *: response body over 65536 bytes");
}

static void test_token_response_that_never_ends_is_cut_by_http_timeout(void **state)
{
	struct world *w = net();
	int64_t t0 = nl_mono_ms();
	(void)state;

	/* http_timeout = 2: the callback gives up after 2 s; the PAM timeout (30 s) is far off. */
	assert_fault_refused(w, "token_never_ends", PAM_AUTHINFO_UNAVAIL,
	                     "token endpoint: POST *: timed out after 2000 ms");
	assert_true(nl_mono_ms() - t0 < 20000);
}

static void test_token_redirect_is_not_followed(void **state)
{
	struct world *w = net();
	long token = stat_of(w, "token");
	(void)state;

	assert_fault_refused(w, "token_redirect", PAM_AUTHINFO_UNAVAIL,
	                     "token endpoint: POST *: redirect refused");
	/* the faulted exchange and the honest one: no request went to the Location */
	assert_int_equal(stat_of(w, "token"), token + 2);
}

static void test_jwks_of_10_mb_on_a_cold_cache_is_unavailable(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(net(), "jwks_huge",
	                              "unavailable: jwks: GET *: response body over 262144 bytes");
}

static void test_discovery_of_10_mb_on_a_cold_cache_is_unavailable(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(net(), "discovery_huge",
	                              "unavailable: discovery: GET *: response body over 262144 bytes");
}

static void test_provider_500_on_a_cold_cache_is_unavailable(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(net(), "status_500", "unavailable: discovery: HTTP 500");
}

/* ---- spec clauses (issue 10): the ID token ---- */

/* RFC 7519 4.1.5: not before nbf (beyond the 60 s skew). */
static void test_id_token_nbf_in_the_future_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_nbf_future", PAM_AUTH_ERR, "ID token rejected: nbf");
}

/* OIDC Core 3.1.3.7 (3): an audience we do not trust, even with azp naming us. */
static void test_id_token_with_an_untrusted_extra_audience_is_refused(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "id_token_auds_extra_azp", PAM_AUTH_ERR, "ID token rejected: aud");
}

/* ---- spec clauses: the provider's keys (RFC 7517 4-5, RFC 7518 6.2-6.3, RFC 8017 3.1) ---- */

/* A JWKS whose only key breaks a rule: left out, so the set is refused and the sign-in stops
 * before a code is shown (a cold cache makes the daemon fetch it). */
static void test_jwks_key_without_kty_is_refused(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(net(), "jwks_no_kty",
	                              "unavailable: jwks refused: *key 1: kty is missing");
}

static void test_jwks_key_for_encryption_is_not_used_to_verify(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(net(), "jwks_use_enc",
	                              "unavailable: jwks refused: no usable signing key");
}

static void test_jwks_key_whose_key_ops_lack_verify_is_not_used(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(net(), "jwks_key_ops_sign_only",
	                              "unavailable: jwks refused: no usable signing key");
}

static void test_jwks_key_ops_with_a_repeated_value_is_refused(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(net(), "jwks_key_ops_repeated",
	                              "unavailable: jwks refused: *key 1: key_ops repeats a value");
}

static void test_jwks_rsa_n_with_a_leading_zero_octet_is_refused(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(net(), "jwks_n_leading_zero",
	                              "unavailable: jwks refused: *key 1: n has a leading zero octet");
}

static void test_jwks_rsa_e_with_a_leading_zero_octet_is_refused(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(net(), "jwks_e_leading_zero",
	                              "unavailable: jwks refused: *key 1: e has a leading zero octet");
}

static void test_jwks_rsa_n_with_base64_padding_is_refused(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(
	    net(), "jwks_n_padded", "unavailable: jwks refused: *key 1: a number is not canonical base64url");
}

static void test_jwks_rsa_even_modulus_is_refused(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(net(), "jwks_n_even", "unavailable: jwks refused: *key 1: n is even");
}

static void test_jwks_rsa_even_exponent_is_refused(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(
	    net(), "jwks_e_even", "unavailable: jwks refused: *key 1: e is not an odd number of at least 3");
}

static void test_jwks_rsa_exponent_of_one_is_refused(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(
	    net(), "jwks_e_one", "unavailable: jwks refused: *key 1: e is not an odd number of at least 3");
}

/* RFC 7518 3.3: 2048 bits or more. A 2047-bit modulus fills 256 octets like a 2048-bit one. */
static void test_jwks_rsa_modulus_of_2047_bits_is_refused(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(net(), "jwks_rsa_2047",
	                              "unavailable: jwks refused: *key 1: n is 2047 bits");
}

static void test_jwks_with_the_providers_private_key_in_it_is_refused(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(net(), "jwks_private_members",
	                              "unavailable: jwks refused: key 1 carries private key members");
}

/* A JWKS that loads, but whose key cannot verify this token: refused under rule kid after the one
 * refetch (a fresh daemon, so that the refetch allowance is there), and the caches are flushed
 * again before the honest sign-in. */
static void assert_key_fault_refused(struct world *w, const char *fault)
{
	struct pam_run run = {.service = "nl-long", .user = "clinician", .as_user = "p9"};
	long mark, token = stat_of(w, "token");

	restart_daemon(w);
	set_fault(w, fault);
	flush_caches(w);
	mark = log_mark(w);
	assert_int_equal(signin(w, &run), PAM_AUTH_ERR);
	assert_int_equal(run.phone_status, 502);
	assert_int_equal(stat_of(w, "token"), token + 1);
	assert_one_log_line(w, mark, "ID token rejected: kid");
	set_fault(w, "none");
	flush_caches(w);
	assert_honest_signin(w);
}

/* RFC 7517 4.4: the key's alg (RS256) is not the token's (RS512). */
static void test_jwks_key_whose_alg_is_not_the_tokens_is_not_used(void **state)
{
	(void)state;
	assert_key_fault_refused(tok(), "jwks_alg_mismatch");
}

/* RFC 7517 4.5: two RSA keys under one kid - never a guess between them. */
static void test_jwks_two_keys_with_the_signing_kid_are_never_chosen_between(void **state)
{
	(void)state;
	assert_key_fault_refused(tok(), "jwks_duplicate_kid");
}

/* RFC 7517 5: a broken extra key is ignored (one warning naming it), the signing key serves. */
static void assert_extra_key_ignored(struct world *w, const char *fault, const char *needle)
{
	struct pam_run run = {.service = "nl-long", .user = "clinician", .as_user = "p9"};
	long mark = log_mark(w);

	set_fault(w, fault);
	flush_caches(w);
	assert_int_equal(signin(w, &run), PAM_SUCCESS);
	assert_one_log_line(w, mark, needle);
	set_fault(w, "none");
	flush_caches(w);
	assert_honest_signin(w);
}

static void test_jwks_ec_key_with_a_short_x_is_ignored(void **state)
{
	(void)state;
	assert_extra_key_ignored(tok(), "jwks_ec_x_short",
	                         "JWKS from *1 key(s) ignored; key 2: x is 31 octets");
}

static void test_jwks_ec_key_without_y_is_ignored(void **state)
{
	(void)state;
	assert_extra_key_ignored(tok(), "jwks_ec_no_y", "JWKS from *1 key(s) ignored; key 2: y is missing");
}

static void test_jwks_ec_key_off_the_curve_is_ignored(void **state)
{
	(void)state;
	assert_extra_key_ignored(tok(), "jwks_ec_off_curve",
	                         "JWKS from *1 key(s) ignored; key 2: (x, y) is not a point of P-256");
}

/* ---- spec clauses: the token response (RFC 6749 5.1, 5.2, 7.1; OIDC Core 3.1.3.3) ---- */

static void test_token_response_without_access_token_is_unavailable(void **state)
{
	(void)state;
	assert_fault_refused(net(), "token_no_access_token", PAM_AUTHINFO_UNAVAIL,
	                     "token response has no access_token");
}

static void test_token_response_without_token_type_is_unavailable(void **state)
{
	(void)state;
	assert_fault_refused(net(), "token_no_token_type", PAM_AUTHINFO_UNAVAIL,
	                     "token response has no token_type");
}

static void test_token_response_with_token_type_mac_is_unavailable(void **state)
{
	(void)state;
	assert_fault_refused(net(), "token_type_mac", PAM_AUTHINFO_UNAVAIL,
	                     "token response has a token_type other than Bearer");
}

/* "bearer": token_type is compared without regard to case. */
static void test_token_response_with_token_type_in_lower_case_is_accepted(void **state)
{
	struct world *w = net();
	struct pam_run run = {.service = "nl-long", .user = "clinician", .as_user = "p9"};
	(void)state;

	set_fault(w, "token_type_lowercase");
	assert_int_equal(signin(w, &run), PAM_SUCCESS);
	set_fault(w, "none");
}

static void test_token_response_with_negative_expires_in_is_unavailable(void **state)
{
	(void)state;
	assert_fault_refused(net(), "token_expires_in_negative", PAM_AUTHINFO_UNAVAIL,
	                     "token response has an expires_in that is not a non-negative integer");
}

static void test_token_response_with_expires_in_as_a_string_is_unavailable(void **state)
{
	(void)state;
	assert_fault_refused(net(), "token_expires_in_string", PAM_AUTHINFO_UNAVAIL,
	                     "token response has an expires_in that is not a non-negative integer");
}

static void test_token_response_as_text_plain_is_unavailable(void **state)
{
	(void)state;
	assert_fault_refused(net(), "token_content_type_text", PAM_AUTHINFO_UNAVAIL,
	                     "token endpoint: Content-Type is not application/json");
}

static void test_token_response_that_is_a_json_array_is_unavailable(void **state)
{
	(void)state;
	assert_fault_refused(net(), "token_json_array", PAM_AUTHINFO_UNAVAIL,
	                     "token endpoint: response is not a JSON object");
}

/* RFC 6749 5.2: an error that is not an error code is not repeated into the log. */
static void test_token_error_with_markup_and_an_escape_is_logged_without_them(void **state)
{
	struct world *w = net();
	long mark = log_mark(w);
	(void)state;

	assert_fault_refused(w, "token_error_unsafe", PAM_AUTHINFO_UNAVAIL, "token endpoint: HTTP 400)");
	assert_int_equal(log_count(w, mark, "<script"), 0);
	assert_int_equal(log_count(w, mark, "\x1b"), 0);
}

/* OIDC Core 5.3.2: an unsigned userinfo answer is application/json. */
static void test_userinfo_answer_as_application_jwt_is_unavailable(void **state)
{
	(void)state;
	assert_fault_refused(tok(), "userinfo_content_type_jwt", PAM_AUTHINFO_UNAVAIL,
	                     "userinfo: Content-Type is not application/json");
}

/* RFC 6749 3.2: the token endpoint URI "MUST NOT include a fragment component". */
static void test_discovery_endpoint_with_a_fragment_is_refused(void **state)
{
	(void)state;
	assert_cold_cache_unavailable(net(), "discovery_fragment",
	                              "unavailable: discovery refused: token_endpoint has a fragment");
}

/* ---- spec clauses: the callback (RFC 6749 3.1, 4.1.2, 4.1.2.1; RFC 9207) ---- */

/* The provider's redirect carries fault: the flow ends with want, the phone sees phone_status,
 * one log line names needle, and the code never reaches the token endpoint. */
static void assert_callback_refused(const char *fault, int want, long phone_status, const char *needle)
{
	struct world *w = tok();
	struct pam_run run = {.service = "nl-long", .user = "clinician", .as_user = "p9"};
	long token = stat_of(w, "token"), mark = log_mark(w);

	set_fault(w, fault);
	assert_int_equal(signin(w, &run), want);
	assert_int_equal(run.phone_rc, 0);
	assert_int_equal(run.phone_status, phone_status);
	assert_int_equal(stat_of(w, "token"), token);
	assert_one_log_line(w, mark, needle);
	set_fault(w, "none");
	assert_honest_signin(w);
}

static void test_callback_with_an_iss_that_is_not_the_issuer_is_refused(void **state)
{
	(void)state;
	assert_callback_refused("authorize_iss_wrong", PAM_AUTH_ERR, 502,
	                        "denied reason=invalid_token *callback iss is not the issuer (RFC 9207)");
}

static void test_callback_with_the_issuers_iss_is_accepted(void **state)
{
	struct world *w = tok();
	struct pam_run run = {.service = "nl-long", .user = "clinician", .as_user = "p9"};
	(void)state;

	set_fault(w, "authorize_iss_right");
	assert_int_equal(signin(w, &run), PAM_SUCCESS);
	set_fault(w, "none");
}

/* RFC 9207 2.4: discovery says iss is sent; a response without it is refused, one with it is not. */
static void test_callback_without_the_iss_that_discovery_promises_is_refused(void **state)
{
	struct world *w = tok();
	struct pam_run run = {.service = "nl-long", .user = "clinician", .as_user = "p9"};
	struct pam_run with_iss = {.service = "nl-long", .user = "clinician", .as_user = "p9"};
	long token = stat_of(w, "token"), mark = log_mark(w);
	(void)state;

	set_fault(w, "discovery_iss_param");
	flush_caches(w);
	assert_int_equal(signin(w, &run), PAM_AUTH_ERR);
	assert_int_equal(run.phone_status, 502);
	assert_int_equal(stat_of(w, "token"), token);
	assert_one_log_line(w, mark,
	                    "denied reason=invalid_token *callback without the iss that discovery promises");
	set_fault(w, "authorize_iss_right");
	assert_int_equal(signin(w, &with_iss), PAM_SUCCESS);
	set_fault(w, "none");
	flush_caches(w);
	assert_honest_signin(w);
}

static void test_callback_with_code_twice_is_refused(void **state)
{
	(void)state;
	assert_callback_refused("authorize_code_twice", PAM_AUTH_ERR, 502,
	                        "denied reason=invalid_token *callback repeats code (RFC 6749 3.1)");
}

/* A repeated state names no flow for sure: 400, the flow is left to its PAM timeout (2 s). */
static void test_callback_with_state_twice_is_refused(void **state)
{
	struct world *w = tok();
	struct pam_run run = {.service = "nl-login2", .user = "clinician", .as_user = "p9"};
	long token = stat_of(w, "token"), mark = log_mark(w);
	(void)state;

	set_fault(w, "authorize_state_twice");
	assert_int_equal(signin(w, &run), PAM_AUTH_ERR);
	assert_int_equal(run.phone_rc, 0);
	assert_int_equal(run.phone_status, 400);
	assert_int_equal(stat_of(w, "token"), token);
	assert_one_log_line(w, mark, "callback repeats state (RFC 6749 3.1)");
	set_fault(w, "none");
	assert_honest_signin(w);
}

/* RFC 6749 4.1.2: code is REQUIRED; without it and without error the provider answered nonsense. */
static void test_callback_without_code_is_unavailable(void **state)
{
	(void)state;
	assert_callback_refused("authorize_no_code", PAM_AUTHINFO_UNAVAIL, 502,
	                        "denied reason=unavailable *callback without a usable code");
}

/* RFC 6749 4.1.2.1: an error response is a denial; its error word is logged only if it is one. */
static void test_callback_error_with_markup_and_an_escape_is_a_denial_logged_safely(void **state)
{
	struct world *w = tok();
	long mark = log_mark(w);
	(void)state;

	assert_callback_refused("authorize_error_unsafe", PAM_AUTH_ERR, 403,
	                        "denied reason=denied *NHS login answered error=other");
	assert_int_equal(log_count(w, mark, "<script"), 0);
	assert_int_equal(log_count(w, mark, "\x1b"), 0);
}

int main(int argc, char **argv)
{
	harness_under_pam_wrapper();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_id_token_bad_signature_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_alg_none_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_hs256_keyed_with_public_pem_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_hs256_keyed_with_public_modulus_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_issuer_mismatch_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_audience_missing_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_audience_wrong_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_several_audiences_without_azp_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_several_audiences_with_wrong_azp_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_expired_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_iat_in_the_future_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_nonce_missing_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_nonce_wrong_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_vot_not_among_requested_vtr_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_userinfo_sub_different_from_id_token_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_without_kid_and_one_key_is_accepted, reset_faults),
	    cmocka_unit_test_setup(test_id_token_without_kid_and_several_keys_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_unknown_kid_refetches_jwks_once_then_is_refused,
	                           reset_faults),
	    cmocka_unit_test_setup(test_signing_key_rotated_new_kid_is_accepted_after_one_refetch,
	                           reset_faults),
	    cmocka_unit_test_setup(test_callback_with_wrong_state_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_callback_with_replayed_state_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_replayed_callback_is_refused_and_keeps_the_outcome, reset_faults),
	    cmocka_unit_test_setup(test_code_replayed_in_a_new_flow_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_token_response_without_id_token_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_token_response_200_not_json_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_token_response_500_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_token_response_of_10_mb_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_token_response_that_never_ends_is_cut_by_http_timeout, reset_faults),
	    cmocka_unit_test_setup(test_token_redirect_is_not_followed, reset_faults),
	    cmocka_unit_test_setup(test_jwks_of_10_mb_on_a_cold_cache_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_discovery_of_10_mb_on_a_cold_cache_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_provider_500_on_a_cold_cache_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_id_token_nbf_in_the_future_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_id_token_with_an_untrusted_extra_audience_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_jwks_key_without_kty_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_jwks_key_for_encryption_is_not_used_to_verify, reset_faults),
	    cmocka_unit_test_setup(test_jwks_key_whose_key_ops_lack_verify_is_not_used, reset_faults),
	    cmocka_unit_test_setup(test_jwks_key_ops_with_a_repeated_value_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_jwks_rsa_n_with_a_leading_zero_octet_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_jwks_rsa_e_with_a_leading_zero_octet_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_jwks_rsa_n_with_base64_padding_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_jwks_rsa_even_modulus_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_jwks_rsa_even_exponent_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_jwks_rsa_exponent_of_one_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_jwks_rsa_modulus_of_2047_bits_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_jwks_with_the_providers_private_key_in_it_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_jwks_key_whose_alg_is_not_the_tokens_is_not_used, reset_faults),
	    cmocka_unit_test_setup(test_jwks_two_keys_with_the_signing_kid_are_never_chosen_between,
	                           reset_faults),
	    cmocka_unit_test_setup(test_jwks_ec_key_with_a_short_x_is_ignored, reset_faults),
	    cmocka_unit_test_setup(test_jwks_ec_key_without_y_is_ignored, reset_faults),
	    cmocka_unit_test_setup(test_jwks_ec_key_off_the_curve_is_ignored, reset_faults),
	    cmocka_unit_test_setup(test_token_response_without_access_token_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_token_response_without_token_type_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_token_response_with_token_type_mac_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_token_response_with_token_type_in_lower_case_is_accepted,
	                           reset_faults),
	    cmocka_unit_test_setup(test_token_response_with_negative_expires_in_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_token_response_with_expires_in_as_a_string_is_unavailable,
	                           reset_faults),
	    cmocka_unit_test_setup(test_token_response_as_text_plain_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_token_response_that_is_a_json_array_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_token_error_with_markup_and_an_escape_is_logged_without_them,
	                           reset_faults),
	    cmocka_unit_test_setup(test_userinfo_answer_as_application_jwt_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_discovery_endpoint_with_a_fragment_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_callback_with_an_iss_that_is_not_the_issuer_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_callback_with_the_issuers_iss_is_accepted, reset_faults),
	    cmocka_unit_test_setup(test_callback_without_the_iss_that_discovery_promises_is_refused,
	                           reset_faults),
	    cmocka_unit_test_setup(test_callback_with_code_twice_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_callback_with_state_twice_is_refused, reset_faults),
	    cmocka_unit_test_setup(test_callback_without_code_is_unavailable, reset_faults),
	    cmocka_unit_test_setup(test_callback_error_with_markup_and_an_escape_is_a_denial_logged_safely,
	                           reset_faults),
	};
	alarm(480); /* the whole program times out on its own */
	return cmocka_run_group_tests_name("hostile", tests, NULL, stop_worlds);
}
