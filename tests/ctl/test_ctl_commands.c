/* nhsloginctl's daemon commands against a running world (tests/lib/harness.c: nhslogin-mock +
 * nhslogind): status, flows, flows cancel, flush, login and key; exit 3 without a daemon, exit 2
 * on a usage error; --json output that parses. */
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
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_status_shows_environment_and_issuer),
	    cmocka_unit_test(test_status_json_parses),
	    cmocka_unit_test(test_flows_lists_a_sign_in_in_progress),
	    cmocka_unit_test(test_flows_json_parses),
	    cmocka_unit_test(test_flows_cancel_ends_the_sign_in),
	    cmocka_unit_test(test_flows_cancel_unknown_flow_exits_1),
	    cmocka_unit_test(test_flush_empties_the_caches),
	    cmocka_unit_test(test_flush_json_parses),
	    cmocka_unit_test(test_no_daemon_exits_3),
	    cmocka_unit_test(test_no_daemon_json_parses),
	    cmocka_unit_test(test_usage_errors_exit_2),
	    cmocka_unit_test(test_login_approved_exits_0),
	    cmocka_unit_test(test_login_declined_exits_1),
	    cmocka_unit_test(test_login_mismatch_exits_1),
	    cmocka_unit_test(test_login_json_lines_parse_without_device_code),
	    cmocka_unit_test(test_login_interrupt_cancels_the_flow),
	    cmocka_unit_test(test_key_prints_the_registered_public_key_and_its_kid),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("nhsloginctl_commands", tests, group_setup, group_teardown);
}
