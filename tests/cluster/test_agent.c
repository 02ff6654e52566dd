/* The agent role end to end (doc/bridge.md): the real pam_nhslogin under pam_wrapper, a real
 * nhslogind with role = agent, the real nhslogin-mock as NHS login, and a stand-in bridge
 * (fakebridge.c) that checks every signed request and answers honestly or tells a lie. The agent
 * must approve only the token of its own flow, signed by NHS login, mapped here to the account
 * asked for; keep polling through a bridge that fails for a moment; and fall back to
 * PAM_AUTHINFO_UNAVAIL when the bridge is not there. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <security/pam_appl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fakebridge.h"
#include "faultutil.h"
#include "harness.h"
#include "hostauth.h"
#include "nl_jose.h"
#include "nl_json.h"
#include "nl_time.h"
#include "ports.h"

#define TEST_TIMEOUT_S 900

struct afx {
	char dir[64];
	char hosts[96];
	char key[160];
	struct fakebridge *fb;
	struct world *w;
	unsigned number; /* what the phone shows (number matching), 0: none */
};

static struct afx *cur; /* the phone of pam_run needs it */

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fputs(text, f);
	return fclose(f) == 0 ? 0 : -1;
}

/* The workstation's key, and its enrolment as ws1 in the bridge's hosts directory. */
static int enrol_ws1(struct afx *x)
{
	char keys[128], pemfile[160], err[256] = "";
	cjose_jwk_t *k = NULL;
	char *pem;
	bool created;

	snprintf(x->dir, sizeof(x->dir), "/tmp/nl-agent.XXXXXX");
	if (mkdtemp(x->dir) == NULL || chmod(x->dir, 0755) != 0)
		return -1;
	snprintf(x->hosts, sizeof(x->hosts), "%s/hosts", x->dir);
	snprintf(keys, sizeof(keys), "%s/keys", x->dir);
	snprintf(x->key, sizeof(x->key), "%s/host.key", keys);
	if (mkdir(x->hosts, 0755) != 0 || mkdir(keys, 0700) != 0 ||
	    nl_hostauth_key_create(x->key, false, &created, err, sizeof(err)) != 0 ||
	    nl_hostauth_key_load(x->key, &k, err, sizeof(err)) != 0) {
		fprintf(stderr, "# host key: %s\n", err);
		return -1;
	}
	pem = nl_jwk_public_pem(k);
	cjose_jwk_release(k);
	snprintf(pemfile, sizeof(pemfile), "%s/ws1.pem", x->hosts);
	if (pem == NULL || write_text(pemfile, pem) != 0) {
		free(pem);
		return -1;
	}
	free(pem);
	return 0;
}

/* An agent world: the fake bridge, then the mock and nhslogind (role = agent) pointing at it.
 * bridge_url NULL: the fake bridge's. extra: more main-file text ([policy] ...). */
static struct afx *agent_world(const char *bridge_url, const char *extra)
{
	struct afx *x = calloc(1, sizeof(*x));
	char main_extra[1024], keyfile[PATH_MAX + 32], redirect[200];
	struct world_opts o = {.daemon_extra = "role = agent", .mock_args = {"--auto-approve", "p9", NULL}};

	assert_non_null(x);
	assert_int_equal(enrol_ws1(x), 0);
	assert_non_null(x->fb = fakebridge_start(x->hosts));
	snprintf(main_extra, sizeof(main_extra), "[agent]\nbridge_url = %s\nname = ws1\nhost_key = %s\n%s",
	         bridge_url != NULL ? bridge_url : fakebridge_url(x->fb), x->key, extra != NULL ? extra : "");
	o.main_extra = main_extra;
	assert_int_equal(world_start(&o, &x->w), 0);
	assert_int_equal(world_activate(x->w), 0);
	snprintf(keyfile, sizeof(keyfile), "%s/client.key.pem", x->w->dir);
	snprintf(redirect, sizeof(redirect), "%s/callback", x->w->bridge);
	assert_int_equal(
	    fakebridge_client(x->fb, mockproc_issuer(x->w->mock), "nhslogin-test", keyfile, redirect, x->dir),
	    0);
	cur = x;
	return x;
}

