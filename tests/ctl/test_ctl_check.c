/* nhsloginctl check as a program: a table of misconfigurations (each must produce its own line
 * and exit 1), a good configuration (exit 0, "ok"), and the host's time limits and the map's
 * accounts (fixtures: tests/ctl/data/host). */
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

/* ---- check: the table of cases ---- */

enum issuer_kind { ISS_MOCK = 0, ISS_FOREIGN, ISS_RS256, ISS_NOJWKS, ISS_LITERAL };
/* An agent's pinned JWKS at DIR/pinned.jwks: the mock's, or the mock's with a private member. */
enum pinned_kind { PIN_NONE = 0, PIN_MOCK, PIN_PRIVATE };

#define AGENT_PINNED                                                                                         \
	"[daemon]\nrole = agent\n[agent]\nbridge_url = http://127.0.0.1:9\njwks_file = pinned.jwks"

struct check_case {
	const char *name;
	enum issuer_kind issuer_kind;
	const char *issuer;         /* ISS_LITERAL */
	const char *env_name;       /* default local */
	const char *client_id;      /* default nhslogin-test */
	const char *client_key;     /* default DIR/client.key.pem (a path relative to DIR) */
	mode_t key_mode;            /* default 0600 */
	mode_t conf_mode;           /* default 0644 */
	const char *redirect_uri;   /* default http://127.0.0.1:8765/callback; "-": none (an agent's) */
	const char *env_extra;      /* lines at the end of the environment file */
	const char *bridge_extra;   /* lines in [bridge]; FXD is the fixtures directory */
	const char *map_text;       /* default: a good map */
	const char *identity_extra; /* lines after [identity] (may open [ldap]) */
	const char *extra_arg;      /* e.g. --offline or --json */
	enum pinned_kind pinned;    /* DIR/pinned.jwks written (identity_extra names it) */
	mode_t pinned_mode;         /* default 0644 */
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
    /* an agent with pinned keys: the file read as nhslogind reads it; the issuer (unreachable
     * here) never asked */
    {.name = "check_accepts_an_agent_with_a_pinned_jwks",
     .issuer_kind = ISS_LITERAL,
     .issuer = "http://127.0.0.1:1",
     .identity_extra = AGENT_PINNED,
     .pinned = PIN_MOCK,
     .exit_code = 0,
     .expect = "ok"},
    /* an agent's environment has no redirect_uri (the bridge has the callback) */
    {.name = "check_accepts_an_agent_without_redirect_uri",
     .issuer_kind = ISS_LITERAL,
     .issuer = "http://127.0.0.1:1",
     .redirect_uri = "-",
     .identity_extra = AGENT_PINNED,
     .pinned = PIN_MOCK,
     .exit_code = 0,
     .expect = "ok"},
    {.name = "check_reports_a_pinned_jwks_writable_by_others",
     .identity_extra = AGENT_PINNED,
     .pinned = PIN_MOCK,
     .pinned_mode = 0664,
     .exit_code = 1,
     .expect = "error: [agent] jwks_file DIR/pinned.jwks: is group- or world-writable (mode 0664)"},
    {.name = "check_reports_a_pinned_jwks_with_a_private_key",
     .identity_extra = AGENT_PINNED,
     .pinned = PIN_PRIVATE,
     .exit_code = 1,
     .expect = "error: [agent] jwks_file DIR/pinned.jwks: not a usable JWKS: key 1 carries private key "
               "members"},
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

/* DIR/pinned.jwks: the mock's JWKS as it publishes it, with a private member for PIN_PRIVATE. */
static void write_pinned(const struct check_case *c, const char *dir)
{
	struct mockproc_resp resp = {0};
	char url[256], path[256], *text;
	json_t *doc;

	snprintf(url, sizeof(url), "%s/.well-known/jwks.json", mockproc_issuer(fx.w->mock));
	assert_int_equal(mockproc_fetch("GET", url, NULL, NULL, NULL, &resp), 0);
	assert_non_null(doc = json_loads(resp.body, 0, NULL));
	mockproc_resp_free(&resp);
	if (c->pinned == PIN_PRIVATE)
		json_object_set_new(json_array_get(json_object_get(doc, "keys"), 0), "d",
		                    json_string("cHJpdmF0ZQ"));
	assert_non_null(text = json_dumps(doc, JSON_COMPACT));
	snprintf(path, sizeof(path), "%s/pinned.jwks", dir);
	assert_int_equal(test_write_file(path, c->pinned_mode ? c->pinned_mode : 0644, text), 0);
	free(text);
	json_decref(doc);
}

/* Write the case's configuration into dir. */
static void write_case(const struct check_case *c, const char *dir)
{
	const char *env = c->env_name != NULL ? c->env_name : "local";
	const char *redirect = c->redirect_uri ? c->redirect_uri : "http://127.0.0.1:8765/callback";
	bool no_redirect = strcmp(redirect, "-") == 0;
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
	assert_int_equal(test_write_file(path, c->conf_mode ? c->conf_mode : 0644, text), 0);
	free(text);
	assert_true(asprintf(&text, "issuer = %s\nclient_id = %s\nclient_key = %s/%s\n%s%s%s%s\n",
	                     case_issuer(c), c->client_id ? c->client_id : "nhslogin-test", dir,
	                     c->client_key ? c->client_key : "client.key.pem",
	                     no_redirect ? "" : "redirect_uri = ", no_redirect ? "" : redirect,
	                     no_redirect ? "" : "\n", c->env_extra ? c->env_extra : "") > 0);
	snprintf(path, sizeof(path), "%s/environments/%s.conf", dir, env);
	assert_int_equal(test_write_file(path, 0644, text), 0);
	free(text);
	snprintf(path, sizeof(path), "%s/client.key.pem", dir);
	assert_int_equal(test_write_file(path, c->key_mode ? c->key_mode : 0600, fx.key_pem), 0);
	if (c->pinned != PIN_NONE)
		write_pinned(c, dir);
	snprintf(path, sizeof(path), "%s/nhslogin.map", dir);
	assert_int_equal(
	    test_write_file(path, 0644,
	                    c->map_text ? c->map_text : "clinician 9686368973\nnurse 9686368906\n"),
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

#define N_OTHER 10

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
#undef ADD
	if (n != N_CASES + N_OTHER) {
		fprintf(stderr, "test_ctl_check: %zu tests registered, N_OTHER is wrong\n", n);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("nhsloginctl_check", tests, group_setup, group_teardown);
}
