/* nhslogind as a program: the real binary with a generated config against a real nhslogin-mock
 * (tests/lib/harness.c starts both), driven over its socket: status, a bridge sign-in end to end,
 * a mismatch, native device mode, the signals, start-up refusing identity settings that cannot
 * work, and the reasons for a map broken after start and for an identity without the claim. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "faultutil.h"
#include "harness.h"
#include "nl_err.h"
#include "nl_json.h"
#include "nl_time.h"

static int setup(void **state)
{
	struct world *w = NULL;
	if (world_start(NULL, &w) != 0)
		fail_msg("could not start nhslogin-mock and nhslogind");
	*state = w;
	return 0;
}

static int setup_device(void **state)
{
	struct world_opts o = {.mock_args = {"--device-endpoint", "--auto-approve", "p9", NULL},
	                       .env_extra = "flow = device"};
	struct world *w = NULL;
	if (world_start(&o, &w) != 0)
		fail_msg("could not start nhslogin-mock --device-endpoint and nhslogind");
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	world_stop(*state);
	return 0;
}

/* One request on its own connection (the daemon client, through faultutil)... */
static json_t *call_on(int fd, const char *line)
{
	/* A wait can take its whole timeout, plus the provider's answer. */
	json_t *m = fu_call(fd, line, 20000);

	assert_non_null(m);
	return m;
}

static int connect_to(const struct world *w)
{
	int fd = fu_connect(w->socket);

	assert_true(fd >= 0);
	return fd;
}

/* start for user on fd; returns the reply (caller frees). */
static json_t *start_on(int fd, const char *user)
{
	char line[128];
	json_t *m;
	snprintf(line, sizeof(line), "{\"op\":\"start\",\"user\":\"%s\",\"service\":\"test\"}", user);
	m = call_on(fd, line);
	if (!json_is_true(json_object_get(m, "ok")))
		fail_msg("start failed: %s", nl_json_str(m, "message"));
	assert_string_equal(nl_json_str(m, "status"), "pending");
	return m;
}

/* wait until the flow ends (several waits of 5 s if need be, 30 s in all). */
static json_t *wait_outcome(int fd, const char *device_code)
{
	char line[256];
	json_t *m = NULL;
	int64_t deadline = nl_mono_ms() + 30000;

	snprintf(line, sizeof(line), "{\"op\":\"wait\",\"device_code\":\"%s\",\"timeout\":5}", device_code);
	while (nl_mono_ms() < deadline) {
		m = call_on(fd, line);
		if (!json_is_true(json_object_get(m, "ok")) ||
		    strcmp(nl_json_str(m, "status"), "pending") != 0)
			return m;
		json_decref(m);
		m = NULL;
	}
	fail_msg("the flow did not end in 30 s");
	return NULL;
}

static void test_daemon_status_after_ready(void **state)
{
	struct world *w = *state;
	int fd = connect_to(w);
	json_t *m = call_on(fd, "{\"op\":\"status\"}");

	assert_true(json_is_true(json_object_get(m, "ok")));
	assert_string_equal(nl_json_str(m, "environment"), "local");
	assert_string_equal(nl_json_str(m, "issuer"), mockproc_issuer(w->mock));
	assert_int_equal(json_integer_value(json_object_get(m, "flows")), 0);
	/* Discovery was fetched at start-up, before the first sign-in. */
	assert_true(json_is_integer(json_object_get(m, "discovery_age")));
	json_decref(m);
	close(fd);
}

static void test_daemon_bridge_signin_approves_mapped_user(void **state)
{
	struct world *w = *state;
	int fd = connect_to(w);
	json_t *m = start_on(fd, "clinician"), *out;
	long phone = 0;
	char *dc = strdup(nl_json_str(m, "device_code"));

	assert_int_equal(phone_signin(w, nl_json_str(m, "user_code"), "p9", false, &phone), 0);
	out = wait_outcome(fd, dc);
	assert_string_equal(nl_json_str(out, "status"), "approved");
	assert_string_equal(nl_json_str(out, "user"), "clinician");
	json_decref(out);
	json_decref(m);
	free(dc);
	close(fd);
}

