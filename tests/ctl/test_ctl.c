/* nhsloginctl as a program: `check` against a table of misconfigurations (each must produce its
 * own line and exit 1) and a good configuration (exit 0, "ok"); status, flows, flows cancel, flush
 * and login against a running world (tests/lib/harness.c: nhslogin-mock + nhslogind); exit 3
 * without a daemon; --json output that parses. */
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

#define RUN_TIMEOUT_MS 30000
#define OUT_MAX        (256 * 1024)

/* ---- the shared fixtures: one world, a client key, two TLS pairs, two fake providers ---- */

static struct {
	struct world *w;
	char dir[64];  /* fixtures: keys, certificates */
	char *key_pem; /* the client key's PEM text */
	struct testsrv *foreign, *rs256, *nojwks;
	char foreign_url[128], rs256_url[128], nojwks_url[128];
	char foreign_doc[1024], rs256_doc[1024], nojwks_doc[1024];
} fx;

static int write_file(const char *path, mode_t mode, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	size_t len = strlen(text);
	if (fd < 0)
		return -1;
	if (write(fd, text, len) != (ssize_t)len || fchmod(fd, mode) != 0) {
		close(fd);
		return -1;
	}
	return close(fd);
}

static char *read_all(const char *path)
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
	if (write_file(path, 0644, cert) == 0) {
		snprintf(path, sizeof(path), "%s/%s.key", fx.dir, name);
		r = write_file(path, 0600, key);
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
	r = write_file(path, mode, text);
	free(text);
	return r;
}

static int group_setup(void **state)
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

