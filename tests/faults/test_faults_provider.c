/* Faults end to end (issue 4, item 4): nhslogind killed with SIGKILL and restarted, and a slow or
 * stopped provider, at the start or mid-flow, stalling nobody else. The real module under
 * pam_wrapper, the real nhslogind and nhslogin-mock (tests/lib/harness.c). Cases: README.md. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <grp.h>
#include <unistd.h>

#include <security/pam_appl.h>

#include "faultutil.h"
#include "harness.h"
#include "nl_time.h"
#include "skip.h"
#include "faults_fixture.h"

/* ---- 1. SIGKILL mid-flow, then a restart ---- */

static void test_restart_after_sigkill_keeps_token_cache_and_forgets_old_flows(void **state)
{
	struct world_opts o = {.identity_extra = "reuse_window = 600"};
	struct world *w = NULL;
	struct started old = {0}, done = {0};
	struct mockproc_resp resp = {0};
	char *az = NULL, *cb = NULL, *before = NULL, *after = NULL, path[PATH_MAX + 32], url[256], body[64];
	size_t blen = 0, alen = 0;
	long phone = 0;
	json_t *m;
	(void)state;

	assert_int_equal(world_start(&o, &w), 0);
	cur_world = w;
	/* The old flow: its phone got as far as NHS login's answer, but has not come back yet. */
	start_pending(w, "clinician", &old);
	assert_int_equal(fu_phone_authorize(w, old.user_code, "p9", &az, &cb), 0);
	/* Meanwhile a complete sign-in writes the token cache. */
	start_pending(w, "clinician", &done);
	assert_int_equal(phone_signin(w, done.user_code, "p9", false, &phone), 0);
	assert_int_equal(phone, 200);
	m = wait_on(done.fd, done.device_code);
	assert_string_equal(fu_str(m, "status"), "approved");
	json_decref(m);
	snprintf(path, sizeof(path), "%s/state/clinician", w->dir);
	assert_non_null(before = fu_read_file(path, &blen));

	world_kill_daemon(w, SIGKILL);
	close(old.fd);
	close(done.fd);
	assert_int_equal(world_restart_daemon(w), 0);

	/* The cache file is byte for byte what it was, and still parses. */
	assert_non_null(after = fu_read_file(path, &alen));
	assert_int_equal(alen, blen);
	assert_memory_equal(after, before, blen);
	json_t *parsed = json_loads(after, 0, NULL);
	assert_true(json_is_object(parsed));
	json_decref(parsed);
	/* The old flow cannot be finished: NHS login's redirect, the code and the device_code are dead. */
	assert_int_equal(mockproc_fetch("GET", cb, NULL, NULL, NULL, &resp), 0);
	assert_int_equal(resp.status, 400);
	assert_non_null(strstr(resp.body, "already been used or has expired"));
	mockproc_resp_free(&resp);
	snprintf(url, sizeof(url), "%s/d", w->bridge);
	snprintf(body, sizeof(body), "code=%s", old.user_code);
	assert_int_equal(mockproc_fetch("POST", url, "application/x-www-form-urlencoded", body, NULL, &resp),
	                 0);
	assert_int_equal(resp.status, 400);
	assert_null(resp.location);
	mockproc_resp_free(&resp);
	old.fd = fu_connect(w->socket);
	m = wait_on(old.fd, old.device_code);
	assert_false(json_is_true(json_object_get(m, "ok")));
	assert_string_equal(fu_str(m, "error"), "not_found");
	json_decref(m);
	/* The cached sign-in is reused after the restart (where it was earned: start_pending's tty). */
	m = fu_call(old.fd,
	            "{\"op\":\"start\",\"user\":\"clinician\",\"service\":\"faults\",\"tty\":\"tty9\"}",
	            10000);
	assert_string_equal(fu_str(m, "status"), "approved");
	assert_true(json_is_true(json_object_get(m, "reused")));
	json_decref(m);
	close(old.fd);
	free(az);
	free(cb);
	free(before);
	free(after);
	world_stop(w);
	cur_world = NULL;
}