static void agent_world_stop(struct afx *x)
{
	char cmd[128];

	if (x == NULL)
		return;
	world_stop(x->w);
	fakebridge_stop(x->fb);
	if (strncmp(x->dir, "/tmp/nl-agent.", 14) == 0 && getenv("NL_KEEP_TEST_DIR") == NULL) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", x->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "# could not remove %s\n", x->dir);
	}
	cur = NULL;
	free(x);
}

/* The phone, at the bridge: signs in at NHS login (the mock) and the bridge ends its flow. */
static int phone_at_bridge(struct world *w, struct pam_run *run)
{
	(void)w;
	run->phone_status = 200;
	run->phone_number = cur->number;
	return fakebridge_approve(cur->fb);
}

static int run_pam(struct afx *x, const char *service, const char *user, bool phone)
{
	struct pam_run run = {.service = service, .user = user};
	int rc;

	(void)x;
	if (phone)
		run.phone = phone_at_bridge;
	rc = pam_run_auth(x->w, &run);
	if (phone)
		assert_int_equal(run.phone_rc, 0);
	return rc;
}

/* The agent's log, for what it said (the flow's end is logged just after the module has it: wait
 * for it, 3 s at most). */
static bool daemon_log_now(const struct afx *x, const char *needle);
static bool daemon_log_has(const struct afx *x, const char *needle)
{
	for (int i = 0; i < 30; i++) {
		if (daemon_log_now(x, needle))
			return true;
		usleep(100 * 1000);
	}
	return false;
}

static bool daemon_log_now(const struct afx *x, const char *needle)
{
	char path[PATH_MAX + 32], buf[65536];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/daemon.log", x->w->dir);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

/* Does nhsloginctl status (root, over the agent's socket) print needle? */
static bool status_has(const struct afx *x, const char *needle)
{
	char cmd[PATH_MAX * 2], buf[8192];
	const char *top = getenv("NL_TOP_BUILDDIR");
	size_t n;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "env -u LD_PRELOAD %s/nhsloginctl --config %s status 2>&1",
	         top != NULL ? top : ".", x->w->conf);
	if ((p = popen(cmd, "r")) == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, p);
	pclose(p);
	buf[n] = '\0';
	if (strstr(buf, needle) == NULL)
		fprintf(stderr, "# status lacks %s:\n%s", needle, buf);
	return strstr(buf, needle) != NULL;
}

static void assert_requests_all_signed_once(const struct afx *x)
{
	struct fakebridge_stats st;

	fakebridge_stats(x->fb, &st);
	if (st.refused != 0)
		fprintf(stderr, "# refused: %s\n", st.last_refusal);
	assert_int_equal(st.refused, 0);
	assert_int_equal(st.replayed, 0);
	/* every request a fresh jti: as many distinct jtis as requests */
	assert_int_equal(st.jtis, st.starts + st.polls + st.deletes);
}

/* ---- the honest bridge ---- */

static void test_honest_bridge_signs_in_the_mapped_user(void **state)
{
	struct afx *x = agent_world(NULL, NULL);
	struct fakebridge_stats st;
	(void)state;

	assert_int_equal(run_pam(x, "nl-login", "clinician", true), PAM_SUCCESS);
	fakebridge_stats(x->fb, &st);
	assert_int_equal(st.starts, 1);
	assert_true(st.polls >= 1);
	assert_true(st.last_ttl > 0);
	assert_false(st.last_number_match);
	assert_requests_all_signed_once(x);
	/* never a token in the log */
	assert_false(daemon_log_now(x, "eyJ"));
	agent_world_stop(x);
}

/* A person takes 65 s at the phone: the agent's 25 s long-poll is asked again (twice at least). */
static void test_signin_at_a_persons_speed(void **state)
{
	struct afx *x = agent_world(NULL, NULL);
	struct pam_run run = {
	    .service = "nl-login", .user = "clinician", .phone = phone_at_bridge, .phone_after_ms = 65000};
	struct fakebridge_stats st;
	int64_t t0 = nl_mono_ms();
	(void)state;

	assert_int_equal(pam_run_auth(x->w, &run), PAM_SUCCESS);
	assert_int_equal(run.phone_rc, 0);
	assert_true(nl_mono_ms() - t0 >= 65000);
	fakebridge_stats(x->fb, &st);
	fprintf(stderr, "# %u polls in %lld ms\n", st.polls, (long long)(nl_mono_ms() - t0));
	assert_true(st.polls >= 3);
	assert_requests_all_signed_once(x);
	agent_world_stop(x);
}