static void test_daemon_bridge_signin_as_someone_else_is_mismatch(void **state)
{
	struct world *w = *state;
	int fd = connect_to(w);
	json_t *m = start_on(fd, "nurse"), *out;
	long phone = 0;
	char *dc = strdup(nl_json_str(m, "device_code"));

	phone_signin(w, nl_json_str(m, "user_code"), "p9", false, &phone);
	out = wait_outcome(fd, dc);
	assert_string_equal(nl_json_str(out, "status"), "denied");
	assert_string_equal(nl_json_str(out, "reason"), "mismatch");
	json_decref(out);
	json_decref(m);
	free(dc);
	close(fd);
}

static void test_daemon_device_mode_signin_approves(void **state)
{
	struct world *w = *state;
	int fd = connect_to(w);
	json_t *m = start_on(fd, "clinician"), *out;
	char *dc = strdup(nl_json_str(m, "device_code"));

	/* The provider's own page, not the bridge's. */
	assert_non_null(strstr(nl_json_str(m, "verification_uri"), mockproc_issuer(w->mock)));
	out = wait_outcome(fd, dc);
	assert_string_equal(nl_json_str(out, "status"), "approved");
	assert_string_equal(nl_json_str(out, "user"), "clinician");
	json_decref(out);
	json_decref(m);
	free(dc);
	close(fd);
}

/* ---- issue 11, finding 2: a cached sign-in is reused only where it was earned ---- */

static int setup_reuse(void **state)
{
	struct world_opts o = {.identity_extra = "reuse_window = 60"};
	struct world *w = NULL;
	if (world_start(&o, &w) != 0)
		fail_msg("could not start nhslogin-mock and nhslogind");
	*state = w;
	return 0;
}

static int setup_reuse_device(void **state)
{
	struct world_opts o = {.mock_args = {"--device-endpoint", "--auto-approve", "p9", NULL},
	                       .env_extra = "flow = device",
	                       .identity_extra = "reuse_window = 60"};
	struct world *w = NULL;
	if (world_start(&o, &w) != 0)
		fail_msg("could not start nhslogin-mock --device-endpoint and nhslogind");
	*state = w;
	return 0;
}

/* start as the module sends it: every PAM item, "" when unset. The reply (caller frees). */
static json_t *start_at(int fd, const char *user, const char *service, const char *tty, const char *rhost)
{
	char line[512];
	json_t *m;

	snprintf(line, sizeof(line),
	         "{\"op\":\"start\",\"user\":\"%s\",\"service\":\"%s\",\"tty\":\"%s\",\"rhost\":\"%s\"}",
	         user, service, tty, rhost);
	m = call_on(fd, line);
	if (!json_is_true(json_object_get(m, "ok")))
		fail_msg("start failed: %s", nl_json_str(m, "message"));
	return m;
}

/* A start on its own connection: "approved" (reused) or "pending" (a fresh code). */
static void assert_start_status(const struct world *w, const char *service, const char *tty,
                                const char *rhost, const char *status)
{
	int fd = connect_to(w);
	json_t *m = start_at(fd, "clinician", service, tty, rhost);

	assert_string_equal(nl_json_str(m, "status"), status);
	if (strcmp(status, "approved") == 0)
		assert_true(json_is_true(json_object_get(m, "reused")));
	json_decref(m);
	close(fd); /* a pending flow ends with its connection */
}

static bool daemon_log_has(const struct world *w, const char *needle)
{
	char path[PATH_MAX + 16], text[65536];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/daemon.log", w->dir);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	return strstr(text, needle) != NULL;
}

/* sudo on /dev/pts/7 signed in: su there reuses it (the same kind, elevation); sudo on another
 * pseudo-terminal, login on the same one and ssh do not, and the log says why. */
