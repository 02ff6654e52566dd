/* Local security (issue 4, item 5): only root or the configured group may use nhslogind's socket
 * (a second uid via fork + setresuid), the group may not run admin ops, key and config files with
 * group/world access or another owner are refused naming the file, and user-code guessing at the
 * bridge is cut off at exactly code_attempts. Cases: README.md. Needs root for the uid switches;
 * without it those tests are skipped, each with its reason (skip.h). */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "faultutil.h"
#include "flows.h"
#include "harness.h"
#include "nl_time.h"
#include "skip.h"

#define NOBODY        65534
#define CODE_ATTEMPTS 5

/* The world a test started, stopped by world_teardown even when an assertion failed. */
static struct world *cur_world;

static int world_teardown(void **state)
{
	(void)state;
	world_stop(cur_world);
	cur_world = NULL;
	return 0;
}

/* ---- a client under another uid ---- */

/* Run the request lines (NULL-terminated) on one connection as uid/gid (no supplementary
 * groups) and return the replies, one a line, or "connect: ERROR". DEVICE_CODE in a line stands
 * for the device_code of the last reply that had one. The caller frees. */
static char *as_user(const struct world *w, uid_t uid, gid_t gid, const char *const *lines)
{
	int p[2];
	pid_t pid;
	char *out = calloc(1, 16384);
	size_t got = 0;

	assert_non_null(out);
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0)
			_exit(3);
		int fd = fu_connect(w->socket);
		if (fd < 0) {
			dprintf(p[1], "connect: %s\n", strerror(errno));
			_exit(0);
		}
		char dc[256] = "", line[512];
		for (size_t i = 0; lines[i] != NULL; i++) {
			const char *at = strstr(lines[i], "DEVICE_CODE");
			if (at != NULL) /* the device_code the last start handed out */
				snprintf(line, sizeof(line), "%.*s%s%s", (int)(at - lines[i]), lines[i], dc,
				         at + 11);
			else
				snprintf(line, sizeof(line), "%s", lines[i]);
			json_t *m = fu_call(fd, line, 5000);
			if (m != NULL && json_is_string(json_object_get(m, "device_code")))
				snprintf(dc, sizeof(dc), "%s", fu_str(m, "device_code"));
			char *text = m != NULL ? json_dumps(m, JSON_COMPACT) : NULL;
			dprintf(p[1], "%s\n", text != NULL ? text : "(no reply)");
			free(text);
			json_decref(m);
		}
		_exit(0);
	}
	close(p[1]);
	for (int64_t deadline = nl_mono_ms() + 20000; nl_mono_ms() < deadline && got < 16383;) {
		struct pollfd pf = {.fd = p[0], .events = POLLIN};
		if (poll(&pf, 1, 200) <= 0)
			continue;
		ssize_t n = read(p[0], out + got, 16383 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(p[0]);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return out;
}

/* The n-th line (0-based) of text, in a static buffer. */
static const char *nth_line(const char *text, int n)
{
	static char line[4096];
	const char *p = text;
	for (int i = 0; i < n && p != NULL; i++)
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	snprintf(line, sizeof(line), "%.*s", p != NULL ? (int)strcspn(p, "\n") : 0, p != NULL ? p : "");
	return line;
}

static void test_socket_is_root_only_by_mode_and_by_peer_check(void **state)
{
	struct world *w = NULL;
	const char *const status[] = {"{\"op\":\"status\"}", NULL};
	struct stat st;
	char *out;
	(void)state;

	if (geteuid() != 0)
		skip_because("needs root to run a client as uid %d", NOBODY);
	assert_int_equal(world_start(NULL, &w), 0);
	cur_world = w;
	/* The file: 0600, root's. */
	assert_int_equal(stat(w->socket, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_uid, 0);
	out = as_user(w, NOBODY, NOBODY, status);
	assert_non_null(strstr(out, "connect: Permission denied"));
	free(out);
	/* The daemon's own check (SO_PEERCRED), with the file opened to everyone. */
	assert_int_equal(chmod(w->socket, 0666), 0);
	out = as_user(w, NOBODY, NOBODY, status);
	assert_string_equal(
	    nth_line(out, 0),
	    "{\"ok\":false,\"error\":\"forbidden\",\"message\":\"not allowed to use nhslogind\"}");
	free(out);
	world_stop(w);
	cur_world = NULL;
}

/* A temporary group for socket_group, removed at the end. */
static char group_name[32];

static int group_teardown(void **state)
{
	char cmd[96];
	world_teardown(state);
	if (group_name[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "groupdel %s >/dev/null 2>&1", group_name);
		if (system(cmd) != 0)
			fprintf(stderr, "# could not remove group %s\n", group_name);
	}
	group_name[0] = '\0';
	return 0;
}

static void test_socket_group_may_start_and_wait_but_not_admin_ops(void **state)
{
	struct world_opts o = {0};
	struct world *w = NULL;
	char cmd[96], extra[64];
	struct group *gr;
	struct stat st;
	char *out;
	(void)state;

	if (geteuid() != 0)
		skip_because("needs root for groupadd and a second uid");
	snprintf(group_name, sizeof(group_name), "nlft%ld", (long)getpid());
	snprintf(cmd, sizeof(cmd), "groupadd %s >/dev/null 2>&1", group_name);
	if (system(cmd) != 0) {
		group_name[0] = '\0';
		skip_because("groupadd is not available");
	}
	assert_non_null(gr = getgrnam(group_name));
	gid_t gid = gr->gr_gid;
	snprintf(extra, sizeof(extra), "socket_group = %s", group_name);
	o.daemon_extra = extra;
	assert_int_equal(world_start(&o, &w), 0);
	cur_world = w;
	assert_int_equal(stat(w->socket, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0660);
	assert_int_equal(st.st_gid, gid);

	/* A member: start and wait on a flow for its own account, status (without other accounts'
	 * counts); the admin ops, and a start for another account, are refused. */
	const char *const member[] = {"{\"op\":\"start\",\"user\":\"nobody\"}",
	                              "{\"op\":\"wait\",\"device_code\":\"DEVICE_CODE\",\"timeout\":1}",
	                              "{\"op\":\"status\"}",
	                              "{\"op\":\"flows\"}",
	                              "{\"op\":\"flush\"}",
	                              "{\"op\":\"flow_cancel\",\"flow\":\"f-0000000000000000\"}",
	                              "{\"op\":\"start\",\"user\":\"root\",\"service\":\"sshd\"}",
	                              NULL};
	out = as_user(w, NOBODY, gid, member);
	assert_non_null(strstr(nth_line(out, 0), "\"status\":\"pending\""));
	assert_non_null(strstr(nth_line(out, 1), "\"status\":\"pending\""));
	assert_non_null(strstr(nth_line(out, 1), "\"expires_in\""));
	assert_non_null(strstr(nth_line(out, 2), "\"ok\":true"));
	assert_null(strstr(nth_line(out, 2), "\"flows\""));
	assert_null(strstr(nth_line(out, 2), "\"cached_signins\""));
	for (int i = 3; i < 7; i++)
		assert_non_null(strstr(nth_line(out, i), "\"error\":\"forbidden\""));
	free(out);
	/* Not a member: refused by the daemon even with the file opened to everyone. */
	assert_int_equal(chmod(w->socket, 0666), 0);
	const char *const status[] = {"{\"op\":\"status\"}", NULL};
	out = as_user(w, NOBODY, NOBODY, status);
	assert_non_null(strstr(nth_line(out, 0), "\"error\":\"forbidden\""));
	free(out);
	world_stop(w);
	cur_world = NULL;
}

/* ---- key and config files ---- */

/* Run nhslogind --config conf --foreground until it exits (10 s at most); its stderr in *err. */
static int run_daemon(const struct world *w, char *err, size_t errlen)
{
	char path[PATH_MAX + 32], errfile[PATH_MAX + 32];
	const char *top = getenv("NL_TOP_BUILDDIR");
	int status = -1;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/nhslogind", top != NULL && top[0] != '\0' ? top : ".");
	snprintf(errfile, sizeof(errfile), "%s/refused.err", w->dir);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(errfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600),
		    dn = open("/dev/null", O_WRONLY);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fd, STDERR_FILENO);
		dup2(dn, STDOUT_FILENO);
		execl(path, path, "--config", w->conf, "--foreground", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 1000 && waitpid(pid, &status, WNOHANG) == 0; i++)
		usleep(10 * 1000);
	if (kill(pid, 0) == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fail_msg("nhslogind did not exit: it accepted the file");
	}
	char *text = fu_read_file(errfile, NULL);
	snprintf(err, errlen, "%s", text != NULL ? text : "");
	free(text);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static struct world *file_world;

static int file_setup(void **state)
{
	(void)state;
	if (world_start(NULL, &file_world) != 0)
		return -1;
	world_kill_daemon(file_world, SIGTERM); /* each test starts it by hand */
	return 0;
}

static int file_teardown(void **state)
{
	(void)state;
	world_stop(file_world);
	file_world = NULL;
	return 0;
}

/* Change one file (mode, or owner if uid != -1), check the daemon refuses to start naming it,
 * then put it back and check it starts. */
static void refused_naming(const char *which, mode_t mode, uid_t uid)
{
	char path[PATH_MAX + 64], err[4096];
	struct stat st;
	int rc;

	if (strcmp(which, "config") == 0)
		snprintf(path, sizeof(path), "%s", file_world->conf);
	else if (strcmp(which, "env") == 0)
		snprintf(path, sizeof(path), "%s/environments/local.conf", file_world->dir);
	else
		snprintf(path, sizeof(path), "%s/client.key.pem", file_world->dir);
	assert_int_equal(stat(path, &st), 0);
	if (uid != (uid_t)-1)
		assert_int_equal(chown(path, uid, (gid_t)-1), 0);
	else
		assert_int_equal(chmod(path, mode), 0);
	rc = run_daemon(file_world, err, sizeof(err));
	assert_int_equal(chown(path, st.st_uid, st.st_gid), 0);
	assert_int_equal(chmod(path, st.st_mode & 07777), 0);
	print_message("# %s: exit %d: %s", which, rc, err);
	assert_int_not_equal(rc, 0);
	if (strstr(err, path) == NULL)
		fail_msg("the message does not name %s: %s", path, err);
}

static void test_client_key_readable_by_others_is_refused_naming_it(void **state)
{
	(void)state;
	refused_naming("key", 0644, (uid_t)-1);
}

static void test_client_key_readable_by_group_is_refused_naming_it(void **state)
{
	(void)state;
	refused_naming("key", 0640, (uid_t)-1);
}

static void test_client_key_not_owned_by_root_is_refused_naming_it(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip_because("needs root to chown");
	refused_naming("key", 0, NOBODY);
}

static void test_config_writable_by_others_is_refused_naming_it(void **state)
{
	(void)state;
	refused_naming("config", 0666, (uid_t)-1);
}

static void test_config_writable_by_group_is_refused_naming_it(void **state)
{
	(void)state;
	refused_naming("config", 0664, (uid_t)-1);
}

static void test_config_not_owned_by_root_is_refused_naming_it(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip_because("needs root to chown");
	refused_naming("config", 0, NOBODY);
}

static void test_environment_file_writable_by_others_is_refused_naming_it(void **state)
{
	(void)state;
	refused_naming("env", 0666, (uid_t)-1);
}

static void test_untouched_files_start_the_daemon(void **state)
{
	/* The control: with the files as the harness writes them, nhslogind starts. */
	(void)state;
	assert_int_equal(world_restart_daemon(file_world), 0);
	world_kill_daemon(file_world, SIGTERM);
}

/* ---- user-code guessing ---- */

/* POST code to /d; the HTTP status. */
static long post_code(const struct world *w, const char *code)
{
	struct mockproc_resp r = {0};
	char url[160], body[64];
	long status;

	snprintf(url, sizeof(url), "%s/d", w->bridge);
	snprintf(body, sizeof(body), "code=%s", code);
	assert_int_equal(mockproc_fetch("POST", url, "application/x-www-form-urlencoded", body, NULL, &r), 0);
	status = r.status;
	mockproc_resp_free(&r);
	return status;
}

/* A well-formed code that is not `real` (the i-th such). */
static void wrong_code(const char *real, int i, char *out)
{
	static const char alpha[] = NL_USER_CODE_ALPHABET;
	snprintf(out, 10, "%.4s%.4s", real, real + 5);
	size_t k = strchr(alpha, out[i % 8]) - alpha;
	out[i % 8] = alpha[(k + 1 + (size_t)i / 8) % (sizeof(alpha) - 1)];
}

static void test_user_code_guessing_is_cut_off_at_code_attempts(void **state)
{
	struct world_opts o = {.identity_extra = "[bridge]\ncode_attempts = 5"};
	struct world *w = NULL;
	char code[16], wrong[16], log[PATH_MAX + 32];
	int fd;
	json_t *m;
	(void)state;

	assert_int_equal(world_start(&o, &w), 0);
	cur_world = w;
	fd = fu_connect(w->socket);
	assert_true(fd >= 0);
	m = fu_call(fd, "{\"op\":\"start\",\"user\":\"clinician\"}", 10000);
	snprintf(code, sizeof(code), "%s", fu_str(m, "user_code"));
	json_decref(m);
	assert_int_equal(strlen(code), 9);
	/* code_attempts - 1 wrong codes: the right one still works. */
	for (int i = 0; i < CODE_ATTEMPTS - 1; i++) {
		wrong_code(code, i, wrong);
		assert_int_equal(post_code(w, wrong), 400);
	}
	assert_int_equal(post_code(w, code), 200); /* its confirmation page */
	/* One more wrong code reaches the limit: from then on every code is refused, the right one too. */
	wrong_code(code, CODE_ATTEMPTS, wrong);
	assert_int_equal(post_code(w, wrong), 400);
	assert_int_equal(post_code(w, code), 429);
	assert_int_equal(post_code(w, wrong), 429);
	/* A malformed code cannot match anything and is not what unblocks it either. */
	assert_int_equal(post_code(w, "not-a-code"), 429);
	snprintf(log, sizeof(log), "%s/daemon.log", w->dir);
	const char *refused[] = {"nhslogind[warning]", "wrong codes", NULL};
	assert_true(fu_count_lines(log, refused) >= 1);
	close(fd);
	world_stop(w);
	cur_world = NULL;
}

/* A socket directory others can write to, sticky (as /tmp) or not: another uid could bind the
 * path first. nhslogind refuses to start there, naming the directory. */
static void test_socket_dir_writable_by_others_is_refused_even_sticky(void **state)
{
	struct world *w = NULL;
	char log[PATH_MAX];
	(void)state;

	assert_int_equal(world_start(NULL, &w), 0);
	cur_world = w;
	world_kill_daemon(w, SIGKILL);
	char rundir[sizeof(w->socket)];
	snprintf(rundir, sizeof(rundir), "%s", w->socket);
	*strrchr(rundir, '/') = '\0'; /* the socket's directory */
	assert_int_equal(chmod(rundir, 01777), 0);
	assert_int_not_equal(world_restart_daemon(w), 0);
	snprintf(log, sizeof(log), "%s/daemon.log", w->dir);
	assert_true(fu_file_contains(log, "writable by others"));
	assert_true(fu_file_contains(log, rundir));
	chmod(rundir, 0755);
	world_stop(w);
	cur_world = NULL;
}

/* ---- user codes through a reverse proxy (issue 11, finding 6) ---- */

static size_t discard_body(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

/* A well-formed code that is not `real`, for any i (wrong_code repeats the real one every 184). */
static void never_real_code(const char *real, int i, char *out)
{
	static const char alpha[] = NL_USER_CODE_ALPHABET;
	snprintf(out, 10, "%.4s%.4s", real, real + 5);
	size_t k = strchr(alpha, out[i % 8]) - alpha;
	out[i % 8] = alpha[(k + 1 + (size_t)(i / 8) % (sizeof(alpha) - 2)) % (sizeof(alpha) - 1)];
}

/* POST code to /d with one extra header line ("Name: value", or NULL); the HTTP status. */
static long post_code_via(const struct world *w, const char *code, const char *header_line)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = header_line != NULL ? curl_slist_append(NULL, header_line) : NULL;
	char url[160], body[64];
	long status = 0;

	assert_non_null(c);
	snprintf(url, sizeof(url), "%s/d", w->bridge);
	snprintf(body, sizeof(body), "code=%s", code);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	return status;
}

/* A world whose bridge (on loopback) has extra [bridge] lines; the code of a new sign-in. */
static struct world *proxied_world(const char *bridge_lines, char *code, size_t len, int *fd)
{
	struct world_opts o = {.identity_extra = bridge_lines};
	struct world *w = NULL;
	json_t *m;

	assert_int_equal(world_start(&o, &w), 0);
	cur_world = w;
	*fd = fu_connect(w->socket);
	assert_true(*fd >= 0);
	m = fu_call(*fd, "{\"op\":\"start\",\"user\":\"clinician\"}", 10000);
	snprintf(code, len, "%s", fu_str(m, "user_code"));
	json_decref(m);
	assert_int_equal(strlen(code), 9);
	return w;
}

/* The attack of finding 6 against the real daemon behind a (trusted, loopback) proxy: 1,000 wrong
 * codes from 100 addresses, then the right code from a fresh address goes through; one address
 * guessing on its own is still cut off at code_attempts. */
static void test_user_code_guessing_from_many_addresses_locks_no_one_out(void **state)
{
	char code[16], wrong[16], hdr[96], log[PATH_MAX + 32];
	int fd, refused = 0;
	struct world *w = proxied_world("[bridge]\ncode_attempts = 5\ntrusted_proxies = 127.0.0.1, ::1", code,
	                                sizeof(code), &fd);
	(void)state;

	for (int i = 0; i < 1000; i++) {
		never_real_code(code, i, wrong);
		snprintf(hdr, sizeof(hdr), "X-Forwarded-For: 203.0.113.%d", i % 100);
		long st = post_code_via(w, wrong, hdr);
		assert_true(st == 400 || st == 429);
		refused += st == 429;
	}
	assert_true(refused > 0);
	long st = post_code_via(w, code, "X-Forwarded-For: 198.51.100.44");
	if (st != 302 && st != 200)
		fail_msg("the right code from a fresh address got HTTP %ld", st);
	/* one address guessing: while the many are at it, 3 wrong codes (not code_attempts), then even
	 * the right code is refused */
	for (int i = 0; i < 3; i++) {
		never_real_code(code, 2000 + i, wrong);
		assert_int_equal(post_code_via(w, wrong, "X-Forwarded-For: 198.51.100.45"), 400);
	}
	never_real_code(code, 2003, wrong);
	assert_int_equal(post_code_via(w, wrong, "X-Forwarded-For: 198.51.100.45"), 429);
	assert_int_equal(post_code_via(w, code, "X-Forwarded-For: 198.51.100.45"), 429);
	snprintf(log, sizeof(log), "%s/daemon.log", w->dir);
	const char *pressure[] = {"nhslogind[warning]", "wrong user codes in a minute from everyone", NULL};
	assert_true(fu_count_lines(log, pressure) >= 1);
	close(fd);
	world_stop(w);
	cur_world = NULL;
}

/* Without trusted_proxies the header is the sender's word and is ignored: every guess counts
 * against the TCP peer, whatever address it claims. */
static void test_forwarded_for_from_an_untrusted_peer_is_ignored(void **state)
{
	char code[16], wrong[16], hdr[96];
	int fd;
	struct world *w = proxied_world("[bridge]\ncode_attempts = 5", code, sizeof(code), &fd);
	(void)state;

	for (int i = 0; i < CODE_ATTEMPTS; i++) {
		never_real_code(code, i, wrong);
		snprintf(hdr, sizeof(hdr), "X-Forwarded-For: 203.0.113.%d", i);
		assert_int_equal(post_code_via(w, wrong, hdr), 400);
	}
	assert_int_equal(post_code_via(w, code, "X-Forwarded-For: 198.51.100.46"), 429);
	assert_int_equal(post_code_via(w, code, "Forwarded: for=198.51.100.47"), 429);
	close(fd);
	world_stop(w);
	cur_world = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_socket_is_root_only_by_mode_and_by_peer_check, world_teardown),
	    cmocka_unit_test_teardown(test_socket_group_may_start_and_wait_but_not_admin_ops, group_teardown),
	    cmocka_unit_test_teardown(test_socket_dir_writable_by_others_is_refused_even_sticky,
	                              world_teardown),
	    cmocka_unit_test_setup_teardown(test_client_key_readable_by_others_is_refused_naming_it,
	                                    file_setup, file_teardown),
	    cmocka_unit_test_setup_teardown(test_client_key_readable_by_group_is_refused_naming_it,
	                                    file_setup, file_teardown),
	    cmocka_unit_test_setup_teardown(test_client_key_not_owned_by_root_is_refused_naming_it,
	                                    file_setup, file_teardown),
	    cmocka_unit_test_setup_teardown(test_config_writable_by_others_is_refused_naming_it, file_setup,
	                                    file_teardown),
	    cmocka_unit_test_setup_teardown(test_config_writable_by_group_is_refused_naming_it, file_setup,
	                                    file_teardown),
	    cmocka_unit_test_setup_teardown(test_config_not_owned_by_root_is_refused_naming_it, file_setup,
	                                    file_teardown),
	    cmocka_unit_test_setup_teardown(test_environment_file_writable_by_others_is_refused_naming_it,
	                                    file_setup, file_teardown),
	    cmocka_unit_test_setup_teardown(test_untouched_files_start_the_daemon, file_setup, file_teardown),
	    cmocka_unit_test_teardown(test_user_code_guessing_is_cut_off_at_code_attempts, world_teardown),
	    cmocka_unit_test_teardown(test_user_code_guessing_from_many_addresses_locks_no_one_out,
	                              world_teardown),
	    cmocka_unit_test_teardown(test_forwarded_for_from_an_untrusted_peer_is_ignored, world_teardown),
	};
	alarm(240);
	return cmocka_run_group_tests_name("local_security", tests, NULL, NULL);
}