/* The agent's config names no client key (nor redirect_uri): it needs neither. */
static void test_agent_without_client_key_signs_in(void **state)
{
	struct afx *x = agent_world(NULL, NULL);
	char path[PATH_MAX + 64], text[1024];
	(void)state;

	world_kill_daemon(x->w, SIGTERM);
	snprintf(path, sizeof(path), "%s/environments/local.conf", x->w->dir);
	snprintf(text, sizeof(text),
	         "issuer = %s\nclient_id = nhslogin-test\nscope = openid profile\n"
	         "vtr = [\"P9.Cp.Cd\",\"P9.Cp.Ck\",\"P9.Cm\"]\nallowed_algs = RS512\n",
	         mockproc_issuer(x->w->mock));
	assert_int_equal(write_text(path, text), 0);
	assert_int_equal(world_restart_daemon(x->w), 0);
	assert_int_equal(run_pam(x, "nl-login", "clinician", true), PAM_SUCCESS);
	agent_world_stop(x);
}

/* ---- a compromised bridge: each lie ends PAM_AUTH_ERR ---- */

/* The bridge tells the lie of mode for a sign-in of user: PAM_AUTH_ERR, and the agent's log line
 * of the flow's end says why (reason). */
static void lie(enum fb_mode mode, const char *user, const char *reason)
{
	struct afx *x = agent_world(NULL, NULL);
	char line[64];

	fakebridge_mode(x->fb, mode);
	assert_int_equal(run_pam(x, "nl-login", user, true), PAM_AUTH_ERR);
	snprintf(line, sizeof(line), "denied reason=%s user=%s", reason, user);
	assert_true(daemon_log_has(x, line));
	assert_requests_all_signed_once(x);
	agent_world_stop(x);
}

static void test_token_of_another_flow_is_refused(void **state)
{
	(void)state;
	lie(FB_OTHER_NONCE, "clinician", "invalid_token");
}

static void test_token_signed_by_the_bridge_under_nhs_logins_kid_is_refused(void **state)
{
	(void)state;
	lie(FB_OWN_KEY_NHS_KID, "clinician", "invalid_token");
}

static void test_token_signed_by_the_bridge_under_its_own_kid_is_refused(void **state)
{
	(void)state;
	lie(FB_OWN_KEY_OWN_KID, "clinician", "invalid_token");
}

static void test_token_with_altered_claims_is_refused(void **state)
{
	(void)state;
	lie(FB_ALTERED, "clinician", "invalid_token");
}

/* A real token of this very flow, but the person is someone else: p9 maps to clinician, not nurse. */
static void test_real_token_for_another_user_is_refused(void **state)
{
	(void)state;
	lie(FB_HONEST, "nurse", "mismatch");
}

static void test_approved_without_a_token_is_refused(void **state)
{
	(void)state;
	lie(FB_NO_TOKEN, "clinician", "invalid_token");
}

static void test_approved_with_garbage_is_refused(void **state)
{
	(void)state;
	lie(FB_GARBAGE, "clinician", "invalid_token");
}

/* The id_token of an earlier sign-in of the same person, handed over again. */
static void test_replayed_token_of_an_earlier_flow_is_refused(void **state)
{
	struct afx *x = agent_world(NULL, NULL);
	(void)state;

	assert_int_equal(run_pam(x, "nl-login", "clinician", true), PAM_SUCCESS);
	fakebridge_mode(x->fb, FB_REPLAY);
	assert_int_equal(run_pam(x, "nl-login", "clinician", true), PAM_AUTH_ERR);
	assert_true(daemon_log_has(x, "denied reason=invalid_token user=clinician"));
	assert_requests_all_signed_once(x);
	agent_world_stop(x);
}

/* Two id_token fields, an earlier flow's and this flow's own: which one a parser keeps must not
 * matter, the answer is refused whole. */
static void test_approved_with_two_tokens_is_refused(void **state)
{
	struct afx *x = agent_world(NULL, NULL);
	(void)state;

	assert_int_equal(run_pam(x, "nl-login", "clinician", true), PAM_SUCCESS);
	fakebridge_mode(x->fb, FB_TWO_TOKENS);
	assert_int_equal(run_pam(x, "nl-login", "clinician", true), PAM_AUTH_ERR);
	assert_true(daemon_log_has(x, "denied reason=invalid_token user=clinician"));
	assert_true(daemon_log_has(x, "given twice"));
	agent_world_stop(x);
}