/* ---- 2. provider slow or down ---- */

static struct world *start_world_timeout(void)
{
	static const struct world_opts o = {.daemon_extra = "http_timeout = 2"};
	struct world *w = NULL;
	assert_int_equal(world_start(&o, &w), 0);
	cur_world = w;
	assert_int_equal(world_activate(w), 0);
	return w;
}

/* Drop the daemon's discovery and JWKS caches so that the next start must ask the provider. */
static void flush_caches(const struct world *w)
{
	json_t *m = fu_call_once(w->socket, "{\"op\":\"flush\"}", 3000);
	assert_true(json_is_true(json_object_get(m, "ok")));
	json_decref(m);
}

static void set_delay(const struct world *w, int ms)
{
	char body[64];
	long st = 0;
	snprintf(body, sizeof(body), "{\"fault\":\"delay_ms\",\"ms\":%d}", ms);
	assert_int_equal(mockproc_control(w->mock, body, &st), 0);
	assert_int_equal(st, 200);
}

/* A status request sent after_ms from now, timed. */
struct status_probe {
	const struct world *w;
	int after_ms;
	bool ok;
	int64_t took_ms;
};

static void *status_probe_thread(void *arg)
{
	struct status_probe *p = arg;
	json_t *m;
	int64_t t0;

	usleep((useconds_t)p->after_ms * 1000);
	t0 = nl_mono_ms();
	m = fu_call_once(p->w->socket, "{\"op\":\"status\"}", 20000);
	p->took_ms = nl_mono_ms() - t0;
	p->ok = json_is_true(json_object_get(m, "ok"));
	json_decref(m);
	return NULL;
}

static void test_slow_provider_at_start_is_authinfo_unavail_within_timeout(void **state)
{
	struct world *w = start_world_timeout();
	struct pam_run run = {.service = "nl-login", .user = "clinician"};
	int64_t t0;
	(void)state;

	flush_caches(w);
	set_delay(w, 2 * HTTP_TIMEOUT_S * 1000);
	struct status_probe probe = {.w = w, .after_ms = 300};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, status_probe_thread, &probe), 0);
	t0 = nl_mono_ms();
	assert_int_equal(pam_run_auth(w, &run), PAM_AUTHINFO_UNAVAIL);
	print_message("# PAM returned PAM_AUTHINFO_UNAVAIL after %lld ms\n", (long long)(nl_mono_ms() - t0));
	assert_true(nl_mono_ms() - t0 < HTTP_TIMEOUT_S * 1000 + MARGIN_MS);
	pthread_join(t, NULL);
	/* The provider is waited for off the socket loop: a status asked meanwhile answers at once. */
	print_message("# status asked during the slow start answered in %lld ms\n", (long long)probe.took_ms);
	assert_true(probe.ok);
	assert_true(probe.took_ms < 1000);
	assert_true(pam_run_saw_error(&run, "not available"));
	assert_string_equal(run.user_code, ""); /* no code was shown */
	t0 = nl_mono_ms();
	assert_status_answers(w);
	print_message("# status after a slow provider answered in %lld ms\n", (long long)(nl_mono_ms() - t0));
	world_stop(w);
	cur_world = NULL;
}

/* ---- 2b. a slow provider stalls nobody else ---- */

#define POLLERS       50
#define POLL_EVERY_MS 50
#define SLOW_MS       10000
/* A stalled loop would answer in about SLOW_MS; AddressSanitizer makes every call slower. */
#if defined(NL_TEST_ASAN)
#define RTT_BOUND_MS 200
#else
#define RTT_BOUND_MS 50
#endif

struct poller {
	const struct world *w;
	int fd;
	volatile bool *stop;
	int64_t rtt[SLOW_MS / POLL_EVERY_MS + 64];
	size_t n;
	bool failed;
};

