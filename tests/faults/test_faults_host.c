/* Faults end to end on the host (issue 4, items 4 and 5): read-only and full cache directories, no
 * secret in any log line or left in the daemon's memory, lockout, a fake daemon, terminal controls.
 * The real module under pam_wrapper, the real nhslogind and nhslogin-mock. Cases: README.md. */
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

/* ---- 3. read-only and full cache directories ---- */

/* Every file of dir (name and content) in one string, sorted by name. */
static char *snapshot_dir(const char *dir)
{
	struct dirent **names = NULL;
	char *out = strdup(""), path[PATH_MAX + 256];
	int n = scandir(dir, &names, NULL, alphasort);

	for (int i = 0; i < n; i++) {
		char *text = NULL, *more = NULL;
		if (strcmp(names[i]->d_name, ".") != 0 && strcmp(names[i]->d_name, "..") != 0) {
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
			text = fu_read_file(path, NULL);
			if (out != NULL &&
			    asprintf(&more, "%s[%s]%s\n", out, names[i]->d_name, text ? text : "?") < 0)
				more = NULL;
			free(out);
			out = more;
			free(text);
		}
		free(names[i]);
	}
	free(names);
	return out;
}

static int set_immutable(const char *path, bool on)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), flags = 0, r = -1;
	if (fd < 0)
		return -1;
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
		flags = on ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL;
		r = ioctl(fd, FS_IOC_SETFLAGS, &flags);
	}
	close(fd);
	return r;
}

/* What the broken-disk tests set up, so that teardown can undo it even after a failed assert. */
static struct world *disk_world;
static char disk_mount[PATH_MAX + 32];

static int disk_teardown(void **state)
{
	char path[PATH_MAX + 32];
	(void)state;
	if (disk_world != NULL) {
		world_kill_daemon(disk_world, SIGTERM);
		snprintf(path, sizeof(path), "%s/state", disk_world->dir);
		set_immutable(path, false);
		snprintf(path, sizeof(path), "%s/cache", disk_world->dir);
		set_immutable(path, false);
	}
	if (disk_mount[0] != '\0')
		umount2(disk_mount, MNT_DETACH);
	disk_mount[0] = '\0';
	world_stop(disk_world);
	disk_world = NULL;
	return 0;
}

/* A sign-in at the console's tty (the token cache keeps a sign-in only with a place to bind it to). */
static int console_signin(struct pam_run *run, const char *tty)
{
	int rc;

	setenv("PAM_SERVICE", "login", 1);
	setenv("PAM_TTY", tty, 1);
	run->service = "nl-items";
	rc = pam_run_auth(disk_world, run);
	unsetenv("PAM_SERVICE");
	unsetenv("PAM_TTY");
	return rc;
}

/* A world after one sign-in (token cache, discovery and JWKS cache written), daemon stopped. */
static void disk_world_signed_in(char **state_snap, char **cache_snap)
{
	static const struct world_opts o = {.identity_extra = "reuse_window = 600"};
	struct pam_run run = {.user = "clinician", .as_user = "p9"};
	char path[PATH_MAX + 32];

	assert_int_equal(world_start(&o, &disk_world), 0);
	assert_int_equal(world_activate(disk_world), 0);
	assert_int_equal(console_signin(&run, "tty1"), PAM_SUCCESS);
	snprintf(path, sizeof(path), "%s/state/clinician", disk_world->dir);
	for (int i = 0; i < 500 && access(path, F_OK) != 0; i++) /* written as PAM hears "approved" */
		usleep(10 * 1000);
	world_kill_daemon(disk_world, SIGTERM);
	snprintf(path, sizeof(path), "%s/state", disk_world->dir);
	*state_snap = snapshot_dir(path);
	snprintf(path, sizeof(path), "%s/cache", disk_world->dir);
	*cache_snap = snapshot_dir(path);
	assert_non_null(strstr(*state_snap, "[clinician]{"));
	assert_non_null(strstr(*cache_snap, "[discovery.json]{"));
	assert_non_null(strstr(*cache_snap, "[jwks.json]{"));
}