/* ---- faults ---- */

static void test_bridge_down_at_start_is_authinfo_unavail(void **state)
{
	char dead[64];
	struct afx *x;
	int64_t t0;
	(void)state;

	snprintf(dead, sizeof(dead), "http://127.0.0.1:%d", test_free_port());
	x = agent_world(dead, NULL);
	t0 = nl_mono_ms();
	assert_int_equal(run_pam(x, "nl-login", "clinician", false), PAM_AUTHINFO_UNAVAIL);
	assert_true(nl_mono_ms() - t0 < 5000);
	agent_world_stop(x);
}

static void test_bridge_503_at_start_is_authinfo_unavail(void **state)
{
	struct afx *x = agent_world(NULL, NULL);
	struct fakebridge_stats st;
	(void)state;

	fakebridge_start_status(x->fb, 503);
	assert_int_equal(run_pam(x, "nl-login", "clinician", false), PAM_AUTHINFO_UNAVAIL);
	fakebridge_stats(x->fb, &st);
	assert_int_equal(st.starts, 1);
	/* nhsloginctl status names the bridge, the workstation and the error */
	assert_true(status_has(x, fakebridge_url(x->fb)));
	assert_true(status_has(x, "ws1"));
	assert_true(status_has(x, "NHS login keys:  fetched from the issuer"));
	assert_true(status_has(x, "status 503"));
	agent_world_stop(x);
}

/* The bridge's bound on pending flows (429 limit): the module says what it says for this computer's
 * own limit (PAM_AUTHINFO_UNAVAIL with "too many sign-ins are in progress", as local mode: a count
 * is capacity, not a verdict on the person), the start is not tried again, and the log says why. */
static void test_bridge_429_at_start_is_the_local_limit_and_not_retried(void **state)
{
	struct afx *x = agent_world(NULL, NULL);
	struct pam_run run = {.service = "nl-login", .user = "clinician"};
	struct fakebridge_stats st;
	bool limit_message = false, unavailable_message = false;
	(void)state;

	fakebridge_start_status(x->fb, 429);
	assert_int_equal(pam_run_auth(x->w, &run), PAM_AUTHINFO_UNAVAIL);
	for (int i = 0; i < run.n_error; i++) {
		limit_message = limit_message || strstr(run.errors[i], "too many sign-ins are in progress");
		unavailable_message = unavailable_message || strstr(run.errors[i], "is not available");
	}
	assert_true(limit_message);
	assert_false(unavailable_message);
	assert_int_equal(run.user_code[0], '\0'); /* no code shown */
	fakebridge_stats(x->fb, &st);
	assert_int_equal(st.starts, 1);
	assert_true(daemon_log_has(x, "refused the start (429)"));
	assert_true(status_has(x, "429"));
	agent_world_stop(x);
}

/* Long-polls dropped and answered 502 (an instance dying behind the balancer): asked again, and the
 * sign-in completes. */
static void test_polls_that_fail_for_a_moment_are_asked_again(void **state)
{
	struct afx *x = agent_world(NULL, NULL);
	struct fakebridge_stats st;
	(void)state;

	fakebridge_fail_polls(x->fb, 4);
	assert_int_equal(run_pam(x, "nl-login", "clinician", true), PAM_SUCCESS);
	fakebridge_stats(x->fb, &st);
	assert_true(st.polls >= 5);
	assert_true(daemon_log_has(x, "asking again"));
	assert_requests_all_signed_once(x);
	agent_world_stop(x);
}

/* The phone, instead: the bridge's operator revokes this workstation mid-flow. */
static int phone_revokes(struct world *w, struct pam_run *run)
{
	(void)w;
	usleep(300 * 1000);
	fakebridge_revoke(cur->fb, cur->hosts, "ws1");
	run->phone_status = 0;
	return 0;
}

/* A 401 while polling (the workstation's enrolment removed): unavailable, with a line that says
 * why. */