static void *poller_thread(void *arg)
{
	struct poller *p = arg;

	while (!*p->stop && p->n < sizeof(p->rtt) / sizeof(p->rtt[0])) {
		int64_t t0 = nl_mono_ms();
		json_t *m = fu_call(p->fd, "{\"op\":\"status\"}", 5000);
		p->rtt[p->n++] = nl_mono_ms() - t0;
		if (!json_is_true(json_object_get(m, "ok")))
			p->failed = true;
		json_decref(m);
		usleep(POLL_EVERY_MS * 1000);
	}
	return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* The provider answers after 10 s while 50 clients, each holding a sign-in in progress, ask the
 * daemon over and over: every round trip stays short (the provider is waited for off the loop). */
static void test_slow_provider_stalls_no_other_client(void **state)
{
	static const struct world_opts o = {.daemon_extra = "http_timeout = 20\nmax_flows_per_user = 64"};
	static struct poller p[POLLERS];
	pthread_t t[POLLERS];
	volatile bool stop = false;
	struct world *w = NULL;
	int64_t all[POLLERS * (SLOW_MS / POLL_EVERY_MS + 64)] = {0}, t0, slow_ms;
	size_t n = 0;
	json_t *m;
	int slow_fd;
	(void)state;

	assert_int_equal(world_start(&o, &w), 0);
	cur_world = w;
	for (int i = 0; i < POLLERS; i++) {
		memset(&p[i], 0, sizeof(p[i]));
		p[i].w = w;
		p[i].stop = &stop;
		assert_true((p[i].fd = fu_connect(w->socket)) >= 0);
		m = fu_call(p[i].fd, "{\"op\":\"start\",\"user\":\"clinician\",\"service\":\"login\"}", 5000);
		assert_string_equal(fu_str(m, "status"), "pending");
		json_decref(m);
	}
	flush_caches(w);
	set_delay(w, SLOW_MS);
	assert_true((slow_fd = fu_connect(w->socket)) >= 0);
	for (int i = 0; i < POLLERS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, poller_thread, &p[i]), 0);
	t0 = nl_mono_ms();
	m = fu_call(slow_fd, "{\"op\":\"start\",\"user\":\"nurse\",\"service\":\"login\"}", 30000);
	slow_ms = nl_mono_ms() - t0;
	stop = true;
	for (int i = 0; i < POLLERS; i++)
		pthread_join(t[i], NULL);
	/* The slow start itself got its answer, once the provider gave one. */
	assert_string_equal(fu_str(m, "status"), "pending");
	json_decref(m);
	for (int i = 0; i < POLLERS; i++) {
		assert_false(p[i].failed);
		for (size_t k = 0; k < p[i].n; k++)
			all[n++] = p[i].rtt[k];
		close(p[i].fd);
	}
	close(slow_fd);
	qsort(all, n, sizeof(all[0]), cmp_i64);
	print_message("# slow start took %lld ms; %zu status round trips meanwhile: p50 %lld ms, p99 %lld "
	              "ms, max %lld ms\n",
	              (long long)slow_ms, n, (long long)all[n / 2], (long long)all[n * 99 / 100],
	              (long long)all[n - 1]);
	assert_true(slow_ms >= SLOW_MS);
	assert_true(n >= POLLERS * 50);
	assert_true(all[n * 99 / 100] < RTT_BOUND_MS);
	world_stop(w);
	cur_world = NULL;
}

static void test_stopped_provider_at_start_is_authinfo_unavail(void **state)
{
	struct world *w = start_world_timeout();
	struct pam_run run = {.service = "nl-login", .user = "clinician"};
	int64_t t0;
	(void)state;

	flush_caches(w);
	mockproc_stop(w->mock);
	w->mock = NULL;
	t0 = nl_mono_ms();
	assert_int_equal(pam_run_auth(w, &run), PAM_AUTHINFO_UNAVAIL);
	assert_true(nl_mono_ms() - t0 < HTTP_TIMEOUT_S * 1000 + MARGIN_MS);
	assert_true(pam_run_saw_error(&run, "not available"));
	assert_status_answers(w);
	world_stop(w);
	cur_world = NULL;
}

