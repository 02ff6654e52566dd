/* The hostile-provider suite's fixture, shared by the tests/hostile/test_hostile_*.c programs: two
 * worlds started on first use, the mock's faults and counters, the daemon's log and socket, and
 * sign-ins that must fail closed or succeed. */
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
#include "hostile_fixture.h"

/* Two worlds, started on first use and stopped at the end: the daemon of `tok` asks userinfo
 * too; the daemon of `net` gives the provider 2 s an HTTP exchange. */
static struct world *tok_world, *net_world;

struct world *tok(void)
{
	static const struct world_opts o = {.identity_extra = "userinfo = yes"};
	if (tok_world == NULL && world_start(&o, &tok_world) != 0)
		fail_msg("could not start the token world");
	return tok_world;
}

struct world *net(void)
{
	static const struct world_opts o = {.daemon_extra = "http_timeout = 2"};
	if (net_world == NULL && world_start(&o, &net_world) != 0)
		fail_msg("could not start the network world");
	return net_world;
}

int stop_worlds(void **state)
{
	(void)state;
	world_stop(tok_world);
	world_stop(net_world);
	tok_world = net_world = NULL;
	return 0;
}

/* ---- the mock ---- */

/* Before each test: no fault left over from a failed one. */
int reset_faults(void **state)
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

void set_fault(struct world *w, const char *name)
{
	char json[128];
	long status = 0;

	snprintf(json, sizeof(json), "{\"fault\":\"%s\"}", name);
	assert_int_equal(mockproc_control(w->mock, json, &status), 0);
	if (status != 200)
		fail_msg("the mock refused fault %s (HTTP %ld)", name, status);
}

long stat_of(struct world *w, const char *endpoint)
{
	long n = -1;
	assert_int_equal(mockproc_stat(w->mock, endpoint, &n), 0);
	return n;
}

/* ---- the daemon's log (its stderr, w->dir/daemon.log) ---- */

long log_mark(const struct world *w)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/daemon.log", w->dir);
	return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* Lines after mark that match the glob pattern (fnmatch; "*" around it is implied). */
int log_count(const struct world *w, long mark, const char *needle)
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
void assert_one_log_line(const struct world *w, long mark, const char *needle)
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

int daemon_connect(const struct world *w)
{
	int fd = fu_connect(w->socket);

	assert_true(fd >= 0);
	return fd;
}

/* One request and its answer on fd (a flow lives as long as the connection that started it). */
json_t *daemon_call_on(int fd, const char *line)
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
void flush_caches(const struct world *w)
{
	json_t *m = daemon_call(w, "{\"op\":\"flush\"}");
	assert_true(json_is_true(json_object_get(m, "ok")));
	json_decref(m);
}

/* A fresh daemon on the same config (its once-a-minute unknown-kid refetch allowance renewed). */
void restart_daemon(struct world *w)
{
	world_kill_daemon(w, SIGTERM);
	assert_int_equal(world_restart_daemon(w), 0);
}

/* ---- sign-ins ---- */

int signin(struct world *w, struct pam_run *run)
{
	assert_int_equal(world_activate(w), 0);
	return pam_run_auth(w, run);
}

/* An honest sign-in as clinician (p9 on the phone) must succeed on this daemon. */
void assert_honest_signin(struct world *w)
{
	struct pam_run run = {.service = "nl-long", .user = "clinician", .as_user = "p9"};

	assert_int_equal(signin(w, &run), PAM_SUCCESS);
	assert_int_equal(run.phone_rc, 0);
	assert_int_equal(run.phone_status, 200);
}

/* The common case: fault on, a sign-in fails with want (the phone's callback page says it could
 * not finish), one log line names needle; fault off, an honest sign-in succeeds. */
void assert_fault_refused(struct world *w, const char *fault, int want, const char *needle)
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
void assert_cold_cache_unavailable(struct world *w, const char *fault, const char *needle)
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
void url_param(const char *url, const char *name, char *out, size_t outlen)
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
long callback(const struct world *w, const char *code, const char *state)
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

long get(const char *url)
{
	struct mockproc_resp resp = {0};
	long status;

	assert_int_equal(mockproc_fetch("GET", url, NULL, NULL, NULL, &resp), 0);
	status = resp.status;
	mockproc_resp_free(&resp);
	return status;
}