static void test_revoked_workstation_is_unavailable_and_says_so(void **state)
{
	struct afx *x = agent_world(NULL, NULL);
	struct pam_run run = {.service = "nl-login", .user = "clinician", .phone = phone_revokes};
	struct fakebridge_stats st;
	(void)state;

	assert_int_equal(pam_run_auth(x->w, &run), PAM_AUTHINFO_UNAVAIL);
	fakebridge_stats(x->fb, &st);
	assert_int_equal(st.refused, 1);
	assert_true(daemon_log_has(x, "refused this workstation's signature (401)"));
	assert_true(daemon_log_has(x, "nhsloginctl enroll"));
	agent_world_stop(x);
}

/* ---- number matching: the bridge's phone shows 42 ---- */

static void numbered(int offset, int want)
{
	struct afx *x = agent_world(NULL, "[policy]\nnumber_matching = always\n");
	struct pam_run run = {
	    .service = "nl-login", .user = "clinician", .phone = phone_at_bridge, .number_offset = offset};
	struct fakebridge_stats st;

	x->number = 42;
	fakebridge_number(x->fb, 42);
	assert_int_equal(pam_run_auth(x->w, &run), want);
	assert_int_equal(run.phone_rc, 0);
	assert_true(run.prompts >= 1);
	fakebridge_stats(x->fb, &st);
	assert_true(st.last_number_match);
	if (want != PAM_SUCCESS)
		assert_true(daemon_log_has(x, "reason=wrong_number"));
	agent_world_stop(x);
}

static void test_number_from_the_bridge_typed_right_signs_in(void **state)
{
	(void)state;
	numbered(0, PAM_SUCCESS);
}

static void test_number_from_the_bridge_typed_wrong_is_refused(void **state)
{
	(void)state;
	numbered(-1, PAM_AUTH_ERR);
}

/* ---- the person gives up; the workstation key ---- */

static void test_person_giving_up_cancels_at_the_bridge(void **state)
{
	struct afx *x = agent_world(NULL, NULL);
	struct fakebridge_stats st;
	int rc;
	(void)state;

	rc = run_pam(x, "nl-login2", "clinician", false);
	assert_int_not_equal(rc, PAM_SUCCESS);
	for (int i = 0; i < 50; i++) {
		fakebridge_stats(x->fb, &st);
		if (st.deletes > 0)
			break;
		usleep(100 * 1000);
	}
	assert_int_equal(st.deletes, 1);
	assert_requests_all_signed_once(x);
	agent_world_stop(x);
}

/* The bridge's DELETEs, once they have come (5 s at most) and a moment more for any extra one. */
static unsigned deletes_after_a_while(const struct afx *x)
{
	struct fakebridge_stats st;

	for (int i = 0; i < 50; i++) {
		fakebridge_stats(x->fb, &st);
		if (st.deletes > 0)
			break;
		usleep(100 * 1000);
	}
	usleep(300 * 1000);
	fakebridge_stats(x->fb, &st);
	return st.deletes;
}

/* The bridge makes a flow before this computer's own limits are asked (they need its answer). A
 * start they refuse must not leave that flow holding a place in the bridge's bounds on pending
 * flows: the agent cancels it there. Here max_flows_per_user (3) of one person is reached. */
static void test_start_refused_here_is_cancelled_at_the_bridge(void **state)
{
	struct afx *x = agent_world(NULL, NULL);
	struct fakebridge_stats st;
	int fd[4];
	json_t *m;
	(void)state;

	for (int i = 0; i < 4; i++) {
		assert_true((fd[i] = fu_connect(x->w->socket)) >= 0);
		assert_non_null(
		    m = fu_call(fd[i], "{\"op\":\"start\",\"user\":\"clinician\",\"service\":\"nl-login\"}",
		                10000));
		assert_string_equal(fu_str(m, i < 3 ? "status" : "error"), i < 3 ? "pending" : "limit");
		json_decref(m);
	}
	assert_int_equal(deletes_after_a_while(x), 1); /* the refused one's, and only it */
	fakebridge_stats(x->fb, &st);
	assert_int_equal(st.starts, 4);
	assert_requests_all_signed_once(x);
	for (int i = 0; i < 4; i++)
		close(fd[i]);
	agent_world_stop(x);
}

/* The asker (the module) is gone before the bridge answered the start: nobody will show its code,
 * so the agent cancels the flow at the bridge. */