/* Restart on the broken disk, sign in again, and check what changed. */
static void signin_on_broken_disk(const char *state_snap, const char *cache_snap)
{
	struct pam_run run = {.user = "clinician", .as_user = "p9"};
	const char *warn[] = {"nhslogind[warning]", NULL, NULL}, *err[] = {"nhslogind[error]", NULL, NULL};
	char path[PATH_MAX + 32], log[PATH_MAX + 32], old[PATH_MAX + 32], *snap;
	int n;

	snprintf(log, sizeof(log), "%s/daemon.log", disk_world->dir);
	snprintf(old, sizeof(old), "%s/daemon.log.1", disk_world->dir);
	assert_int_equal(rename(log, old), 0);
	assert_int_equal(world_restart_daemon(disk_world), 0);
	/* another tty: a full sign-in (not a reuse), whose store meets the broken disk */
	assert_int_equal(console_signin(&run, "tty2"), PAM_SUCCESS);
	assert_int_equal(run.phone_status, 200);
	world_kill_daemon(disk_world, SIGTERM);
	snprintf(path, sizeof(path), "%s/state", disk_world->dir);
	snap = snapshot_dir(path);
	assert_string_equal(snap, state_snap); /* nothing corrupted, no temp file left */
	free(snap);
	snprintf(path, sizeof(path), "%s/cache", disk_world->dir);
	snap = snapshot_dir(path);
	assert_string_equal(snap, cache_snap);
	free(snap);
	/* The failed write is one line naming the state directory. */
	snprintf(path, sizeof(path), "%s/state", disk_world->dir);
	warn[1] = err[1] = path;
	n = fu_count_lines(log, warn) + fu_count_lines(log, err);
	print_message("# log lines naming the state directory: %d\n", n);
	assert_true(n >= 1);
	assert_true(n <= 2); /* at start-up (not writable) and at the sign-in; not one per retry */
}

static void test_readonly_cache_dirs_signin_works_and_nothing_changes(void **state)
{
	char *state_snap = NULL, *cache_snap = NULL, path[PATH_MAX + 32];
	(void)state;

	if (geteuid() != 0)
		skip_because("needs root to make directories immutable");
	disk_world_signed_in(&state_snap, &cache_snap);
	snprintf(path, sizeof(path), "%s/state", disk_world->dir);
	if (set_immutable(path, true) != 0) {
		free(state_snap);
		free(cache_snap);
		skip_because("chattr +i not supported here: %s", strerror(errno));
	}
	snprintf(path, sizeof(path), "%s/cache", disk_world->dir);
	assert_int_equal(set_immutable(path, true), 0);
	signin_on_broken_disk(state_snap, cache_snap);
	free(state_snap);
	free(cache_snap);
}

/* Copy src's files into dst. */
static void copy_dir(const char *src, const char *dst)
{
	struct dirent **names = NULL;
	char from[2 * PATH_MAX], to[2 * PATH_MAX];
	int n = scandir(src, &names, NULL, alphasort);

	assert_true(n >= 0);
	for (int i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.') {
			size_t len = 0;
			char *text;
			snprintf(from, sizeof(from), "%s/%s", src, names[i]->d_name);
			snprintf(to, sizeof(to), "%s/%s", dst, names[i]->d_name);
			assert_non_null(text = fu_read_file(from, &len));
			int fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			assert_true(fd >= 0);
			assert_int_equal(write(fd, text, len), (ssize_t)len);
			close(fd);
			free(text);
		}
		free(names[i]);
	}
	free(names);
}