static void test_daemon_reuse_bound_to_service_kind_and_tty(void **state)
{
	struct world *w = *state;
	int fd = connect_to(w);
	json_t *m = start_at(fd, "clinician", "sudo", "/dev/pts/7", ""), *out;
	char *dc = strdup(nl_json_str(m, "device_code"));
	long phone = 0;

	assert_string_equal(nl_json_str(m, "status"), "pending");
	assert_int_equal(phone_signin(w, nl_json_str(m, "user_code"), "p9", false, &phone), 0);
	out = wait_outcome(fd, dc);
	assert_string_equal(nl_json_str(out, "status"), "approved");
	json_decref(out);
	json_decref(m);
	free(dc);
	close(fd);
	assert_int_equal(world_wait_kept(w, "clinician"), 0);

	assert_start_status(w, "sudo", "/dev/pts/8", "", "pending");
	assert_true(daemon_log_has(w, "user clinician: cached sign-in not reused: another tty"));
	assert_start_status(w, "login", "/dev/pts/7", "", "pending");
	assert_true(daemon_log_has(w, "cached sign-in not reused: another kind of service"));
	/* under the default number_matching = remote an SSH start is asked for a number: never a reuse */
	assert_start_status(w, "sshd", "ssh", "198.51.100.4", "pending");
	assert_true(
	    daemon_log_has(w, "cached sign-in not reused: number matching asks this start for the number"));
	assert_start_status(w, "su", "/dev/pts/7", "", "approved");
	assert_true(
	    daemon_log_has(w, "user clinician: cached sign-in reused (service su, rhost -, tty /dev/pts/7)"));
}

/* Native device mode ends its flows through the same step: its sign-ins are kept and bound too. */
static void test_daemon_device_mode_signin_reused_at_the_same_tty_only(void **state)
{
	struct world *w = *state;
	int fd = connect_to(w);
	json_t *m = start_at(fd, "clinician", "login", "tty3", ""), *out;
	char *dc = strdup(nl_json_str(m, "device_code"));

	assert_string_equal(nl_json_str(m, "status"), "pending");
	out = wait_outcome(fd, dc);
	assert_string_equal(nl_json_str(out, "status"), "approved");
	json_decref(out);
	json_decref(m);
	free(dc);
	close(fd);
	assert_int_equal(world_wait_kept(w, "clinician"), 0);

	assert_start_status(w, "login", "tty3", "", "approved");
	assert_start_status(w, "login", "tty4", "", "pending");
}

static void test_daemon_sighup_keeps_serving(void **state)
{
	struct world *w = *state;
	int fd;
	json_t *m;

	assert_int_equal(kill(w->daemon, SIGHUP), 0);
	usleep(200 * 1000);
	fd = connect_to(w);
	m = call_on(fd, "{\"op\":\"status\"}");
	assert_true(json_is_true(json_object_get(m, "ok")));
	json_decref(m);
	close(fd);
}

static void test_daemon_sigterm_stops_cleanly_and_removes_socket(void **state)
{
	struct world *w = *state;
	struct stat st;
	int status = -1;

	assert_int_equal(lstat(w->socket, &st), 0);
	assert_int_equal(kill(w->daemon, SIGTERM), 0);
	for (int i = 0; i < 500 && waitpid(w->daemon, &status, WNOHANG) == 0; i++)
		usleep(10 * 1000);
	w->daemon = -1;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(lstat(w->socket, &st), -1);
}

/* ---- identity settings that cannot work ---- */