static void test_start_whose_asker_left_is_cancelled_at_the_bridge(void **state)
{
	struct afx *x = agent_world(NULL, NULL);
	static const char line[] = "{\"op\":\"start\",\"user\":\"clinician\",\"service\":\"nl-login\"}\n";
	struct fakebridge_stats st;
	int fd;
	(void)state;

	fakebridge_start_delay(x->fb, 1500);
	assert_true((fd = fu_connect(x->w->socket)) >= 0);
	assert_int_equal(write(fd, line, sizeof(line) - 1), (ssize_t)(sizeof(line) - 1));
	usleep(300 * 1000); /* the start is at the bridge */
	close(fd);
	assert_int_equal(deletes_after_a_while(x), 1);
	fakebridge_stats(x->fb, &st);
	assert_int_equal(st.starts, 1);
	assert_requests_all_signed_once(x);
	agent_world_stop(x);
}

/* The phone, instead of signing in: the daemon is stopped while the agent's long-poll waits. */
static int64_t stop_ms = -1;
static int phone_stops_the_daemon(struct world *w, struct pam_run *run)
{
	int64_t t0;

	usleep(500 * 1000); /* the long-poll is under way */
	t0 = nl_mono_ms();
	world_kill_daemon(w, SIGTERM);
	stop_ms = nl_mono_ms() - t0;
	run->phone_status = 0;
	return 0;
}

/* A 25 s long-poll does not hold the daemon's stop: it is abandoned within about a second. */
static void test_stop_abandons_a_long_poll_at_once(void **state)
{
	struct afx *x = agent_world(NULL, NULL);
	struct pam_run run = {.service = "nl-login", .user = "clinician", .phone = phone_stops_the_daemon};
	struct fakebridge_stats st;
	int rc;
	(void)state;

	rc = pam_run_auth(x->w, &run);
	fakebridge_stats(x->fb, &st);
	fprintf(stderr, "# stopped in %lld ms (PAM %d)\n", (long long)stop_ms, rc);
	assert_int_not_equal(rc, PAM_SUCCESS);
	assert_true(st.polls >= 1);
	assert_true(stop_ms >= 0 && stop_ms < 1500);
	agent_world_stop(x);
}

static void test_agent_without_its_host_key_refuses_to_start(void **state)
{
	struct afx *x = agent_world(NULL, NULL);
	(void)state;

	world_kill_daemon(x->w, SIGTERM);
	assert_int_equal(unlink(x->key), 0);
	assert_int_not_equal(world_restart_daemon(x->w), 0);
	assert_true(daemon_log_has(x, x->key));
	assert_true(daemon_log_has(x, "nhsloginctl enroll"));
	agent_world_stop(x);
}

/* ---- a pinned JWKS file ([agent] jwks_file): NHS login is never asked for its keys ---- */

/* The mock's JWKS as it publishes it (new string). */
static char *mock_jwks(const struct afx *x)
{
	struct mockproc_resp resp = {0};
	char url[256], *text;

	snprintf(url, sizeof(url), "%s/.well-known/jwks.json", mockproc_issuer(x->w->mock));
	assert_int_equal(mockproc_fetch("GET", url, NULL, NULL, NULL, &resp), 0);
	assert_int_equal(resp.status, 200);
	assert_non_null(text = strdup(resp.body));
	mockproc_resp_free(&resp);
	return text;
}

static long mock_count(const struct afx *x, const char *endpoint)
{
	long v = -1;
	assert_int_equal(mockproc_stat(x->w->mock, endpoint, &v), 0);
	return v;
}

/* The requests for discovery and JWKS the mock has answered. */
struct fetches {
	long discovery, jwks;
};

static struct fetches mock_fetches(const struct afx *x)
{
	struct fetches f = {mock_count(x, "discovery"), mock_count(x, "jwks")};
	return f;
}

/* The agent restarted with [agent] jwks_file = x->dir/name holding text (mode), its disk cache of
 * discovery and JWKS gone, after the bridge has loaded NHS login's keys: from here on the mock's
 * counters of discovery and JWKS move only for the agent. *before gets them. The restart's result. */