static void test_full_disk_signin_works_and_nothing_changes(void **state)
{
	char *state_snap = NULL, *cache_snap = NULL, path[PATH_MAX + 64], dir[PATH_MAX + 64];
	static const char chunk[512];
	(void)state;

	if (geteuid() != 0)
		skip_because("needs root to mount a small tmpfs");
	disk_world_signed_in(&state_snap, &cache_snap);
	/* state and cache become symlinks into a 64 KiB tmpfs that is then filled up. */
	snprintf(disk_mount, sizeof(disk_mount), "%s/full", disk_world->dir);
	assert_int_equal(mkdir(disk_mount, 0700), 0);
	if (mount("tmpfs", disk_mount, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0700") != 0) {
		int e = errno;
		disk_mount[0] = '\0';
		free(state_snap);
		free(cache_snap);
		skip_because("cannot mount a tmpfs here: %s", strerror(e));
	}
	const char *names[] = {"state", "cache"};
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", disk_world->dir, names[i]);
		snprintf(dir, sizeof(dir), "%s/%s", disk_mount, names[i]);
		assert_int_equal(mkdir(dir, 0700), 0);
		copy_dir(path, dir);
		snprintf(dir, sizeof(dir), "%s/%s.orig", disk_world->dir, names[i]);
		assert_int_equal(rename(path, dir), 0);
		snprintf(dir, sizeof(dir), "%s/%s", disk_mount, names[i]);
		assert_int_equal(symlink(dir, path), 0);
	}
	snprintf(path, sizeof(path), "%s/filler", disk_mount);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	while (write(fd, chunk, sizeof(chunk)) > 0)
		;
	assert_int_equal(errno, ENOSPC);
	while (write(fd, chunk, 1) > 0) /* the last bytes of the last page */
		;
	close(fd);
	signin_on_broken_disk(state_snap, cache_snap);
	free(state_snap);
	free(cache_snap);
}

/* ---- 8 and 9. no secret in any log line, nor left in the daemon's memory ---- */

/* A query parameter of url into out ("" if absent). */
static void query_param(const char *url, const char *name, char *out, size_t outlen)
{
	char pat[64];
	const char *p, *q = strchr(url, '?');
	size_t n;

	out[0] = '\0';
	if (q == NULL)
		return;
	for (p = q; p != NULL; p = strchr(p + 1, '&')) {
		snprintf(pat, sizeof(pat), "%s=", name);
		if (strncmp(p + 1, pat, strlen(pat)) == 0) {
			p += 1 + strlen(pat);
			n = strcspn(p, "&#");
			snprintf(out, outlen, "%.*s", (int)(n < outlen ? n : outlen - 1), p);
			return;
		}
	}
}

/* May this program read pid's memory? Root may; a person may not, as nhslogind makes itself not
 * dumpable. */
static bool memory_readable(pid_t pid)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/mem", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	close(fd);
	return true;
}

/* Does pid's writable memory (heap, stacks, anonymous maps) hold needle? */
static bool memory_holds(pid_t pid, const char *needle)
{
	char path[64], line[512], *maps;
	size_t nlen = strlen(needle);
	bool found = false;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/maps", (long)pid);
	if ((maps = fu_read_file(path, NULL)) == NULL)
		return false;
	snprintf(path, sizeof(path), "/proc/%ld/mem", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		free(maps);
		return false;
	}
	for (char *save = NULL, *l = strtok_r(maps, "\n", &save); l != NULL && !found;
	     l = strtok_r(NULL, "\n", &save)) {
		unsigned long lo, hi;
		char perms[8];
		snprintf(line, sizeof(line), "%s", l);
		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) != 3 || perms[0] != 'r' || perms[1] != 'w' ||
		    hi - lo > 512UL * 1024 * 1024)
			continue;
		char *buf = malloc(hi - lo);
		if (buf == NULL)
			continue;
		ssize_t got = pread(fd, buf, hi - lo, (off_t)lo);
		const char *at = got > 0 ? memmem(buf, (size_t)got, needle, nlen) : NULL;
		if (at != NULL) {
			found = true;
			if (getenv("NL_FAULTS_DEBUG") != NULL) { /* where, and the bytes before it */
				size_t off = (size_t)(at - buf), from = off > 96 ? off - 96 : 0;
				printf("# found at %s +0x%zx:", line, off);
				for (size_t k = from; k < off + nlen + 32 && k < (size_t)got; k++)
					printf("%c", buf[k] >= 0x20 && buf[k] < 0x7f ? buf[k] : '.');
				printf("\n");
			}
		}
		free(buf);
	}
	close(fd);
	free(maps);
	return found;
}

struct secret {
	const char *what;
	char value[2048];
};