static void rm_tree(const char *dir)
{
	if (dir[0] != '\0' && getenv("NL_KEEP_TEST_DIR") == NULL)
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int group_teardown(void **state)
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

struct run {
	int status; /* exit status, or -1 if killed */
	char out[OUT_MAX];
	size_t outlen;
	char err[8192];
	size_t errlen;
};

static const char *ctl_path(void)
{
	static char path[512];
	const char *top = getenv("NL_TOP_BUILDDIR");
	snprintf(path, sizeof(path), "%s/nhsloginctl", top != NULL && top[0] != '\0' ? top : ".");
	return path;
}

/* Start nhsloginctl with args (NULL-terminated); *out_fd and *err_fd read its stdout and stderr. */
static pid_t spawn(const char *const *args, int *out_fd, int *err_fd)
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
static void collect(pid_t pid, int ofd, int efd, struct run *r, int64_t deadline)
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

static struct run *run_ctl(const char *const *args)
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

static void print_run(const struct run *r)
{
	print_message("# exit %d\n", r->status);
	print_lines("stdout", r->out);
	print_lines("stderr", r->err);
}

static json_t *parse_json_line(const char *text)
{
	json_t *m = NULL;
	size_t n = strcspn(text, "\n");
	if (nl_json_parse(text, n, NL_JSON_MAX_SIZE, NL_JSON_MAX_DEPTH, true, &m, NULL, 0) != 0)
		fail_msg("not one JSON object: %.*s", (int)n, text);
	return m;
}

/* ---- check: the table of cases ---- */

enum issuer_kind { ISS_MOCK = 0, ISS_FOREIGN, ISS_RS256, ISS_NOJWKS, ISS_LITERAL };

struct check_case {
	const char *name;
	enum issuer_kind issuer_kind;
	const char *issuer;         /* ISS_LITERAL */
	const char *env_name;       /* default local */
	const char *client_id;      /* default nhslogin-test */
	const char *client_key;     /* default DIR/client.key.pem (a path relative to DIR) */
	mode_t key_mode;            /* default 0600 */
	mode_t conf_mode;           /* default 0644 */
	const char *redirect_uri;   /* default http://127.0.0.1:8765/callback */
	const char *env_extra;      /* lines at the end of the environment file */
	const char *bridge_extra;   /* lines in [bridge]; FXD is the fixtures directory */
	const char *map_text;       /* default: a good map */
	const char *identity_extra; /* lines after [identity] (may open [ldap]) */
	const char *extra_arg;      /* e.g. --offline or --json */
	int exit_code;
	const char *expect;  /* stdout must contain this (DIR: the case's directory, FXD: fixtures) */
	const char *expect2; /* and this, if set */
};

static const struct check_case cases[] = {
    {.name = "check_accepts_the_good_configuration", .exit_code = 0, .expect = "ok"},
    {.name = "check_reports_unknown_key_with_file_and_line",
     .env_extra = "frobnicate = 1",
     .exit_code = 1,
     .expect = "error: DIR/environments/local.conf:5: unknown key 'frobnicate'"},
    {.name = "check_reports_missing_client_key_file",
     .client_key = "missing.key.pem",
     .exit_code = 1,
     .expect = "error: DIR/environments/local.conf:3: client_key: DIR/missing.key.pem: cannot open"},
    {.name = "check_reports_client_key_mode_0644",
     .key_mode = 0644,
     .exit_code = 1,
     .expect = "error: client_key: DIR/client.key.pem: holds a secret but group/other may access it "
               "(mode 0644)"},
    {.name = "check_reports_group_writable_config",
     .conf_mode = 0664,
     .exit_code = 1,
     .expect = "error: DIR/nhslogin.conf: is group- or world-writable (mode 0664)"},
    {.name = "check_reports_map_file_bad_check_digit",
     .map_text = "clinician 9686368973\nnurse 9686368907\n",
     .exit_code = 1,
     .expect = "error: map_file: DIR/nhslogin.map:2: NHS number has a wrong check digit"},
    {.name = "check_reports_scope_without_the_mapped_claim",
     .env_extra = "scope = openid email",
     .exit_code = 1,
     .expect = "error: scope: DIR/environments/local.conf: scope = openid email has no \"profile\""},
    {.name = "check_reports_placeholder_client_id",
     .client_id = "REPLACE-WITH-YOUR-CLIENT-ID",
     .exit_code = 1,
     .expect = "error: DIR/environments/local.conf: client_id is still the placeholder"},
    {.name = "check_reports_http_issuer_on_a_remote_host",
     .issuer_kind = ISS_LITERAL,
     .issuer = "http://idp.example.org",
     .exit_code = 1,
     .expect = "error: DIR/environments/local.conf:1: ",
     .expect2 = "plain http is allowed only on loopback"},
    {.name = "check_reports_unreachable_issuer_with_curl_reason",
     .issuer_kind = ISS_LITERAL,
     .issuer = "http://127.0.0.1:1",
     .exit_code = 1,
     .expect = "error: issuer http://127.0.0.1:1 (DIR/environments/local.conf) unreachable: GET "
               "http://127.0.0.1:1/.well-known/openid-configuration: ",
     .expect2 = "onnect"},
    {.name = "check_reports_discovery_issuer_mismatch",
     .issuer_kind = ISS_FOREIGN,
     .exit_code = 1,
     .expect = "error: issuer mismatch: discovery ",
     .expect2 = "says issuer \"http://127.0.0.1:1/other\", but issuer in DIR/environments/local.conf is"},
    {.name = "check_reports_discovery_without_rs512",
     .issuer_kind = ISS_RS256,
     .exit_code = 1,
     .expect = "no RS512 in id_token_signing_alg_values_supported [\"RS256\"]"},
    {.name = "check_reports_missing_jwks",
     .issuer_kind = ISS_NOJWKS,
     .exit_code = 1,
     .expect = "error: provider http://127.0.0.1:",
     .expect2 = "jwks: HTTP 404 from http://127.0.0.1:"},
    {.name = "check_reports_tls_cert_without_tls_key",
     .bridge_extra = "tls_cert = FXD/tls.crt",
     .exit_code = 1,
     .expect = "error: DIR/nhslogin.conf: [bridge] tls_cert and tls_key go together"},
    {.name = "check_reports_mismatched_tls_cert_and_key",
     .bridge_extra = "tls_cert = FXD/tls.crt\ntls_key = FXD/other.key",
     .redirect_uri = "https://127.0.0.1:8765/callback",
     .exit_code = 1,
     .expect = "error: tls_cert FXD/tls.crt and tls_key FXD/other.key do not match"},
    {.name = "check_reports_tls_key_readable_by_others",
     .bridge_extra = "tls_cert = FXD/tls.crt\ntls_key = FXD/loose.key",
     .redirect_uri = "https://127.0.0.1:8765/callback",
     .exit_code = 1,
     .expect = "error: tls_key: FXD/loose.key: holds a secret but group/other may access it (mode 0644)"},
    {.name = "check_accepts_a_matching_tls_pair",
     .bridge_extra = "tls_cert = FXD/tls.crt\ntls_key = FXD/tls.key",
     .redirect_uri = "https://127.0.0.1:8765/callback",
     .exit_code = 0,
     .expect = "ok"},
    {.name = "check_reports_redirect_uri_without_a_path",
     .redirect_uri = "http://127.0.0.1:8765/d",
     .exit_code = 1,
     .expect = "error: redirect_uri http://127.0.0.1:8765/d (DIR/environments/local.conf): needs its own "
               "path"},
    {.name = "check_warns_loopback_public_url_outside_local",
     .env_name = "sandpit",
     .exit_code = 0,
     .expect = "warning: [bridge] public_url http://127.0.0.1:8765 is a loopback address but environment "
               "is sandpit",
     .expect2 = "ok, "},
    {.name = "check_warns_plaintext_and_anonymous_directory",
     .identity_extra = "source = ldap\n[ldap]\nuri = ldap://127.0.0.1:1\nbase = dc=example,dc=org\n"
                       "filter = (uid=%s)\nattribute = uid\ntls = none",
     .extra_arg = "--offline",
     .exit_code = 0,
     .expect = "warning: [ldap] tls = none: the directory's answers (which account a person signs in "
               "to) cross the network in plaintext to ldap://127.0.0.1:1; use starttls or ldaps",
     .expect2 = "ok, 3 warnings"},
    {.name = "check_reports_unreachable_directory",
     .identity_extra = "source = ldap\n[ldap]\nuri = ldap://127.0.0.1:1\nbase = dc=example,dc=org\n"
                       "filter = (uid=%s)\nattribute = uid\ntimeout = 2",
     .exit_code = 1,
     .expect = "error: [ldap] uri ldap://127.0.0.1:1, base dc=example,dc=org: directory: StartTLS failed: "
               "Can't contact LDAP server"},
    {.name = "check_offline_does_not_contact_the_issuer",
     .issuer_kind = ISS_LITERAL,
     .issuer = "http://127.0.0.1:1",
     .extra_arg = "--offline",
     .exit_code = 0,
     .expect = "ok"},
    {.name = "check_warns_a_proxy_in_front_without_trusted_proxies",
     .bridge_extra = "public_url = https://signin.example.org",
     .redirect_uri = "https://signin.example.org/callback",
     .exit_code = 0,
     .expect = "warning: [bridge] public_url https://signin.example.org is https but listen 127.0.0.1:8765 "
               "has no TLS, so a proxy is in front",
     .expect2 = "set trusted_proxies"},
    {.name = "check_accepts_a_proxy_in_front_with_trusted_proxies",
     .bridge_extra = "public_url = https://signin.example.org\ntrusted_proxies = 127.0.0.1",
     .redirect_uri = "https://signin.example.org/callback",
     .exit_code = 0,
     .expect = "ok"},
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

/* "DIR" in pattern becomes dir, "FXD" the fixtures directory. */
static void expand(const char *pattern, const char *dir, char *out, size_t len)
{
	size_t n = 0;
	for (const char *p = pattern; *p != '\0' && n + 1 < len;) {
		if (strncmp(p, "DIR", 3) == 0 || strncmp(p, "FXD", 3) == 0) {
			n += (size_t)snprintf(out + n, len - n, "%s", p[0] == 'D' ? dir : fx.dir);
			p += 3;
		} else {
			out[n++] = *p++;
		}
	}
	out[n < len ? n : len - 1] = '\0';
}

static const char *case_issuer(const struct check_case *c)
{
	switch (c->issuer_kind) {
	case ISS_FOREIGN:
		return fx.foreign_url;
	case ISS_RS256:
		return fx.rs256_url;
	case ISS_NOJWKS:
		return fx.nojwks_url;
	case ISS_LITERAL:
		return c->issuer;
	case ISS_MOCK:
		break;
	}
	return mockproc_issuer(fx.w->mock);
}

/* Write the case's configuration into dir. */
static void write_case(const struct check_case *c, const char *dir)
{
	const char *env = c->env_name != NULL ? c->env_name : "local";
	char path[256], bridge[512] = "", *text = NULL;

	snprintf(path, sizeof(path), "%s/environments", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	if (c->bridge_extra != NULL)
		expand(c->bridge_extra, dir, bridge, sizeof(bridge));
	assert_true(
	    asprintf(&text,
	             "environment = %s\nenvironments_dir = environments\n"
	             "[daemon]\nsocket = %s/run/nhslogind.sock\nstate_dir = %s/state\ncache_dir = %s/cache\n"
	             "[bridge]\nlisten = 127.0.0.1:8765\n%s\n"
	             "[identity]\nclaim = nhs_number\nmap_file = nhslogin.map\n%s\n",
	             env, dir, dir, dir, bridge, c->identity_extra != NULL ? c->identity_extra : "") > 0);
	snprintf(path, sizeof(path), "%s/nhslogin.conf", dir);
	assert_int_equal(write_file(path, c->conf_mode ? c->conf_mode : 0644, text), 0);
	free(text);
	assert_true(asprintf(&text,
	                     "issuer = %s\nclient_id = %s\nclient_key = %s/%s\nredirect_uri = %s\n%s\n",
	                     case_issuer(c), c->client_id ? c->client_id : "nhslogin-test", dir,
	                     c->client_key ? c->client_key : "client.key.pem",
	                     c->redirect_uri ? c->redirect_uri : "http://127.0.0.1:8765/callback",
	                     c->env_extra ? c->env_extra : "") > 0);
	snprintf(path, sizeof(path), "%s/environments/%s.conf", dir, env);
	assert_int_equal(write_file(path, 0644, text), 0);
	free(text);
	snprintf(path, sizeof(path), "%s/client.key.pem", dir);
	assert_int_equal(write_file(path, c->key_mode ? c->key_mode : 0600, fx.key_pem), 0);
	snprintf(path, sizeof(path), "%s/nhslogin.map", dir);
	assert_int_equal(
	    write_file(path, 0644, c->map_text ? c->map_text : "clinician 9686368973\nnurse 9686368906\n"),
	    0);
}

static bool has_line_with(const char *out, const char *want)
{
	return strstr(out, want) != NULL;
}

static void test_check_case(void **state)
{
	const struct check_case *c = *state;
	char dir[] = "/tmp/nl-ctlcheck.XXXXXX", conf[128], want[1024];
	const char *args[6] = {"--config", conf, "check", c->extra_arg, NULL};
	struct run *r;

	assert_non_null(mkdtemp(dir));
	write_case(c, dir);
	snprintf(conf, sizeof(conf), "%s/nhslogin.conf", dir);
	r = run_ctl(args);
	if (r->status != c->exit_code)
		print_run(r);
	assert_int_equal(r->status, c->exit_code);
	expand(c->expect, dir, want, sizeof(want));
	if (!has_line_with(r->out, want))
		print_run(r);
	assert_true(has_line_with(r->out, want));
	if (c->expect2 != NULL) {
		expand(c->expect2, dir, want, sizeof(want));
		if (!has_line_with(r->out, want))
			print_run(r);
		assert_true(has_line_with(r->out, want));
	}
	if (c->exit_code == 1) {
		/* exactly the one problem, and the summary says so */
		assert_non_null(strstr(r->out, "\n1 problem\n"));
	} else if (strcmp(c->expect, "ok") == 0) {
		assert_true(strncmp(r->out + r->outlen - 3, "ok\n", 3) == 0 ||
		            strstr(r->out, "\nok, ") != NULL || strncmp(r->out, "ok", 2) == 0);
		assert_null(strstr(r->out, "error:"));
	}
	free(r);
	rm_tree(dir);
}

static void host_path(const char *name, char *out, size_t len);

static void test_check_good_config_prints_only_ok(void **state)
{
	/* accounts that exist here, and a host without the module: nothing to warn about */
	static const struct check_case good = {.name = "good", .map_text = "root 9686368973\n"};
	char dir[] = "/tmp/nl-ctlcheck.XXXXXX", conf[128], pamd[1024];
	const char *args[] = {"--config", conf, "--pamd", pamd, "check", NULL};
	struct run *r;

	(void)state;
	assert_non_null(mkdtemp(dir));
	write_case(&good, dir);
	host_path("pamd-none", pamd, sizeof(pamd));
	snprintf(conf, sizeof(conf), "%s/nhslogin.conf", dir);
	r = run_ctl(args);
	if (strcmp(r->out, "ok\n") != 0)
		print_run(r);
	assert_string_equal(r->out, "ok\n");
	assert_int_equal(r->status, 0);
	free(r);
	rm_tree(dir);
}

static void test_check_json_lists_findings(void **state)
{
	static const struct check_case c = {.name = "json", .client_id = "REPLACE-ME", .map_text = "x\n"};
	char dir[] = "/tmp/nl-ctlcheck.XXXXXX", conf[128];
	const char *args[] = {"--config", conf, "--json", "check", NULL};
	struct run *r;
	json_t *m;

	(void)state;
	assert_non_null(mkdtemp(dir));
	write_case(&c, dir);
	snprintf(conf, sizeof(conf), "%s/nhslogin.conf", dir);
	r = run_ctl(args);
	assert_int_equal(r->status, 1);
	m = parse_json_line(r->out);
	assert_true(json_is_false(json_object_get(m, "ok")));
	assert_int_equal(json_array_size(json_object_get(m, "findings")), 1);
	assert_string_equal(nl_json_str(json_array_get(json_object_get(m, "findings"), 0), "level"), "error");
	json_decref(m);
	free(r);
	rm_tree(dir);
}

/* The test world's map names accounts (clinician, nurse) this computer may not have: warnings
 * about those, and nothing else. */
static void test_check_world_config_is_ok(void **state)
{
	char pamd[1024];
	const char *args[] = {"--config", fx.w->conf, "--pamd", pamd, "check", NULL};
	const char *p, *last;
	struct run *r;

	(void)state;
	host_path("pamd-none", pamd, sizeof(pamd));
	r = run_ctl(args);
	if (r->status != 0)
		print_run(r);
	assert_int_equal(r->status, 0);
	for (p = r->out; (last = strchr(p, '\n')) != NULL && last[1] != '\0'; p = last + 1)
		if (strncmp(p, "warning: map_file: ", 19) != 0 || strstr(p, "no local account") > last) {
			print_run(r);
			fail_msg("a finding other than a missing account");
		}
	assert_true(strcmp(p, "ok\n") == 0 || strncmp(p, "ok, ", 4) == 0);
	free(r);
}

/* ---- check: the host's time limits and the map's accounts (fixtures: tests/ctl/data/host) ---- */

/* tests/ctl/data/host/NAME in the sources, or the shipped pam.d-examples for "EXAMPLES". */
static void host_path(const char *name, char *out, size_t len)
{
	const char *top = getenv("NL_TOP_SRCDIR");

	top = top != NULL && top[0] != '\0' ? top : ".";
	if (strcmp(name, "EXAMPLES") == 0)
		snprintf(out, len, "%s/pam.d-examples", top);
	else
		snprintf(out, len, "%s/tests/ctl/data/host/%s", top, name);
}

/* "HOST" in pattern becomes the fixtures' directory, "EXAMPLES" pam.d-examples, "DIR" dir. */
static void expand_host(const char *pattern, const char *dir, char *out, size_t len)
{
	static const char *const words[] = {"HOST", "EXAMPLES", "DIR"};
	size_t n = 0;

	for (const char *p = pattern; *p != '\0' && n + 1 < len;) {
		size_t w = 0;
		while (w < 3 && strncmp(p, words[w], strlen(words[w])) != 0)
			w++;
		if (w == 3) {
			out[n++] = *p++;
			continue;
		}
		if (w == 2)
			snprintf(out + n, len - n, "%s", dir);
		else
			host_path(w == 0 ? "" : "EXAMPLES", out + n, len - n);
		n += strlen(out + n);
		if (w == 0 && n > 0 && out[n - 1] == '/')
			n--; /* "HOST/x": host_path("") ends in a slash */
		p += strlen(words[w]);
	}
	out[n < len ? n : len - 1] = '\0';
}

/* check --offline of a good configuration whose map is map_text (default: root only), with the
 * host's files from the fixtures; dir (a mkdtemp pattern) gets the configuration. */
static struct run *check_host(const char *pamd, const char *login_defs, const char *sshd_config,
                              const char *map_text, char *dir)
{
	const struct check_case c = {.name = "host",
	                             .map_text = map_text != NULL ? map_text : "root 9686368973\n"};
	char conf[128], p[3][1024];
	const char *args[] = {"--config",      conf, "--offline", "--pamd", p[0], "--login-defs", p[1],
	                      "--sshd-config", p[2], "check",     NULL};

	assert_non_null(mkdtemp(dir));
	write_case(&c, dir);
	snprintf(conf, sizeof(conf), "%s/nhslogin.conf", dir);
	host_path(pamd, p[0], sizeof(p[0]));
	host_path(login_defs, p[1], sizeof(p[1]));
	host_path(sshd_config, p[2], sizeof(p[2]));
	return run_ctl(args);
}

/* One whole line of the output is the pattern (expanded), e.g. "warning: ...\n". */
static void assert_finding(const struct run *r, const char *pattern, const char *dir)
{
	char want[2048], nl_want[2050];

	expand_host(pattern, dir, want, sizeof(want));
	snprintf(nl_want, sizeof(nl_want), "\n%s", want);
	if (strncmp(r->out, want, strlen(want)) != 0 && strstr(r->out, nl_want) == NULL) {
		print_message("# wanted: %s", want);
		print_run(r);
		fail_msg("that finding is missing");
	}
}

static void test_check_warns_code_longer_than_login_timeout(void **state)
{
	char dir[] = "/tmp/nl-ctlcheck.XXXXXX";
	struct run *r;

	(void)state;
	r = check_host("pamd-login", "login.defs", "sshd-default/sshd_config", NULL, dir);
	assert_int_equal(r->status, 0);
	assert_finding(r,
	               "warning: login: the code lasts 300 s but LOGIN_TIMEOUT is 60 s (HOST/login.defs:13): "
	               "login will drop the sign-in first; set LOGIN_TIMEOUT 300 in HOST/login.defs or "
	               "timeout=50 on the pam_nhslogin line in HOST/pamd-login/common-auth-nhslogin\n",
	               dir);
	assert_finding(r, "ok, 1 warning\n", dir);
	free(r);
	rm_tree(dir);
}

static void test_check_warns_code_longer_than_login_grace_time_through_include(void **state)
{
	char dir[] = "/tmp/nl-ctlcheck.XXXXXX";
	struct run *r;

	(void)state;
	r = check_host("pamd-sshd", "login.defs", "sshd-include/sshd_config", NULL, dir);
	assert_int_equal(r->status, 0);
	assert_finding(r,
	               "warning: sshd: the code lasts 300 s but LoginGraceTime is 120 s "
	               "(HOST/sshd-include/sshd_config.d/50-nhslogin.conf:3): sshd will drop the sign-in "
	               "first; set LoginGraceTime 300 in HOST/sshd-include/sshd_config.d/50-nhslogin.conf or "
	               "timeout=110 on the pam_nhslogin line in HOST/pamd-sshd/sshd\n",
	               dir);
	assert_finding(r, "ok, 1 warning\n", dir);
	free(r);
	rm_tree(dir);
}

static void test_check_reads_login_grace_time_with_a_unit(void **state)
{
	char dir[] = "/tmp/nl-ctlcheck.XXXXXX";
	struct run *r;

	(void)state;
	r = check_host("pamd-sshd150", "login.defs", "sshd-units/sshd_config", NULL, dir);
	assert_int_equal(r->status, 0);
	assert_finding(
	    r,
	    "warning: sshd: the code lasts 150 s but LoginGraceTime is 120 s "
	    "(HOST/sshd-units/sshd_config:3): sshd will drop the sign-in first; set LoginGraceTime "
	    "300 in HOST/sshd-units/sshd_config or timeout=110 on the pam_nhslogin line in "
	    "HOST/pamd-sshd150/sshd\n",
	    dir);
	free(r);
	rm_tree(dir);
}

static void test_check_warns_code_too_short_for_a_person(void **state)
{
	char dir[] = "/tmp/nl-ctlcheck.XXXXXX";
	struct run *r;

	(void)state;
	r = check_host("pamd-sudo-short", "login.defs", "sshd-default/sshd_config", NULL, dir);
	assert_int_equal(r->status, 0);
	assert_finding(r,
	               "warning: sudo: the code lasts 60 s: too short for a real NHS login sign-in, which "
	               "takes 1-3 minutes; raise or remove timeout= on the pam_nhslogin line in "
	               "HOST/pamd-sudo-short/sudo\n",
	               dir);
	assert_finding(r, "ok, 1 warning\n", dir);
	free(r);
	rm_tree(dir);
}

static void test_check_no_timing_warning_within_host_limits(void **state)
{
	char dir[] = "/tmp/nl-ctlcheck.XXXXXX";
	struct run *r;

	(void)state;
	r = check_host("pamd-within", "login.defs-300", "sshd-300/sshd_config", NULL, dir);
	if (strcmp(r->out, "ok\n") != 0)
		print_run(r);
	assert_int_equal(r->status, 0);
	assert_string_equal(r->out, "ok\n");
	free(r);
	rm_tree(dir);
}

/* The shipped stacks on a host with Debian's defaults (LOGIN_TIMEOUT 60, LoginGraceTime 120): login
 * reaches the module through @include common-auth-nhslogin; nothing outlives its host, and login's
 * 50 s is flagged as too short, with the fix. */
static void test_check_shipped_examples_stay_within_host_defaults(void **state)
{
	char dir[] = "/tmp/nl-ctlcheck.XXXXXX";
	struct run *r;

	(void)state;
	r = check_host("EXAMPLES", "login.defs", "sshd-default/sshd_config", NULL, dir);
	assert_int_equal(r->status, 0);
	assert_finding(r,
	               "warning: login: the code lasts 50 s: too short for a real NHS login sign-in, which "
	               "takes 1-3 minutes; set LOGIN_TIMEOUT 300 in HOST/login.defs, then timeout=290 on the "
	               "pam_nhslogin line in EXAMPLES/common-auth-nhslogin\n",
	               dir);
	assert_null(strstr(r->out, "drop the sign-in first"));
	assert_null(strstr(r->out, "warning: common-auth-nhslogin:"));
	assert_finding(r, "ok, 1 warning\n", dir);
	free(r);
	rm_tree(dir);
}

static void test_check_warns_map_line_naming_no_account(void **state)
{
	char dir[] = "/tmp/nl-ctlcheck.XXXXXX";
	struct run *r;

	(void)state;
	r = check_host("pamd-none", "login.defs", "sshd-default/sshd_config",
	               "# NHS numbers of the staff\nroot 9686368973\nnl_no_such_user 9686368906\n", dir);
	assert_int_equal(r->status, 0);
	assert_finding(r,
	               "warning: map_file: DIR/nhslogin.map:3: no local account 'nl_no_such_user' on this "
	               "computer: this line signs nobody in\n",
	               dir);
	assert_finding(r, "ok, 1 warning\n", dir);
	free(r);
	rm_tree(dir);
}

/* ---- the daemon commands ---- */

static void test_status_shows_environment_and_issuer(void **state)
{
	const char *args[] = {"--config", fx.w->conf, "status", NULL};
	char want[256];
	struct run *r;

	(void)state;
	r = run_ctl(args);
	assert_int_equal(r->status, 0);
	assert_non_null(strstr(r->out, "Environment:     local\n"));
	snprintf(want, sizeof(want), "Issuer:          %s\n", mockproc_issuer(fx.w->mock));
	assert_non_null(strstr(r->out, want));
	assert_non_null(strstr(r->out, "Sign-ins:        0 in progress (at most 1024)\n"));
	assert_non_null(strstr(r->out, "nhslogind:       running for "));
	free(r);
}

static void test_status_json_parses(void **state)
{
	const char *args[] = {"--config", fx.w->conf, "--json", "status", NULL};
	struct run *r;
	json_t *m;

	(void)state;
	r = run_ctl(args);
	assert_int_equal(r->status, 0);
	m = parse_json_line(r->out);
	assert_true(json_is_true(json_object_get(m, "ok")));
	assert_string_equal(nl_json_str(m, "environment"), "local");
	assert_non_null(json_object_get(m, "uptime"));
	json_decref(m);
	free(r);
}

/* A sign-in in progress on its own connection (closing fd cancels it). Returns the reply. */
static json_t *start_flow(int *fd, const char *user)
{
	struct nl_proto_client c;
	json_t *req =
	    json_pack("{ssssssss}", "op", "start", "user", user, "service", "sshd", "rhost", "10.1.2.3");
	json_t *m = NULL;

	assert_int_equal(nl_proto_open(&c, fx.w->socket, 3000, NL_PROTO_PEER_ANY), 0);
	assert_int_equal(nl_proto_call(&c, req, 15000, &m), 0);
	assert_string_equal(nl_json_str(m, "status"), "pending");
	json_decref(req);
	*fd = c.fd;
	return m;
}

static void test_flows_lists_a_sign_in_in_progress(void **state)
{
	const char *args[] = {"--config", fx.w->conf, "flows", NULL};
	json_t *st;
	struct run *r;
	int fd = -1;

	(void)state;
	st = start_flow(&fd, "clinician");
	r = run_ctl(args);
	assert_int_equal(r->status, 0);
	assert_non_null(strstr(r->out, "FLOW"));
	assert_non_null(strstr(r->out, nl_json_str(st, "flow")));
	assert_non_null(strstr(r->out, "clinician"));
	assert_non_null(strstr(r->out, "10.1.2.3"));
	assert_non_null(strstr(r->out, "pending"));
	close(fd);
	json_decref(st);
	free(r);
}

static void test_flows_json_parses(void **state)
{
	const char *args[] = {"--config", fx.w->conf, "--json", "flows", NULL};
	json_t *st, *m, *f;
	struct run *r;
	int fd = -1;

	(void)state;
	st = start_flow(&fd, "nurse");
	r = run_ctl(args);
	assert_int_equal(r->status, 0);
	m = parse_json_line(r->out);
	/* an earlier test's flow may still be going away: find ours */
	for (size_t i = 0; (f = json_array_get(json_object_get(m, "flows"), i)) != NULL; i++)
		if (strcmp(nl_json_str(f, "flow"), nl_json_str(st, "flow")) == 0)
			break;
	assert_non_null(f);
	assert_string_equal(nl_json_str(f, "user"), "nurse");
	assert_string_equal(nl_json_str(f, "service"), "sshd");
	assert_string_equal(nl_json_str(f, "state"), "pending");
	close(fd);
	json_decref(m);
	json_decref(st);
	free(r);
}

static void test_flows_cancel_ends_the_sign_in(void **state)
{
	const char *args[] = {"--config", fx.w->conf, "flows", "cancel", NULL, NULL};
	struct nl_proto_client c = {.fd = -1, .peer = (uid_t)-1};
	json_t *st, *m = NULL;
	struct run *r;

	(void)state;
	st = start_flow(&c.fd, "clinician");
	args[4] = nl_json_str(st, "flow");
	r = run_ctl(args);
	assert_int_equal(r->status, 0);
	assert_non_null(strstr(r->out, "cancelled"));
	free(r);
	/* Again, now that it has ended (its login has not read the outcome yet): nothing is
	 * cancelled, and the exit status says so. */
	r = run_ctl(args);
	print_run(r);
	assert_int_equal(r->status, 1);
	assert_non_null(strstr(r->out, "had already ended (denied): nothing to cancel"));
	assert_int_equal(nl_proto_wait(&c, nl_json_str(st, "device_code"), 5, &m), 0);
	assert_string_equal(nl_json_str(m, "status"), "denied");
	assert_string_equal(nl_json_str(m, "reason"), "cancelled");
	nl_proto_close(&c);
	json_decref(m);
	json_decref(st);
	free(r);
}

static void test_flows_cancel_unknown_flow_exits_1(void **state)
{
	const char *args[] = {"--config", fx.w->conf, "flows", "cancel", "f-doesnotexist", NULL};
	struct run *r;

	(void)state;
	r = run_ctl(args);
	assert_int_equal(r->status, 1);
	assert_non_null(strstr(r->err, "not_found"));
	free(r);
}

static void test_flush_empties_the_caches(void **state)
{
	const char *args[] = {"--config", fx.w->conf, "flush", NULL};
	const char *jargs[] = {"--config", fx.w->conf, "--json", "status", NULL};
	struct run *r;
	json_t *m;

	(void)state;
	r = run_ctl(args);
	assert_int_equal(r->status, 0);
	assert_non_null(strstr(r->out, "flushed"));
	free(r);
	r = run_ctl(jargs);
	m = parse_json_line(r->out);
	assert_true(json_is_null(json_object_get(m, "discovery_age")));
	assert_true(json_is_null(json_object_get(m, "jwks_age")));
	json_decref(m);
	free(r);
}

static void test_flush_json_parses(void **state)
{
	const char *args[] = {"--config", fx.w->conf, "--json", "flush", NULL};
	struct run *r;
	json_t *m;

	(void)state;
	r = run_ctl(args);
	assert_int_equal(r->status, 0);
	m = parse_json_line(r->out);
	assert_true(json_is_true(json_object_get(m, "ok")));
	json_decref(m);
	free(r);
}

static void test_no_daemon_exits_3(void **state)
{
	static const char *const cmds[][3] = {
	    {"status", NULL}, {"flows", NULL}, {"flush", NULL}, {"login", "x"}, {"flows", "cancel", "f-1"}};
	char sock[128];

	(void)state;
	snprintf(sock, sizeof(sock), "%s/nowhere.sock", fx.dir);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const char *args[] = {"--socket", sock, cmds[i][0], cmds[i][1], cmds[i][2], NULL};
		struct run *r = run_ctl(args);
		assert_int_equal(r->status, 3);
		assert_non_null(strstr(r->err, "cannot reach nhslogind"));
		free(r);
	}
}

static void test_no_daemon_json_parses(void **state)
{
	char sock[128];
	const char *args[] = {"--socket", sock, "--json", "status", NULL};
	struct run *r;
	json_t *m;

	(void)state;
	snprintf(sock, sizeof(sock), "%s/nowhere.sock", fx.dir);
	r = run_ctl(args);
	assert_int_equal(r->status, 3);
	m = parse_json_line(r->out);
	assert_string_equal(nl_json_str(m, "error"), "unreachable");
	json_decref(m);
	free(r);
}

static void test_usage_errors_exit_2(void **state)
{
	const char *a1[] = {"frobnicate", NULL}, *a2[] = {"flows", "cancel", NULL},
	           *a3[] = {"--nope", "status", NULL};
	const char *const *all[] = {a1, a2, a3};

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		struct run *r = run_ctl(all[i]);
		assert_int_equal(r->status, 2);
		assert_non_null(strstr(r->err, "usage: nhsloginctl"));
		free(r);
	}
}

/* ---- login ---- */

/* Read the child's stdout until want appears (or the deadline); returns a pointer into buf. */
static const char *read_until(int fd, char *buf, size_t cap, size_t *len, const char *want)
{
	int64_t deadline = nl_mono_ms() + 15000;
	const char *hit;

	while ((hit = strstr(buf, want)) == NULL) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int left = (int)(deadline - nl_mono_ms());
		ssize_t n;
		if (left <= 0 || poll(&p, 1, left) <= 0 || (n = read(fd, buf + *len, cap - 1 - *len)) <= 0)
			return NULL;
		*len += (size_t)n;
		buf[*len] = '\0';
	}
	return hit;
}

