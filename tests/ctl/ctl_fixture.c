/* The nhsloginctl tests' fixture, shared by the tests/ctl/test_ctl_*.c programs: one world
 * (nhslogin-mock + nhslogind), a client key, two TLS pairs and three fake providers, started once a
 * program, and the runner of nhsloginctl as a child process. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "harness.h"
#include "nl_b64.h"
#include "nl_err.h"
#include "nl_proto.h"
#include "nl_json.h"
#include "nl_time.h"
#include "testsrv.h"
#include "ctl_fixture.h"

struct ctl_fixture fx;

/* ---- the shared fixtures: one world, a client key, two TLS pairs, two fake providers ---- */

char *read_all(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 65536);
	size_t n;
	if (f == NULL || buf == NULL) {
		if (f != NULL)
			fclose(f);
		free(buf);
		return NULL;
	}
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* A discovery document served by a testsrv: issuer and algorithms as given, endpoints on url. */
static struct testsrv *fake_provider(char *doc, size_t doclen, char *url, size_t urllen)
{
	struct testsrv_route route = {.method = "GET",
	                              .path = "/.well-known/openid-configuration",
	                              .kind = TESTSRV_FIXED,
	                              .content_type = "application/json",
	                              .body = doc};
	struct testsrv *s;
	char *u;

	doc[0] = '\0';
	if ((s = testsrv_start(&route, 1, NULL, NULL)) == NULL || (u = testsrv_url(s, "")) == NULL)
		return NULL;
	snprintf(url, urllen, "%s", u);
	free(u);
	(void)doclen;
	return s;
}

static void fill_doc(char *doc, size_t len, const char *url, const char *issuer, const char *algs)
{
	snprintf(
	    doc, len,
	    "{\"issuer\":\"%s\",\"authorization_endpoint\":\"%s/authorize\",\"token_endpoint\":\"%s/token\","
	    "\"jwks_uri\":\"%s/jwks\",\"id_token_signing_alg_values_supported\":%s,"
	    "\"token_endpoint_auth_methods_supported\":[\"private_key_jwt\"]}",
	    issuer, url, url, url, algs);
}