static void write_text(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void map_path(const struct world *w, char *out, size_t len)
{
	snprintf(out, len, "%s/nhslogin.map", w->dir);
}

/* Run nhslogind on w's config (the world's own daemon stopped first) until it exits by itself,
 * 10 s at most; out gets what it wrote to stdout and stderr. Returns its exit status, or -1 if it
 * said "ready" or did not exit in time (it is killed then). */
static int run_daemon_until_exit(struct world *w, char *out, size_t outlen)
{
	const char *top = getenv("NL_TOP_BUILDDIR");
	char prog[PATH_MAX];
	int pipefd[2], status = -1;
	size_t len = 0;
	int64_t deadline = nl_mono_ms() + 10000;
	pid_t pid, got = 0;

	world_kill_daemon(w, SIGTERM);
	snprintf(prog, sizeof(prog), "%s/nhslogind", top != NULL && top[0] != '\0' ? top : ".");
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(pipefd[1], STDOUT_FILENO);
		dup2(pipefd[1], STDERR_FILENO);
		execl(prog, prog, "--config", w->conf, "--foreground", (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	out[0] = '\0';
	for (;;) {
		struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
		int left = (int)(deadline - nl_mono_ms());
		ssize_t n;
		if (left <= 0 || poll(&p, 1, left) <= 0)
			break;
		if ((n = read(pipefd[0], out + len, outlen - 1 - len)) <= 0)
			break;
		len += (size_t)n;
		out[len] = '\0';
		if (strstr(out, "ready") != NULL || len == outlen - 1)
			break;
	}
	close(pipefd[0]);
	/* Its output ends before it has exited: give it until the deadline, unless it is running. */
	while (strstr(out, "ready") == NULL && (got = waitpid(pid, &status, WNOHANG)) == 0 &&
	       nl_mono_ms() < deadline)
		usleep(10 * 1000);
	if (got != pid) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void assert_has(const char *text, const char *needle)
{
	if (strstr(text, needle) == NULL)
		fail_msg("\"%s\" not in: %s", needle, text);
}

/* nhslogind exits with status 2 (configuration) before it is ready; out gets what it said. */
static void assert_refused_at_start(struct world *w, char *out, size_t outlen)
{
	int status = run_daemon_until_exit(w, out, outlen);
	if (status != 2)
		fail_msg("nhslogind: status %d (-1: it started), said: %s", status, out);
}

static void test_daemon_refuses_to_start_without_map_file(void **state)
{
	struct world *w = *state;
	char map[PATH_MAX], out[4096], at[PATH_MAX + 16];

	map_path(w, map, sizeof(map));
	assert_int_equal(unlink(map), 0);
	assert_refused_at_start(w, out, sizeof(out));
	/* The file, the line that names it, and the fix, in one message. */
	assert_has(out, map);
	assert_has(out, "no such file");
	snprintf(at, sizeof(at), "%s:", w->conf);
	assert_has(out, at);
	assert_has(out, "create it");
	assert_has(out, "does not start");
	/* One line: what is wrong and the fix together. */
	assert_non_null(strchr(out, '\n'));
	assert_int_equal(strchr(out, '\n')[1], '\0');
}

static void test_daemon_refuses_to_start_with_malformed_map_line(void **state)
{
	struct world *w = *state;
	char map[PATH_MAX], out[4096], at[PATH_MAX + 64];

	map_path(w, map, sizeof(map));
	write_text(map, "# who may sign in\nclinician 9686368973\nnurse\n", 0644);
	assert_refused_at_start(w, out, sizeof(out));
	snprintf(at, sizeof(at), "%s:3: expected \"local_user claim_value\"", map);
	assert_has(out, at);
	assert_has(out, "nhsloginctl check");
	assert_has(out, "does not start");
}

static void test_daemon_refuses_to_start_with_unsafe_map_file(void **state)
{
	struct world *w = *state;
	char map[PATH_MAX], out[4096];

	map_path(w, map, sizeof(map));
	assert_int_equal(chmod(map, 0666), 0);
	assert_refused_at_start(w, out, sizeof(out));
	assert_has(out, map);
	assert_has(out, "chmod go-w");
}

static void test_daemon_refuses_to_start_when_scope_lacks_the_claim(void **state)
{
	struct world *w = *state;
	char env[PATH_MAX], out[4096], text[4096], *p;
	FILE *f;
	size_t n;

	/* claim = nhs_number (the harness's), but a scope without profile: NHS login would never send it. */
	snprintf(env, sizeof(env), "%s/environments/local.conf", w->dir);
	assert_non_null(f = fopen(env, "r"));
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	assert_non_null(p = strstr(text, "scope = openid profile\n"));
	memcpy(p, "scope = openid        \n", strlen("scope = openid profile\n"));
	write_text(env, text, 0644);
	assert_refused_at_start(w, out, sizeof(out));
	assert_has(out, env);
	assert_has(out, "claim = nhs_number");
	assert_has(out, "add profile to scope");
}

/* A map that was good at start and broke later: the person is told "not set up correctly",
 * never "could not be reached", and the phone page says the same. */
static void test_daemon_map_broken_after_start_is_misconfigured(void **state)
{
	struct world *w = *state;
	int fd = connect_to(w);
	json_t *m = start_on(fd, "clinician"), *out;
	char map[PATH_MAX], log[PATH_MAX + 16], *dc = strdup(nl_json_str(m, "device_code"));
	long phone = 0;

	map_path(w, map, sizeof(map));
	write_text(map, "clinician 9686368973\nnurse 9686368906 extra\n", 0644);
	assert_int_equal(phone_signin(w, nl_json_str(m, "user_code"), "p9", false, &phone), 0);
	assert_int_equal(phone, 500);
	out = wait_outcome(fd, dc);
	assert_string_equal(nl_json_str(out, "status"), "denied");
	assert_string_equal(nl_json_str(out, "reason"), "misconfigured");
	assert_has(nl_json_str(out, "message"), "ask IT");
	/* The admin's line names the file and the line. */
	snprintf(log, sizeof(log), "%s/daemon.log", w->dir);
	{
		char text[16384] = "";
		FILE *f = fopen(log, "r");
		size_t n;
		assert_non_null(f);
		n = fread(text, 1, sizeof(text) - 1, f);
		fclose(f);
		text[n] = '\0';
		assert_has(text, "reason=misconfigured");
		assert_has(text, "nhslogin.map:2:");
	}
	json_decref(out);
	json_decref(m);
	free(dc);
	close(fd);
}

/* The mock's users: one at P9 whose NHS login carries no NHS number. */
static const char users_without_nhs_number[] =
    "[{\"username\":\"nonhs\",\"identity_level\":\"P9\",\"email\":\"nonhs@example.nhs.uk\"}]";

static int setup_no_nhs_number(void **state)
{
	struct world_opts o = {.mock_users = users_without_nhs_number};
	struct world *w = NULL;
	if (world_start(&o, &w) != 0)
		fail_msg("could not start nhslogin-mock (own users) and nhslogind");
	*state = w;
	return 0;
}

static int setup_no_nhs_number_userinfo(void **state)
{
	struct world_opts o = {.mock_users = users_without_nhs_number, .identity_extra = "userinfo = true"};
	struct world *w = NULL;
	if (world_start(&o, &w) != 0)
		fail_msg("could not start nhslogin-mock (own users) and nhslogind with userinfo");
	*state = w;
	return 0;
}

/* Signed in, verified, but without the claim the map is keyed on: its own reason, not "not
 * linked to any account"; with userinfo on, userinfo is asked too before deciding. */
static void test_daemon_signin_without_the_claim_is_no_claim(void **state)
{
	struct world *w = *state;
	int fd = connect_to(w);
	json_t *m = start_on(fd, "clinician"), *out;
	char *dc = strdup(nl_json_str(m, "device_code"));
	long phone = 0;

	assert_int_equal(phone_signin(w, nl_json_str(m, "user_code"), "nonhs", false, &phone), 0);
	assert_int_equal(phone, 403);
	out = wait_outcome(fd, dc);
	assert_string_equal(nl_json_str(out, "status"), "denied");
	assert_string_equal(nl_json_str(out, "reason"), "no_claim");
	assert_has(nl_json_str(out, "message"), "did not include your NHS number");
	json_decref(out);
	json_decref(m);
	free(dc);
	close(fd);
}

static void test_daemon_signin_without_the_claim_in_userinfo_either_is_no_claim(void **state)
{
	struct world *w = *state;
	int fd = connect_to(w);
	json_t *m = start_on(fd, "clinician"), *out;
	char *dc = strdup(nl_json_str(m, "device_code"));
	long phone = 0, userinfo = 0;

	assert_int_equal(phone_signin(w, nl_json_str(m, "user_code"), "nonhs", false, &phone), 0);
	out = wait_outcome(fd, dc);
	assert_string_equal(nl_json_str(out, "reason"), "no_claim");
	assert_int_equal(mockproc_stat(w->mock, "userinfo", &userinfo), 0);
	assert_int_equal(userinfo, 1);
	json_decref(out);
	json_decref(m);
	free(dc);
	close(fd);
}

/* Audit (issue 11, finding 7): every approval's log line names who NHS login said signed in - sub
 * and the NHS number masked but for its last 3 digits - and the full NHS number is nowhere in the
 * log. The mock's p9 has NHS number 9686368973. */
static void test_daemon_approval_log_names_sub_and_masked_nhs_number(void **state)
{
	struct world *w = *state;
	int fd = connect_to(w);
	json_t *m = start_on(fd, "clinician"), *out;
	char log[PATH_MAX + 16], text[65536] = "", *line, *eol;
	char *dc = strdup(nl_json_str(m, "device_code"));
	long phone = 0;
	size_t n;
	FILE *f;

	assert_int_equal(phone_signin(w, nl_json_str(m, "user_code"), "p9", false, &phone), 0);
	out = wait_outcome(fd, dc);
	assert_string_equal(nl_json_str(out, "status"), "approved");
	snprintf(log, sizeof(log), "%s/daemon.log", w->dir);
	assert_non_null(f = fopen(log, "r"));
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	line = strstr(text, "approved user=clinician");
	if (line == NULL)
		fail_msg("no approval line in: %s", text);
	if ((eol = strchr(line, '\n')) != NULL)
		*eol = '\0';
	assert_has(line, " nhs_number=*******973");
	assert_has(line, " sub=");
	assert_null(strstr(line, "sub=-"));
	if (eol != NULL)
		*eol = '\n';
	if (strstr(text, "9686368973") != NULL)
		fail_msg("the full NHS number is in the log: %s", text);
	json_decref(out);
	json_decref(m);
	free(dc);
	close(fd);
}

/* [policy] (issue 11, finding 1): the daemon refuses at start, over the socket, by PAM service
 * and by the remote host's network: a denial with reason policy, no code; others start as usual. */
static int setup_policy(void **state)
{
	struct world_opts o = {.identity_extra = "[policy]\nservices_deny = su\n"
	                                         "remote_networks_allow = 10.0.0.0/8, 2001:db8::/32\n"
	                                         "remote_networks_deny = 10.66.0.0/16"};
	struct world *w = NULL;
	if (world_start(&o, &w) != 0)
		fail_msg("could not start nhslogin-mock and nhslogind with [policy]");
	*state = w;
	return 0;
}

static void test_daemon_policy_refuses_at_start_by_service_and_network(void **state)
{
	static const struct {
		const char *service, *rhost;
		bool refused;
	} cases[] = {
	    {"su", "", true},
	    {"login", "", false},
	    {"sshd", "10.1.2.3", false},
	    {"sshd", "::ffff:10.1.2.3", false},
	    {"sshd", "2001:db8::5", false},
	    {"sshd", "10.66.1.2", true},
	    {"sshd", "203.0.113.9", true},
	    {"sshd", "2001:db9::1", true},
	    {"sshd", "ws.example.org", true},
	};
	struct world *w = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char line[256];
		int fd = connect_to(w);
		json_t *m;

		snprintf(line, sizeof(line),
		         "{\"op\":\"start\",\"user\":\"clinician\",\"service\":\"%s\",\"rhost\":\"%s\"}",
		         cases[i].service, cases[i].rhost);
		m = call_on(fd, line);
		assert_true(json_is_true(json_object_get(m, "ok")));
		if (cases[i].refused) {
			if (strcmp(nl_json_str(m, "status"), "denied") != 0)
				fail_msg("%s from '%s' was not refused", cases[i].service, cases[i].rhost);
			assert_string_equal(nl_json_str(m, "reason"), "policy");
			assert_null(json_object_get(m, "user_code"));
			assert_null(json_object_get(m, "device_code"));
		} else if (strcmp(nl_json_str(m, "status"), "pending") != 0) {
			fail_msg("%s from '%s' was refused", cases[i].service, cases[i].rhost);
		}
		json_decref(m);
		close(fd);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_daemon_status_after_ready, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_daemon_bridge_signin_approves_mapped_user, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_daemon_bridge_signin_as_someone_else_is_mismatch, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_daemon_device_mode_signin_approves, setup_device, teardown),
	    cmocka_unit_test_setup_teardown(test_daemon_reuse_bound_to_service_kind_and_tty, setup_reuse,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_daemon_device_mode_signin_reused_at_the_same_tty_only,
	                                    setup_reuse_device, teardown),
	    cmocka_unit_test_setup_teardown(test_daemon_sighup_keeps_serving, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_daemon_sigterm_stops_cleanly_and_removes_socket, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_daemon_refuses_to_start_without_map_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_daemon_refuses_to_start_with_malformed_map_line, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_daemon_refuses_to_start_with_unsafe_map_file, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_daemon_refuses_to_start_when_scope_lacks_the_claim, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_daemon_map_broken_after_start_is_misconfigured, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_daemon_signin_without_the_claim_is_no_claim,
	                                    setup_no_nhs_number, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_daemon_signin_without_the_claim_in_userinfo_either_is_no_claim,
	        setup_no_nhs_number_userinfo, teardown),
	    cmocka_unit_test_setup_teardown(test_daemon_approval_log_names_sub_and_masked_nhs_number, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_daemon_policy_refuses_at_start_by_service_and_network,
	                                    setup_policy, teardown),
	};
	alarm(300); /* the whole program times out on its own */
	return cmocka_run_group_tests_name("daemon", tests, NULL, NULL);
}