/* The code after "enter the code" (XXXX-XXXX). */
static void code_from(const char *hit, char *code, size_t len)
{
	hit += strlen("enter the code");
	hit += strspn(hit, " ");
	snprintf(code, len, "%.*s", (int)strcspn(hit, " \n"), hit);
}

/* nhsloginctl login USER with the phone signing in as as_user (or declining). */
static struct run *login_with_phone(const char *user, const char *as_user, bool decline, bool json)
{
	const char *args[] = {
	    "--config",         fx.w->conf, "--qr", "ascii", json ? "--json" : "login", json ? "login" : user,
	    json ? user : NULL, NULL};
	struct run *r = calloc(1, sizeof(*r));
	const char *hit;
	char code[32];
	long status = 0;
	int ofd, efd;
	pid_t pid;

	assert_non_null(r);
	pid = spawn(args, &ofd, &efd);
	hit =
	    read_until(ofd, r->out, sizeof(r->out), &r->outlen, json ? "\"user_code\":\"" : "enter the code");
	if (hit == NULL) {
		kill(pid, SIGKILL);
		collect(pid, ofd, efd, r, nl_mono_ms() + RUN_TIMEOUT_MS);
		print_run(r);
	}
	assert_non_null(hit);
	if (json)
		snprintf(code, sizeof(code), "%.9s", hit + strlen("\"user_code\":\""));
	else
		code_from(hit, code, sizeof(code));
	assert_int_equal(strlen(code), 9);
	assert_int_equal(phone_signin(fx.w, code, as_user, decline, &status), 0);
	collect(pid, ofd, efd, r, nl_mono_ms() + RUN_TIMEOUT_MS);
	return r;
}