static int tls_pair(const char *name)
{
	char *cert = NULL, *key = NULL, path[128];
	int r = -1;

	if (testsrv_selfsigned("127.0.0.1", &cert, &key) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/%s.crt", fx.dir, name);
	if (test_write_file(path, 0644, cert) == 0) {
		snprintf(path, sizeof(path), "%s/%s.key", fx.dir, name);
		r = test_write_file(path, 0600, key);
	}
	free(cert);
	free(key);
	return r;
}

/* A copy of a fixture file with another mode. */
static int copy_mode(const char *from, const char *to, mode_t mode)
{
	char path[128], *text;
	int r;

	snprintf(path, sizeof(path), "%s/%s", fx.dir, from);
	if ((text = read_all(path)) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/%s", fx.dir, to);
	r = test_write_file(path, mode, text);
	free(text);
	return r;
}

int group_setup(void **state)
{
	char *pub = NULL, *keypath = NULL;
	cjose_jwk_t *jwk = NULL;

	(void)state;
	if (world_start(NULL, &fx.w) != 0)
		fail_msg("could not start nhslogin-mock and nhslogind");
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/nl-ctltest.XXXXXX");
	if (mkdtemp(fx.dir) == NULL || mockproc_client_key(fx.dir, "client", &jwk, &pub, &keypath) != 0 ||
	    (fx.key_pem = read_all(keypath)) == NULL || tls_pair("tls") != 0 || tls_pair("other") != 0)
		fail_msg("could not make the fixtures");
	cjose_jwk_release(jwk);
	free(pub);
	free(keypath);
	if (copy_mode("tls.key", "loose.key", 0644) != 0)
		fail_msg("could not copy the TLS key");
	fx.foreign =
	    fake_provider(fx.foreign_doc, sizeof(fx.foreign_doc), fx.foreign_url, sizeof(fx.foreign_url));
	fx.rs256 = fake_provider(fx.rs256_doc, sizeof(fx.rs256_doc), fx.rs256_url, sizeof(fx.rs256_url));
	fx.nojwks = fake_provider(fx.nojwks_doc, sizeof(fx.nojwks_doc), fx.nojwks_url, sizeof(fx.nojwks_url));
	if (fx.foreign == NULL || fx.rs256 == NULL || fx.nojwks == NULL)
		fail_msg("could not start the fake providers");
	/* The body is read when a request comes, so it can name the port chosen at start. */
	fill_doc(fx.foreign_doc, sizeof(fx.foreign_doc), fx.foreign_url, "http://127.0.0.1:1/other",
	         "[\"RS512\"]");
	fill_doc(fx.rs256_doc, sizeof(fx.rs256_doc), fx.rs256_url, fx.rs256_url, "[\"RS256\"]");
	fill_doc(fx.nojwks_doc, sizeof(fx.nojwks_doc), fx.nojwks_url, fx.nojwks_url, "[\"RS512\"]");
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void rm_tree(const char *dir)
{
	if (dir[0] != '\0' && getenv("NL_KEEP_TEST_DIR") == NULL)
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int group_teardown(void **state)
{
	(void)state;
	testsrv_stop(fx.foreign);
	testsrv_stop(fx.rs256);
	testsrv_stop(fx.nojwks);
	world_stop(fx.w);
	rm_tree(fx.dir);
	free(fx.key_pem);
	return 0;
}

/* ---- running nhsloginctl ---- */

static const char *ctl_path(void)
{
	static char path[512];
	const char *top = getenv("NL_TOP_BUILDDIR");
	snprintf(path, sizeof(path), "%s/nhsloginctl", top != NULL && top[0] != '\0' ? top : ".");
	return path;
}

/* Start nhsloginctl with args (NULL-terminated); *out_fd and *err_fd read its stdout and stderr. */
pid_t spawn(const char *const *args, int *out_fd, int *err_fd)
{
	const char *argv[24];
	int o[2], e[2];
	pid_t parent = getpid(), pid;
	size_t n = 0;

	argv[n++] = ctl_path();
	for (size_t i = 0; args[i] != NULL && n < 23; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	assert_int_equal(pipe2(o, O_CLOEXEC), 0);
	assert_int_equal(pipe2(e, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		dup2(o[1], STDOUT_FILENO);
		dup2(e[1], STDERR_FILENO);
		setenv("LC_ALL", "C", 1);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(o[1]);
	close(e[1]);
	*out_fd = o[0];
	*err_fd = e[0];
	return pid;
}

/* Read stdout and stderr until both close or the deadline; then reap (killing if needed). */
void collect(pid_t pid, int ofd, int efd, struct run *r, int64_t deadline)
{
	struct pollfd p[2] = {{.fd = ofd, .events = POLLIN}, {.fd = efd, .events = POLLIN}};
	int st = 0;

	while (p[0].fd >= 0 || p[1].fd >= 0) {
		int left = (int)(deadline - nl_mono_ms());
		if (left <= 0 || poll(p, 2, left) <= 0)
			break;
		for (int i = 0; i < 2; i++) {
			char *buf = i == 0 ? r->out : r->err;
			size_t *len = i == 0 ? &r->outlen : &r->errlen,
			       cap = i == 0 ? sizeof(r->out) : sizeof(r->err);
			ssize_t n;
			if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(p[i].fd, buf + *len, cap - 1 - *len);
			if (n <= 0) {
				close(p[i].fd);
				p[i].fd = -1;
				continue;
			}
			*len += (size_t)n;
			buf[*len] = '\0';
		}
	}
	for (int i = 0; i < 2; i++)
		if (p[i].fd >= 0)
			close(p[i].fd);
	/* Its pipes close a moment before it can be reaped. */
	while (waitpid(pid, &st, WNOHANG) != pid) {
		if (nl_mono_ms() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			r->status = -1;
			return;
		}
		usleep(2000);
	}
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

struct run *run_ctl(const char *const *args)
{
	struct run *r = calloc(1, sizeof(*r));
	int ofd, efd;
	pid_t pid;

	assert_non_null(r);
	pid = spawn(args, &ofd, &efd);
	collect(pid, ofd, efd, r, nl_mono_ms() + RUN_TIMEOUT_MS);
	return r;
}

/* As TAP comments: a line of output starting "ok" must not read as a result. */
static void print_lines(const char *what, const char *text)
{
	print_message("# %s:\n", what);
	for (const char *p = text; *p != '\0';) {
		size_t n = strcspn(p, "\n");
		print_message("#   %.*s\n", (int)n, p);
		p += n + (p[n] == '\n');
	}
}

void print_run(const struct run *r)
{
	print_message("# exit %d\n", r->status);
	print_lines("stdout", r->out);
	print_lines("stderr", r->err);
}

json_t *parse_json_line(const char *text)
{
	json_t *m = NULL;
	size_t n = strcspn(text, "\n");
	if (nl_json_parse(text, n, NL_JSON_MAX_SIZE, NL_JSON_MAX_DEPTH, true, &m, NULL, 0) != 0)
		fail_msg("not one JSON object: %.*s", (int)n, text);
	return m;
}