static void test_no_secret_in_logs_or_left_in_daemon_memory(void **state)
{
	struct world_opts o = {.daemon_extra = "debug = yes", .mock_args = {"--debug", NULL}};
	struct world *w = NULL;
	struct started st = {0};
	struct mockproc_resp resp = {0};
	struct secret s[8] = {{"device_code", ""}, {"user_code", ""}, {"user_code without the dash", ""},
	                      {"state", ""},       {"nonce", ""},     {"code", ""}};
	char mocklog[] = "/tmp/nl-faults-mock.XXXXXX", daemonlog[PATH_MAX + 32], *az = NULL, *cb = NULL;
	int saved = dup(STDERR_FILENO), lfd = mkstemp(mocklog);
	json_t *m;
	(void)state;

	/* The mock logs to its stderr: point ours at a file while it starts. */
	assert_true(lfd >= 0 && saved >= 0);
	dup2(lfd, STDERR_FILENO);
	int r = world_start(&o, &w);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(lfd);
	assert_int_equal(r, 0);
	cur_world = w;

	start_pending(w, "clinician", &st);
	/* The scan can see a secret: while the flow is pending its device_code is in the table. */
	bool scan = memory_readable(w->daemon);
	if (scan)
		assert_true(memory_holds(w->daemon, st.device_code));
	snprintf(s[0].value, sizeof(s[0].value), "%s", st.device_code);
	snprintf(s[1].value, sizeof(s[1].value), "%s", st.user_code);
	snprintf(s[2].value, sizeof(s[2].value), "%.4s%s", st.user_code, st.user_code + 5);
	assert_int_equal(fu_phone_authorize(w, st.user_code, "p9", &az, &cb), 0);
	query_param(az, "state", s[3].value, sizeof(s[3].value));
	query_param(az, "nonce", s[4].value, sizeof(s[4].value));
	query_param(cb, "code", s[5].value, sizeof(s[5].value));
	assert_int_equal(mockproc_fetch("GET", cb, NULL, NULL, NULL, &resp), 0);
	assert_int_equal(resp.status, 200);
	mockproc_resp_free(&resp);
	m = wait_on(st.fd, st.device_code);
	assert_string_equal(fu_str(m, "status"), "approved");
	json_decref(m);
	close(st.fd);

	snprintf(daemonlog, sizeof(daemonlog), "%s/daemon.log", w->dir);
	assert_true(fu_file_contains(daemonlog, "[debug]")); /* debug lines were on */
	/* and the mock's log is read (it writes a request's line once the request is done) */
	for (int i = 0; i < 300 && !fu_file_contains(mocklog, "POST /token 200"); i++)
		usleep(10 * 1000);
	assert_true(fu_file_contains(mocklog, "POST /token 200"));
	for (int i = 0; i < 6; i++) {
		assert_true(strlen(s[i].value) >= 8);
		if (fu_file_contains(daemonlog, s[i].value) || fu_file_contains(mocklog, s[i].value))
			fail_msg("the %s appears in a log", s[i].what);
	}
	/* ID and access tokens and the client assertion are JWS: base64url of {" starts eyJ. */
	assert_false(fu_file_contains(daemonlog, "eyJ"));
	assert_false(fu_file_contains(mocklog, "eyJ"));

	unlink(mocklog);
	free(az);
	free(cb);
	if (!scan)
		skip_because("no secret in the logs; only root may read nhslogind's memory (not dumpable)");
	/* The daemon's own secret, the device_code, is wiped from its memory once the flow is
	 * collected and its connection closed. */
	usleep(200 * 1000);
	assert_status_answers(w);
	if (memory_holds(w->daemon, s[0].value))
		fail_msg("the device_code is still in nhslogind's memory after the flow ended");
		/* So are the ID token and the client assertion (JWS headers start eyJhbGci). Not under
		 * AddressSanitizer: its quarantine keeps freed blocks untouched for a while, and libcurl
		 * frees its receive buffer without wiping it, so a copy stays readable there. */
#if !defined(NL_TEST_ASAN)
	assert_false(memory_holds(w->daemon, "eyJhbGci"));
#endif
	/* state, nonce and code are reported, not asserted: copies of the /authorize URL and of the
	 * callback request sometimes remain on a libmicrohttpd thread's stack or in its connection
	 * pool (seen in about 1 run in 10); they are single use and dead once the flow has ended. */
	for (int i = 3; i < 6; i++)
		print_message("# after the flow: %s %s in nhslogind's memory\n", s[i].what,
		              memory_holds(w->daemon, s[i].value) ? "still" : "not");
	world_stop(w);
	cur_world = NULL;
}