static void test_login_approved_exits_0(void **state)
{
	struct run *r;

	(void)state;
	r = login_with_phone("clinician", "p9", false, false);
	if (r->status != 0)
		print_run(r);
	assert_int_equal(r->status, 0);
	assert_non_null(strstr(r->out, "On your phone, open  http://127.0.0.1:"));
	assert_non_null(strstr(r->out, "##")); /* the ASCII QR code */
	assert_non_null(strstr(r->out, "(or scan the QR code above)"));
	assert_non_null(strstr(r->out, "Waiting for sign-in"));
	assert_non_null(strstr(r->out, "Signed in: NHS login approved the sign-in for clinician.\n"));
	free(r);
}

static void test_login_declined_exits_1(void **state)
{
	struct run *r;

	(void)state;
	r = login_with_phone("clinician", "p9", true, false);
	assert_int_equal(r->status, 1);
	assert_non_null(strstr(r->out, "Not signed in (denied)"));
	free(r);
}

static void test_login_mismatch_exits_1(void **state)
{
	struct run *r;

	(void)state;
	r = login_with_phone("nurse", "p9", false, false);
	assert_int_equal(r->status, 1);
	assert_non_null(strstr(r->out, "Not signed in (mismatch)"));
	free(r);
}

static void test_login_json_lines_parse_without_device_code(void **state)
{
	struct run *r;
	json_t *first, *last;
	const char *nl;

	(void)state;
	r = login_with_phone("clinician", "p9", false, true);
	assert_int_equal(r->status, 0);
	first = parse_json_line(r->out);
	assert_non_null(nl_json_str(first, "user_code"));
	assert_null(json_object_get(first, "device_code"));
	assert_null(strstr(r->out, "device_code"));
	nl = strchr(r->out, '\n');
	assert_non_null(nl);
	last = parse_json_line(nl + 1);
	assert_string_equal(nl_json_str(last, "status"), "approved");
	json_decref(first);
	json_decref(last);
	free(r);
}