/* The phone that comes back late: it waits for the code on the screen, signs in at the mock,
 * then breaks the provider (slow or stopped) before it follows the redirect back to the bridge,
 * so that the daemon's code exchange is what meets the fault. */
struct late_phone {
	struct world *w;
	struct pam_run *run;
	bool stop_mock;
	int rc;
	long status;
	int64_t back_at; /* when the phone followed the redirect back */
};

static void *late_phone_thread(void *arg)
{
	struct late_phone *lp = arg;
	struct mockproc_resp resp = {0};
	char code[16] = "", *az = NULL, *cb = NULL;
	long st = 0;

	lp->rc = -1;
	/* The conversation writes the code once, before the first wait. */
	for (int i = 0; i < 1000 && ((volatile char *)lp->run->user_code)[0] == '\0'; i++)
		usleep(10 * 1000);
	usleep(50 * 1000);
	snprintf(code, sizeof(code), "%s", lp->run->user_code);
	if (code[0] == '\0' || fu_phone_authorize(lp->w, code, "p9", &az, &cb) != 0)
		goto out;
	if (lp->stop_mock) {
		mockproc_stop(lp->w->mock);
		lp->w->mock = NULL;
	} else if (mockproc_control(lp->w->mock, "{\"fault\":\"delay_ms\",\"ms\":4000}", &st) != 0 ||
	           st != 200) {
		goto out;
	}
	lp->back_at = nl_mono_ms();
	if (mockproc_fetch("GET", cb, NULL, NULL, NULL, &resp) != 0)
		goto out;
	lp->status = resp.status;
	lp->rc = 0;
out:
	mockproc_resp_free(&resp);
	free(az);
	free(cb);
	return NULL;
}

static void run_with_late_phone(bool stop_mock)
{
	struct world *w = start_world_timeout();
	struct pam_run run = {.service = "nl-long", .user = "clinician"};
	struct late_phone lp = {.w = w, .run = &run, .stop_mock = stop_mock};
	pthread_t t;
	int64_t done;

	assert_int_equal(pthread_create(&t, NULL, late_phone_thread, &lp), 0);
	assert_int_equal(pam_run_auth(w, &run), PAM_AUTHINFO_UNAVAIL);
	done = nl_mono_ms();
	pthread_join(t, NULL);
	assert_int_equal(lp.rc, 0);
	assert_int_equal(lp.status, 502); /* the phone is told too */
	print_message("# PAM returned %lld ms after the phone came back\n", (long long)(done - lp.back_at));
	assert_true(done - lp.back_at < HTTP_TIMEOUT_S * 1000 + MARGIN_MS);
	assert_true(pam_run_saw_error(&run, "could not be reached"));
	assert_status_answers(w);
	world_stop(w);
	cur_world = NULL;
}

static void test_slow_token_endpoint_mid_flow_is_authinfo_unavail_within_timeout(void **state)
{
	(void)state;
	run_with_late_phone(false);
}

static void test_stopped_provider_mid_flow_is_authinfo_unavail(void **state)
{
	(void)state;
	run_with_late_phone(true);
}

int main(void)
{
	harness_under_pam_wrapper();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_restart_after_sigkill_keeps_token_cache_and_forgets_old_flows,
	                              world_teardown),
	    cmocka_unit_test_teardown(test_slow_provider_at_start_is_authinfo_unavail_within_timeout,
	                              world_teardown),
	    cmocka_unit_test_teardown(test_slow_provider_stalls_no_other_client, world_teardown),
	    cmocka_unit_test_teardown(test_stopped_provider_at_start_is_authinfo_unavail, world_teardown),
	    cmocka_unit_test_teardown(test_slow_token_endpoint_mid_flow_is_authinfo_unavail_within_timeout,
	                              world_teardown),
	    cmocka_unit_test_teardown(test_stopped_provider_mid_flow_is_authinfo_unavail, world_teardown),
	};
	alarm(240); /* the whole program times out on its own */
	return cmocka_run_group_tests_name("faults_provider", tests, NULL, NULL);
}