static int pin_agent(struct afx *x, const char *name, const char *text, mode_t mode, struct fetches *before)
{
	static const char mark[] = "# pinned by the test\n";
	char path[PATH_MAX], conf[8192], *cut;
	size_t n;
	FILE *f;

	world_kill_daemon(x->w, SIGTERM);
	snprintf(path, sizeof(path), "%s/%s", x->dir, name);
	assert_int_equal(test_write_file(path, mode, text), 0);
	/* the main file, with the [agent] jwks_file of an earlier call replaced by this one */
	assert_non_null(f = fopen(x->w->conf, "r"));
	n = fread(conf, 1, sizeof(conf) - 1, f);
	fclose(f);
	conf[n] = '\0';
	if ((cut = strstr(conf, mark)) != NULL)
		*cut = '\0';
	snprintf(conf + strlen(conf), sizeof(conf) - strlen(conf), "%s[agent]\njwks_file = %s\n", mark, path);
	assert_int_equal(test_write_file(x->w->conf, 0644, conf), 0);
	snprintf(path, sizeof(path), "%s/cache/discovery.json", x->w->dir);
	(void)unlink(path);
	snprintf(path, sizeof(path), "%s/cache/jwks.json", x->w->dir);
	(void)unlink(path);
	assert_int_equal(fakebridge_warm(x->fb), 0);
	*before = mock_fetches(x);
	return world_restart_daemon(x->w);
}

static void assert_no_fetch_since(const struct afx *x, const struct fetches *before)
{
	struct fetches now = mock_fetches(x);

	if (now.discovery != before->discovery || now.jwks != before->jwks)
		fail_msg("the mock answered discovery %ld -> %ld, JWKS %ld -> %ld times", before->discovery,
		         now.discovery, before->jwks, now.jwks);
	assert_false(daemon_log_now(x, "refetching the JWKS"));
}

static void test_pinned_agent_signs_in_without_asking_nhs_login_for_keys(void **state)
{
	struct afx *x = agent_world(NULL, NULL);
	char *jwks = mock_jwks(x), path[PATH_MAX];
	struct fetches before;
	(void)state;

	assert_int_equal(pin_agent(x, "nhslogin.jwks", jwks, 0644, &before), 0);
	assert_int_equal(run_pam(x, "nl-login", "clinician", true), PAM_SUCCESS);
	assert_requests_all_signed_once(x);
	assert_no_fetch_since(x, &before);
	/* nhsloginctl status names the file and its keys */
	snprintf(path, sizeof(path), "pinned file %s/nhslogin.jwks (1 key)", x->dir);
	assert_true(status_has(x, path));
	free(jwks);
	agent_world_stop(x);
}

/* The bridge hands over a token whose key the file does not have: refused, nothing fetched, and the
 * log names the file and the kid. rotate: NHS login's own new key after a rotation (a real token);
 * else the bridge's own key under its own kid. */
static void pinned_refuses(bool rotate)
{
	struct afx *x = agent_world(NULL, NULL);
	char *old = mock_jwks(x), *now = NULL, want[PATH_MAX + 64];
	struct fetches before;
	json_t *doc;
	long status = 0;

	if (rotate) {
		assert_int_equal(mockproc_control(x->w->mock, "{\"fault\":\"rotate_key\"}", &status), 0);
		assert_int_equal(status, 200);
		now = mock_jwks(x);
	} else {
		fakebridge_mode(x->fb, FB_OWN_KEY_OWN_KID);
	}
	assert_int_equal(pin_agent(x, "nhslogin.jwks", old, 0644, &before), 0);
	assert_int_equal(run_pam(x, "nl-login", "clinician", true), PAM_AUTH_ERR);
	assert_true(daemon_log_has(x, "denied reason=invalid_token user=clinician"));
	snprintf(want, sizeof(want), "is not in the pinned JWKS file %s/nhslogin.jwks", x->dir);
	assert_true(daemon_log_has(x, want));
	if (rotate) { /* the new kid, as NHS login publishes it */
		assert_non_null(doc = json_loads(now, 0, NULL));
		snprintf(want, sizeof(want), "kid \"%s\"",
		         nl_json_str(json_array_get(json_object_get(doc, "keys"), 0), "kid"));
		json_decref(doc);
		assert_true(daemon_log_has(x, want));
	}
	assert_no_fetch_since(x, &before);
	assert_requests_all_signed_once(x);
	free(old);
	free(now);
	agent_world_stop(x);
}

static void test_pinned_agent_refuses_nhs_logins_rotated_key_without_fetching(void **state)
{
	(void)state;
	pinned_refuses(true);
}

static void test_pinned_agent_refuses_the_bridges_own_key_without_fetching(void **state)
{
	(void)state;
	pinned_refuses(false);
}

/* A pinned file that is writable by others, holds a private key, or is no JWKS: nhslogind does not
 * start, and says which file and why. */