/* How many flows of service are still pending (finished ones stay listed for a while). */
static int pending_of(const json_t *m, const char *service)
{
	const json_t *f;
	size_t i;
	int n = 0;

	json_array_foreach(json_object_get(m, "flows"), i, f) n +=
	    strcmp(nl_json_str(f, "service"), service) == 0 &&
	    strcmp(nl_json_str(f, "state"), "pending") == 0;
	return n;
}

/* Ctrl-C ends nhsloginctl, and its closed socket cancels the flow in the daemon. */
static void test_login_interrupt_cancels_the_flow(void **state)
{
	const char *args[] = {"--config", fx.w->conf, "--qr", "none", "login", "clinician", NULL};
	const char *fargs[] = {"--config", fx.w->conf, "--json", "flows", NULL};
	struct run *r = calloc(1, sizeof(*r)), *f = NULL;
	int ofd, efd, left = -1;
	json_t *m;
	pid_t pid;

	(void)state;
	assert_non_null(r);
	pid = spawn(args, &ofd, &efd);
	assert_non_null(read_until(ofd, r->out, sizeof(r->out), &r->outlen, "Waiting for sign-in"));
	/* --qr none: no QR code, and no word of one. */
	assert_null(strstr(r->out, "QR code"));
	assert_null(strstr(r->out, "##"));
	f = run_ctl(fargs);
	m = parse_json_line(f->out);
	if (pending_of(m, "nhsloginctl") != 1)
		print_run(f);
	assert_int_equal(pending_of(m, "nhsloginctl"), 1);
	json_decref(m);
	kill(pid, SIGINT);
	collect(pid, ofd, efd, r, nl_mono_ms() + RUN_TIMEOUT_MS);
	assert_int_equal(r->status, 1);
	assert_non_null(strstr(r->err, "Sign-in cancelled."));
	/* The daemon notices the closed connection at once; allow it a few rounds. */
	for (int i = 0; i < 50 && left != 0; i++) {
		free(f);
		f = run_ctl(fargs);
		m = parse_json_line(f->out);
		left = pending_of(m, "nhsloginctl");
		json_decref(m);
		if (left != 0)
			usleep(100000);
	}
	assert_int_equal(left, 0);
	free(f);
	free(r);
}