/* ---- 3c. lockout ---- */

/* n remote sign-ins for user from hosts 203.0.113.1.. (what n pre-auth SSH connections make),
 * each on its own connection, held open in fds. */
static void hold_remote_flows(const struct world *w, const char *user, int n, bool one_host, int *fds)
{
	char line[256];
	for (int i = 0; i < n; i++) {
		assert_true((fds[i] = fu_connect(w->socket)) >= 0);
		snprintf(line, sizeof(line),
		         "{\"op\":\"start\",\"user\":\"%s\",\"service\":\"sshd\",\"rhost\":\"203.0.113.%d\","
		         "\"tty\":\"ssh\"}",
		         user, one_host ? 1 : i + 1);
		json_t *m = fu_call(fds[i], line, 5000);
		assert_string_equal(fu_str(m, "status"), "pending");
		json_decref(m);
	}
}

/* Three pending SSH sign-ins for clinician from an attacker's host (the per-user limit) do not stop
 * clinician signing in at the console. */
static void test_remote_flows_do_not_lock_out_the_console(void **state)
{
	struct world *w = NULL;
	struct pam_run run = {.service = "nl-login", .user = "clinician", .as_user = "p9"};
	int fds[3];
	json_t *m;
	(void)state;

	assert_int_equal(world_start(NULL, &w), 0);
	cur_world = w;
	assert_int_equal(world_activate(w), 0);
	hold_remote_flows(w, "clinician", 3, true, fds);
	/* A fourth from the same host is refused; the person at the console is not. */
	int extra = fu_connect(w->socket);
	m = fu_call(extra,
	            "{\"op\":\"start\",\"user\":\"clinician\",\"service\":\"sshd\","
	            "\"rhost\":\"203.0.113.1\",\"tty\":\"ssh\"}",
	            5000);
	assert_string_equal(fu_str(m, "error"), "limit");
	json_decref(m);
	close(extra);
	assert_int_equal(pam_run_auth(w, &run), PAM_SUCCESS);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	world_stop(w);
	cur_world = NULL;
}

/* The whole table held by remote sign-ins (max_flows = 8, from 8 hosts): the console still signs
 * in (the oldest remote one makes room, logged "evicted"); another remote one is "unavailable",
 * which the break-glass stack falls back on, not a denial. */
static void test_full_table_of_remote_flows_does_not_lock_out_the_console(void **state)
{
	static const struct world_opts o = {.daemon_extra = "max_flows = 8"};
	struct world *w = NULL;
	struct pam_run run = {.service = "nl-login", .user = "clinician", .as_user = "p9"};
	char log[PATH_MAX];
	int fds[8];
	(void)state;

	assert_int_equal(world_start(&o, &w), 0);
	cur_world = w;
	assert_int_equal(world_activate(w), 0);
	hold_remote_flows(w, "nurse", 8, false, fds);
	assert_int_equal(pam_run_auth(w, &run), PAM_SUCCESS);
	snprintf(log, sizeof(log), "%s/daemon.log", w->dir);
	assert_true(fu_file_contains(log, "evicted"));
	/* Refill the room the sign-in left, then a remote sign-in (with rhost) finds the table full. */
	int more = fu_connect(w->socket);
	json_t *m = fu_call(more,
	                    "{\"op\":\"start\",\"user\":\"nurse\",\"service\":\"sshd\","
	                    "\"rhost\":\"203.0.113.99\",\"tty\":\"ssh\"}",
	                    5000);
	json_decref(m);
	m = fu_call(more,
	            "{\"op\":\"start\",\"user\":\"nurse\",\"service\":\"sshd\","
	            "\"rhost\":\"203.0.113.98\",\"tty\":\"ssh\"}",
	            5000);
	assert_string_equal(fu_str(m, "error"), "unavailable");
	json_decref(m);
	close(more);
	for (int i = 0; i < 8; i++)
		close(fds[i]);
	world_stop(w);
	cur_world = NULL;
}