static void test_pinned_agent_refuses_to_start_on_a_bad_file(void **state)
{
	struct afx *x = agent_world(NULL, NULL);
	char *jwks = mock_jwks(x), *priv, path[PATH_MAX];
	json_t *doc = json_loads(jwks, 0, NULL);
	struct fetches before;
	struct {
		const char *name, *text, *why;
		mode_t mode;
	} bad[] = {
	    {"writable.jwks", jwks, "group- or world-writable", 0666},
	    {"private.jwks", NULL, "private key members", 0644},
	    {"garbage.jwks", "<html>404 Not Found</html>\n", "not a JSON object", 0644},
	};
	(void)state;

	assert_non_null(doc);
	json_object_set_new(json_array_get(json_object_get(doc, "keys"), 0), "d",
	                    json_string("cHJpdmF0ZS1leHBvbmVudC1vZi10aGUta2V5"));
	assert_non_null(bad[1].text = priv = json_dumps(doc, JSON_COMPACT));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_not_equal(pin_agent(x, bad[i].name, bad[i].text, bad[i].mode, &before), 0);
		snprintf(path, sizeof(path), "[agent] jwks_file %s/%s", x->dir, bad[i].name);
		assert_true(daemon_log_has(x, path));
		assert_true(daemon_log_has(x, bad[i].why));
	}
	assert_false(daemon_log_now(x, "cHJpdmF0ZS1leHBvbmVudC1vZi10aGUta2V5"));
	json_decref(doc);
	free(priv);
	free(jwks);
	agent_world_stop(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_honest_bridge_signs_in_the_mapped_user),
	    cmocka_unit_test(test_agent_without_client_key_signs_in),
	    cmocka_unit_test(test_token_of_another_flow_is_refused),
	    cmocka_unit_test(test_token_signed_by_the_bridge_under_nhs_logins_kid_is_refused),
	    cmocka_unit_test(test_token_signed_by_the_bridge_under_its_own_kid_is_refused),
	    cmocka_unit_test(test_token_with_altered_claims_is_refused),
	    cmocka_unit_test(test_real_token_for_another_user_is_refused),
	    cmocka_unit_test(test_approved_without_a_token_is_refused),
	    cmocka_unit_test(test_approved_with_garbage_is_refused),
	    cmocka_unit_test(test_replayed_token_of_an_earlier_flow_is_refused),
	    cmocka_unit_test(test_approved_with_two_tokens_is_refused),
	    cmocka_unit_test(test_bridge_down_at_start_is_authinfo_unavail),
	    cmocka_unit_test(test_bridge_503_at_start_is_authinfo_unavail),
	    cmocka_unit_test(test_bridge_429_at_start_is_the_local_limit_and_not_retried),
	    cmocka_unit_test(test_polls_that_fail_for_a_moment_are_asked_again),
	    cmocka_unit_test(test_revoked_workstation_is_unavailable_and_says_so),
	    cmocka_unit_test(test_number_from_the_bridge_typed_right_signs_in),
	    cmocka_unit_test(test_number_from_the_bridge_typed_wrong_is_refused),
	    cmocka_unit_test(test_person_giving_up_cancels_at_the_bridge),
	    cmocka_unit_test(test_start_refused_here_is_cancelled_at_the_bridge),
	    cmocka_unit_test(test_start_whose_asker_left_is_cancelled_at_the_bridge),
	    cmocka_unit_test(test_agent_without_its_host_key_refuses_to_start),
	    cmocka_unit_test(test_stop_abandons_a_long_poll_at_once),
	    cmocka_unit_test(test_signin_at_a_persons_speed),
	    cmocka_unit_test(test_pinned_agent_signs_in_without_asking_nhs_login_for_keys),
	    cmocka_unit_test(test_pinned_agent_refuses_nhs_logins_rotated_key_without_fetching),
	    cmocka_unit_test(test_pinned_agent_refuses_the_bridges_own_key_without_fetching),
	    cmocka_unit_test(test_pinned_agent_refuses_to_start_on_a_bad_file),
	};

	harness_under_pam_wrapper();
	alarm(TEST_TIMEOUT_S);
	if (getenv("NL_TEST_FILTER") != NULL) /* one test at a time: NL_TEST_FILTER=test_*number* */
		cmocka_set_test_filter(getenv("NL_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