#define N_OTHER 27

/* RFC 7638 3.1: the SHA-256 of {"e","kty","n"} in that order, no spaces, base64url. Computed here
 * without nl_jose, from what nhsloginctl printed. */
static char *rfc7638_thumbprint(const json_t *jwk)
{
	char canon[2048];
	unsigned char md[32];
	unsigned mdlen = 0;
	char *out = NULL;

	snprintf(canon, sizeof(canon), "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}",
	         json_string_value(json_object_get(jwk, "e")), json_string_value(json_object_get(jwk, "n")));
	if (EVP_Digest(canon, strlen(canon), md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    nl_b64url_encode(md, mdlen, &out) != 0)
		return NULL;
	return out;
}

/* key: the public half of the world's client key, in the three forms, with the kid nhslogind
 * sends: the PEM is the key the mock (NHS login) was given, the kid its RFC 7638 thumbprint. */
static void test_key_prints_the_registered_public_key_and_its_kid(void **state)
{
	const char *args[] = {"--config", fx.w->conf, "--json", "key", NULL};
	const char *text_args[] = {"--config", fx.w->conf, "key", NULL};
	char path[PATH_MAX];
	char *registered, *kid;
	json_t *m, *jwk;
	struct run *r;

	(void)state;
	r = run_ctl(args);
	print_run(r);
	assert_int_equal(r->status, 0);
	assert_non_null(m = parse_json_line(r->out));
	jwk = json_object_get(m, "jwk");
	assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "RSA");
	assert_string_equal(json_string_value(json_object_get(jwk, "use")), "sig");
	assert_string_equal(json_string_value(json_object_get(jwk, "alg")), "RS512");
	assert_null(json_object_get(jwk, "d")); /* nothing private */
	assert_null(json_object_get(jwk, "p"));
	assert_non_null(kid = rfc7638_thumbprint(jwk));
	assert_string_equal(json_string_value(json_object_get(jwk, "kid")), kid);
	assert_string_equal(json_string_value(json_object_get(m, "kid")), kid);
	assert_true(json_equal(json_array_get(json_object_get(json_object_get(m, "jwks"), "keys"), 0), jwk));
	snprintf(path, sizeof(path), "%s/client.pub.pem", fx.w->dir);
	assert_non_null(registered = read_all(path));
	assert_string_equal(json_string_value(json_object_get(m, "pem")), registered);
	free(registered);
	json_decref(m);
	free(r);

	r = run_ctl(text_args);
	assert_int_equal(r->status, 0);
	assert_non_null(strstr(r->out, "-----BEGIN PUBLIC KEY-----"));
	assert_non_null(strstr(r->out, kid));
	assert_null(strstr(r->out, "PRIVATE"));
	free(kid);
	free(r);
}