/* ---- 3b. a fake daemon ---- */

#define NOBODY 65534

/* As nobody: listen on path and answer every request "approved for clinician", until killed. */
static void fake_daemon(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	static const char yes[] =
	    "{\"ok\":true,\"status\":\"approved\",\"user\":\"clinician\",\"reused\":true}\n";
	int lfd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	alarm(60);
	if (setgroups(0, NULL) != 0 || setresgid(NOBODY, NOBODY, NOBODY) != 0 ||
	    setresuid(NOBODY, NOBODY, NOBODY) != 0)
		_exit(3);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if ((lfd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 8) != 0)
		_exit(4);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		char buf[4096];
		while (fd >= 0 && read(fd, buf, sizeof(buf)) > 0)
			if (write(fd, yes, sizeof(yes) - 1) < 0)
				break;
		if (fd >= 0)
			close(fd);
	}
}

/* Another uid binds the socket path first (a directory others can write to, as /tmp) and answers
 * "approved": the module checks who it talks to and does not believe it. */
static void test_fake_daemon_on_the_socket_path_is_not_believed(void **state)
{
	struct world *w = NULL;
	struct pam_run run = {.service = "nl-login", .user = "clinician"};
	struct stat st;
	pid_t fake;
	(void)state;

	if (geteuid() != 0)
		skip_because("needs root to run the fake daemon as another uid");
	assert_int_equal(world_start(NULL, &w), 0);
	cur_world = w;
	assert_int_equal(world_activate(w), 0);
	world_kill_daemon(w, SIGKILL);
	unlink(w->socket);
	char rundir[sizeof(w->socket)];
	snprintf(rundir, sizeof(rundir), "%s", w->socket);
	*strrchr(rundir, '/') = '\0'; /* the socket's directory */
	assert_int_equal(chmod(rundir, 01777), 0);
	fake = fork();
	assert_true(fake >= 0);
	if (fake == 0)
		fake_daemon(w->socket);
	for (int i = 0; i < 100 && lstat(w->socket, &st) != 0; i++)
		usleep(50 * 1000);
	assert_int_equal(lstat(w->socket, &st), 0);
	assert_int_equal(st.st_uid, NOBODY);
	assert_int_equal(pam_run_auth(w, &run), PAM_AUTHINFO_UNAVAIL);
	assert_true(pam_run_saw_error(&run, "not available"));
	/* nhsloginctl does not believe it either: no flows, cancels or test sign-ins from it. */
	{
		const char *top = getenv("NL_TOP_BUILDDIR");
		char cmd[PATH_MAX * 3], out[2048] = "";
		size_t n;
		FILE *p;
		int st_ctl;

		snprintf(cmd, sizeof(cmd), "'%s/nhsloginctl' --config '%s' --socket '%s' flows 2>&1",
		         top != NULL ? top : ".", w->conf, w->socket);
		assert_non_null(p = popen(cmd, "r"));
		n = fread(out, 1, sizeof(out) - 1, p);
		out[n] = '\0';
		st_ctl = pclose(p);
		print_message("# nhsloginctl: %s", out);
		assert_true(WIFEXITED(st_ctl));
		assert_int_equal(WEXITSTATUS(st_ctl), 3);
		assert_non_null(strstr(out, "not by nhslogind"));
	}
	kill(fake, SIGKILL);
	waitpid(fake, NULL, 0);
	chmod(rundir, 0755);
	world_stop(w);
	cur_world = NULL;
}

/* ---- 3c. what the terminal shows (issue 11, finding 7) ---- */

/* A daemon of ours (root, so the module believes it) that hands out a code and URIs with terminal
 * controls in them - C0 (ESC, BEL), a UTF-8 C1 control (CSI) and a right-to-left override - then
 * denies. Answers until killed. */