int main(void)
{
	struct CMUnitTest tests[N_CASES + N_OTHER];
	size_t n = 0;

	for (size_t i = 0; i < N_CASES; i++)
		tests[n++] =
		    (struct CMUnitTest){cases[i].name, test_check_case, NULL, NULL, (void *)&cases[i]};
#define ADD(f) tests[n++] = (struct CMUnitTest){#f, f, NULL, NULL, NULL}
	ADD(test_check_good_config_prints_only_ok);
	ADD(test_check_json_lists_findings);
	ADD(test_check_world_config_is_ok);
	ADD(test_check_warns_code_longer_than_login_timeout);
	ADD(test_check_warns_code_longer_than_login_grace_time_through_include);
	ADD(test_check_reads_login_grace_time_with_a_unit);
	ADD(test_check_warns_code_too_short_for_a_person);
	ADD(test_check_no_timing_warning_within_host_limits);
	ADD(test_check_shipped_examples_stay_within_host_defaults);
	ADD(test_check_warns_map_line_naming_no_account);
	ADD(test_status_shows_environment_and_issuer);
	ADD(test_status_json_parses);
	ADD(test_flows_lists_a_sign_in_in_progress);
	ADD(test_flows_json_parses);
	ADD(test_flows_cancel_ends_the_sign_in);
	ADD(test_flows_cancel_unknown_flow_exits_1);
	ADD(test_flush_empties_the_caches);
	ADD(test_flush_json_parses);
	ADD(test_no_daemon_exits_3);
	ADD(test_no_daemon_json_parses);
	ADD(test_usage_errors_exit_2);
	ADD(test_login_approved_exits_0);
	ADD(test_login_declined_exits_1);
	ADD(test_login_mismatch_exits_1);
	ADD(test_login_json_lines_parse_without_device_code);
	ADD(test_login_interrupt_cancels_the_flow);
	ADD(test_key_prints_the_registered_public_key_and_its_kid);
#undef ADD
	if (n != N_CASES + N_OTHER) {
		fprintf(stderr, "test_ctl: %zu tests registered, N_OTHER is wrong\n", n);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("nhsloginctl", tests, group_setup, group_teardown);
}