static void unfiltered_daemon(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	static const char start[] =
	    "{\"ok\":true,\"status\":\"pending\",\"flow\":\"f-1\",\"device_code\":\"dc\","
	    "\"user_code\":\"\\u001b[2JKPWD-RHXT\\u0007\","
	    "\"verification_uri\":\"https://evil.example/d\\u001b]0;owned\\u0007\\u009b31m\\u202e\\u007f\","
	    "\"verification_uri_complete\":\"https://evil.example/d?code=\\u001b[5m\",\"expires_in\":30,"
	    "\"interval\":1}\n";
	static const char denied[] = "{\"ok\":true,\"status\":\"denied\",\"reason\":\"denied\"}\n";
	static const char ok[] = "{\"ok\":true}\n";
	int lfd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	alarm(60);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if ((lfd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 8) != 0)
		_exit(4);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		char buf[4096];
		ssize_t n;
		while (fd >= 0 && (n = read(fd, buf, sizeof(buf) - 1)) > 0) {
			buf[n] = '\0';
			const char *a = strstr(buf, "\"start\"") != NULL  ? start
			                : strstr(buf, "\"wait\"") != NULL ? denied
			                                                  : ok;
			if (write(fd, a, strlen(a)) < 0)
				break;
		}
		if (fd >= 0)
			close(fd);
	}
}

/* Whatever the daemon (or a provider behind it) sends, the module shows the person printable ASCII:
 * every control character and every other byte of the code and URIs is a '?'. */
static void test_module_shows_no_terminal_controls_from_the_daemon(void **state)
{
	struct world *w = NULL;
	struct pam_run run = {.service = "nl-short", .user = "clinician"};
	struct stat st;
	pid_t fake;
	(void)state;

	assert_int_equal(world_start(NULL, &w), 0);
	cur_world = w;
	assert_int_equal(world_activate(w), 0);
	world_kill_daemon(w, SIGKILL);
	unlink(w->socket);
	fake = fork();
	assert_true(fake >= 0);
	if (fake == 0)
		unfiltered_daemon(w->socket);
	for (int i = 0; i < 100 && lstat(w->socket, &st) != 0; i++)
		usleep(50 * 1000);
	assert_int_equal(pam_run_auth(w, &run), PAM_AUTH_ERR);
	kill(fake, SIGKILL);
	waitpid(fake, NULL, 0);
	assert_true(run.n_info >= 1);
	const char *text = run.infos[0];
	print_message("# shown: %s\n", text);
	assert_non_null(strstr(text, "?[2JKPWD-RHXT?"));
	assert_non_null(strstr(text, "https://evil.example/d?]0;owned???31m????"));
	for (const char *p = text; *p != '\0'; p++)
		if (((unsigned char)*p < 0x20 && *p != '\n') || (unsigned char)*p >= 0x7f)
			fail_msg("byte 0x%02x at %zu of what the terminal shows", (unsigned char)*p,
			         (size_t)(p - text));
	world_stop(w);
	cur_world = NULL;
}

int main(void)
{
	harness_under_pam_wrapper();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_readonly_cache_dirs_signin_works_and_nothing_changes,
	                              disk_teardown),
	    cmocka_unit_test_teardown(test_full_disk_signin_works_and_nothing_changes, disk_teardown),
	    cmocka_unit_test_teardown(test_no_secret_in_logs_or_left_in_daemon_memory, world_teardown),
	    cmocka_unit_test_teardown(test_fake_daemon_on_the_socket_path_is_not_believed, world_teardown),
	    cmocka_unit_test_teardown(test_remote_flows_do_not_lock_out_the_console, world_teardown),
	    cmocka_unit_test_teardown(test_full_table_of_remote_flows_does_not_lock_out_the_console,
	                              world_teardown),
	    cmocka_unit_test_teardown(test_module_shows_no_terminal_controls_from_the_daemon, world_teardown),
	};
	alarm(240); /* the whole program times out on its own */
	return cmocka_run_group_tests_name("faults_host", tests, NULL, NULL);
}
