/* The bridge over real HTTP with a real nhslogin-mock, flows table and OIDC client: the code page,
 * every answer to a typed code, the confirmation page and its form, the hop to /authorize and back,
 * the callback's outcomes and its browser binding, the security headers, TLS, and
 * nl_signin_complete on its own. libcurl never follows redirects here; each "browser" is a libcurl
 * cookie jar (the phone's, or another's), so cookies are kept as a browser keeps them. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bridge.h"
#include "signin.h"
#include "mockproc.h"
#include "nl_err.h"
#include "nl_log.h"
#include "nl_time.h"
#include "skip.h"
#include "testsrv.h"

#define CLIENT_ID     "bridge-test-client"
#define P9_NHS_NUMBER "9686368973" /* the mock's user p9 */

static struct {
	char dir[64];
	char *pub, *keyp;
	cjose_jwk_t *key;
	struct nl_config cfg;
	struct nl_oidc *oidc;
	struct mockproc *mp;
	uint16_t port;
	char client_arg[512];
	/* per test */
	struct nl_flows *fl;
	struct nl_tokcache *tc;
	struct nl_bridge *b;
	CURLSH *phone, *other; /* two browsers: cookie jars */
} F;

/* ---- HTTP without following redirects ---- */

struct resp {
	long status;
	char *body;
	size_t len;
	char headers[16384];
	size_t hlen;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct resp *r = ud;
	size_t add = size * n;
	char *nb = realloc(r->body, r->len + add + 1);

	if (nb == NULL)
		return 0;
	memcpy(nb + r->len, p, add);
	r->body = nb;
	r->len += add;
	r->body[r->len] = '\0';
	return add;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct resp *r = ud;
	size_t add = size * n;

	if (r->hlen + add < sizeof(r->headers)) {
		memcpy(r->headers + r->hlen, p, add);
		r->hlen += add;
		r->headers[r->hlen] = '\0';
	}
	return add;
}

/* post_body NULL: GET. cainfo: CA file for https (NULL for http). jar: the browser's cookies. */
static void fetch_in(CURLSH *jar, const char *url, const char *post_body, const char *cainfo, struct resp *r)
{
	CURL *c = curl_easy_init();

	memset(r, 0, sizeof(*r));
	assert_non_null(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	if (jar != NULL) {
		curl_easy_setopt(c, CURLOPT_SHARE, jar);
		curl_easy_setopt(c, CURLOPT_COOKIEFILE, ""); /* the cookie engine, in memory */
	}
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	if (cainfo != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, cainfo);
	if (post_body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, post_body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(post_body));
	}
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_cleanup(c);
	if (r->body == NULL)
		r->body = calloc(1, 1);
}

static void fetch_ca(const char *url, const char *post_body, const char *cainfo, struct resp *r)
{
	fetch_in(F.phone, url, post_body, cainfo, r);
}

/* The phone's browser. */
static void fetch(const char *url, const char *post_body, struct resp *r)
{
	fetch_in(F.phone, url, post_body, NULL, r);
}

static CURLSH *new_jar(void)
{
	CURLSH *sh = curl_share_init();

	assert_non_null(sh);
	curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE);
	return sh;
}

static void resp_free(struct resp *r)
{
	free(r->body);
	r->body = NULL;
}

/* The value of header name (case-insensitive) in a new string, or NULL. */
static char *header(const struct resp *r, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = r->headers; *p != '\0'; p = strchr(p, '\n') != NULL ? strchr(p, '\n') + 1 : "") {
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1;
			while (*v == ' ')
				v++;
			return strndup(v, strcspn(v, "\r\n"));
		}
	}
	return NULL;
}

static void assert_header(const struct resp *r, const char *name, const char *want)
{
	char *v = header(r, name);

	assert_non_null(v);
	assert_string_equal(v, want);
	free(v);
}

static void assert_security_headers(const struct resp *r)
{
	char *csp = header(r, "Content-Security-Policy");

	assert_non_null(csp);
	assert_non_null(strstr(csp, "default-src 'none'"));
	assert_non_null(strstr(csp, "style-src 'unsafe-inline'"));
	assert_non_null(strstr(csp, "form-action 'self' "));
	assert_non_null(strstr(csp, mockproc_issuer(F.mp))); /* the provider, for the redirect after POST */
	free(csp);
	assert_header(r, "X-Frame-Options", "DENY");
	assert_header(r, "Referrer-Policy", "no-referrer");
	assert_header(r, "Cache-Control", "no-store");
	assert_header(r, "Content-Type", "text/html; charset=utf-8");
}

static char *bridge_url(const char *path)
{
	char *u = NULL;

	assert_int_not_equal(asprintf(&u, "http://127.0.0.1:%u%s", (unsigned)F.port, path), -1);
	return u;
}

static void get_path(const char *path, struct resp *r)
{
	char *u = bridge_url(path);
	fetch(u, NULL, r);
	free(u);
}

static void post_code(const char *form, struct resp *r)
{
	char *u = bridge_url("/d");
	fetch(u, form, r);
	free(u);
}

/* ---- fixtures ---- */

static void set_str(char **field, const char *value)
{
	free(*field);
	*field = value != NULL ? strdup(value) : NULL;
}

static void write_text(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	chmod(path, mode);
}

static int start_bridge(void)
{
	char err[256] = "";
	int r = nl_bridge_start(&F.cfg, F.fl, F.oidc, F.tc, &F.b, err, sizeof(err));

	if (r != 0)
		fprintf(stderr, "bridge: %s\n", err);
	return r;
}

static int group_setup(void **state)
{
	char path[256], err[256] = "", redirect[128], listen[64];
	const char *args[] = {"--auto-approve", "p9", "--client", F.client_arg, NULL};

	(void)state;
	nl_log_open("test_bridge", NL_LOG_STDERR, false);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	snprintf(F.dir, sizeof(F.dir), "/tmp/nl-test-bridge-XXXXXX");
	if (mkdtemp(F.dir) == NULL || mockproc_client_key(F.dir, "client", &F.key, &F.pub, &F.keyp) != 0)
		return -1;
	nl_config_init(&F.cfg);
	snprintf(path, sizeof(path), "%s/map", F.dir);
	write_text(path, "alice " P9_NHS_NUMBER "\n", 0600);
	set_str(&F.cfg.map_file, path);
	snprintf(path, sizeof(path), "%s/state", F.dir);
	set_str(&F.cfg.state_dir, path);
	snprintf(path, sizeof(path), "%s/cache", F.dir);
	set_str(&F.cfg.cache_dir, path);
	set_str(&F.cfg.listen, "127.0.0.1:0");
	set_str(&F.cfg.env.client_id, CLIENT_ID);
	set_str(&F.cfg.env.client_key, F.keyp);
	set_str(&F.cfg.env.issuer, "http://127.0.0.1:1");
	set_str(&F.cfg.env.redirect_uri, "http://127.0.0.1:1/callback");
	F.cfg.http_timeout = 10;
	F.cfg.reuse_window = 600; /* approved sign-ins are kept (reuse off keeps none) */
	if (nl_oidc_new(&F.cfg, &F.oidc, err, sizeof(err)) != 0 || nl_flows_new(&F.cfg, -1, &F.fl) != 0) {
		fprintf(stderr, "setup: %s\n", err);
		return -1;
	}
	/* learn a free port, register the callback on it with the mock, then keep that port */
	if (start_bridge() != 0)
		return -1;
	F.port = nl_bridge_port(F.b);
	nl_bridge_stop(F.b);
	F.b = NULL;
	nl_flows_free(F.fl);
	F.fl = NULL;
	snprintf(redirect, sizeof(redirect), "http://127.0.0.1:%u/callback", (unsigned)F.port);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)F.port);
	set_str(&F.cfg.env.redirect_uri, redirect);
	set_str(&F.cfg.listen, listen);
	snprintf(F.client_arg, sizeof(F.client_arg), "%s:%s:%s", CLIENT_ID, F.pub, redirect);
	if (mockproc_start(args, &F.mp) != 0)
		return -1;
	set_str(&F.cfg.env.issuer, mockproc_issuer(F.mp));
	return 0;
}

static void rm_tree(const char *path)
{
	char cmd[256];

	/* the fixture directory is ours and under /tmp */
	if (strncmp(path, "/tmp/nl-test-bridge-", 20) == 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", path);
	}
}

static int group_teardown(void **state)
{
	(void)state;
	mockproc_stop(F.mp);
	nl_oidc_free(F.oidc);
	nl_config_free(&F.cfg);
	cjose_jwk_release(F.key);
	free(F.pub);
	free(F.keyp);
	rm_tree(F.dir);
	curl_global_cleanup();
	return 0;
}

static int setup(void **state)
{
	char err[256];

	(void)state;
	if (nl_flows_new(&F.cfg, -1, &F.fl) != 0 ||
	    nl_tokcache_open(F.cfg.state_dir, &F.tc, err, sizeof(err)) != 0)
		return -1;
	nl_tokcache_flush(F.tc);
	F.phone = new_jar();
	F.other = new_jar();
	return start_bridge();
}

static int teardown(void **state)
{
	(void)state;
	nl_bridge_stop(F.b);
	F.b = NULL;
	nl_flows_free(F.fl);
	F.fl = NULL;
	nl_tokcache_close(F.tc);
	F.tc = NULL;
	curl_share_cleanup(F.phone);
	curl_share_cleanup(F.other);
	F.phone = F.other = NULL;
	nl_set_clock(NULL);
	return 0;
}

static void start_flow(const char *user, struct nl_flow_started *s)
{
	/* as the server does before a flow: the token cache sees where the start comes from */
	const struct nl_reuse_place here = {.service = "sshd",
	                                    .rhost = "10.0.0.5",
	                                    .tty = "ssh",
	                                    .by_root = true,
	                                    .audit_session = NL_AUDIT_SESSION_NONE,
	                                    .conn = 1};

	(void)nl_tokcache_reuse(F.tc, &F.cfg, user, &here, nl_now(), NULL);
	memset(s, 0, sizeof(*s));
	assert_int_equal(nl_flows_start(F.fl, user, "sshd", "10.0.0.5", "ssh", 1, s), 0);
}

/* "KPWD-RHXT" -> "kpwdrhxt": how a person might type it */
static void lower_no_dash(const char *code, char *out, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; code[i] != '\0' && o + 1 < len; i++)
		if (code[i] != '-')
			out[o++] = (char)(code[i] >= 'A' && code[i] <= 'Z' ? code[i] - 'A' + 'a' : code[i]);
	out[o] = '\0';
}

/* value="..." of the hidden input name in html (new string), or NULL. */
static char *hidden(const char *html, const char *name)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "name=\"%s\" value=\"", name);
	if ((p = strstr(html, pat)) == NULL)
		return NULL;
	p += strlen(pat);
	return strndup(p, strcspn(p, "\""));
}

/* Type the flow's code into /d in browser jar: the confirmation page (200) in *r. */
static void confirm_page_in(CURLSH *jar, const struct nl_flow_started *s, struct resp *r)
{
	char typed[32], form[64], *u = bridge_url("/d");

	lower_no_dash(s->user_code, typed, sizeof(typed));
	snprintf(form, sizeof(form), "code=%s", typed);
	fetch_in(jar, u, form, NULL, r);
	free(u);
	assert_int_equal(r->status, 200);
	assert_non_null(strstr(r->body, "action=\"/d/confirm\""));
}

/* Press answer ("continue" or "refuse") on the confirmation page html in browser jar. */
static void answer_in(CURLSH *jar, const char *html, const char *answer, struct resp *r)
{
	char *flow = hidden(html, "flow"), *token = hidden(html, "token"), *form = NULL;
	char *u = bridge_url("/d/confirm");

	assert_non_null(flow);
	assert_non_null(token);
	assert_int_not_equal(asprintf(&form, "flow=%s&token=%s&answer=%s", flow, token, answer), -1);
	fetch_in(jar, u, form, NULL, r);
	free(form);
	free(flow);
	free(token);
	free(u);
}

/* Enter the flow's code in browser jar and continue: the Location (new string) of the 302 to
 * /authorize. */
static char *enter_code_in(CURLSH *jar, const struct nl_flow_started *s)
{
	struct resp page, r;
	char *loc;

	confirm_page_in(jar, s, &page);
	answer_in(jar, page.body, "continue", &r);
	resp_free(&page);
	assert_int_equal(r.status, 302);
	loc = header(&r, "Location");
	assert_non_null(loc);
	resp_free(&r);
	return loc;
}

/* The same in the phone's browser. */
static char *enter_code(const struct nl_flow_started *s)
{
	return enter_code_in(F.phone, s);
}

/* Follow /authorize at the auto-approving mock; the Location back to the callback (new string). */
static char *authorize_at_mock(const char *authorize)
{
	struct resp r;
	char *loc;

	fetch(authorize, NULL, &r);
	assert_int_equal(r.status, 302);
	loc = header(&r, "Location");
	assert_non_null(loc);
	resp_free(&r);
	return loc;
}

static void assert_flow(const struct nl_flow_started *s, enum nl_flow_state st, enum nl_reason reason)
{
	struct nl_flow_status fs;

	assert_int_equal(nl_flows_status(F.fl, s->device_code, &fs), 0);
	assert_int_equal(fs.state, st);
	assert_int_equal(fs.reason, reason);
}

/* ---- the code page ---- */

static void test_bridge_form_has_label_viewport_and_no_external_resources(void **state)
{
	struct resp r;

	(void)state;
	get_path("/d", &r);
	assert_int_equal(r.status, 200);
	assert_security_headers(&r);
	assert_non_null(strstr(r.body, "<meta name=\"viewport\""));
	assert_non_null(strstr(r.body, "<label for=\"code\">"));
	assert_non_null(strstr(r.body, "id=\"code\" name=\"code\""));
	assert_non_null(strstr(r.body, "<button type=\"submit\">"));
	assert_null(strstr(r.body, "<script"));
	assert_null(strstr(r.body, "src="));
	assert_null(strstr(r.body, "<link"));
	resp_free(&r);
}

static void test_bridge_wrong_code_not_recognised(void **state)
{
	struct resp r;

	(void)state;
	post_code("code=ACDE-FGHJ", &r);
	assert_int_equal(r.status, 400);
	assert_security_headers(&r);
	assert_non_null(strstr(r.body, "That code was not recognised - check the code on your screen"));
	resp_free(&r);
}

static void test_bridge_echoed_code_is_escaped(void **state)
{
	struct resp r;

	(void)state;
	post_code("code=%3Cb%3E%22x%27", &r);
	assert_int_equal(r.status, 400);
	assert_null(strstr(r.body, "<b>"));
	assert_non_null(strstr(r.body, "value=\"&lt;b&gt;&quot;x&#39;\""));
	resp_free(&r);
}

static void test_bridge_right_code_and_continue_redirects_to_authorize(void **state)
{
	struct nl_flow_started s;
	char prefix[256], *loc, *v;

	(void)state;
	start_flow("alice", &s);
	loc = enter_code(&s);
	snprintf(prefix, sizeof(prefix), "%s/authorize?", mockproc_issuer(F.mp));
	assert_true(strncmp(loc, prefix, strlen(prefix)) == 0);
	assert_non_null(v = mockproc_query_param(loc, "state"));
	assert_true(strlen(v) >= 16);
	free(v);
	assert_non_null(v = mockproc_query_param(loc, "nonce"));
	free(v);
	assert_non_null(v = mockproc_query_param(loc, "code_challenge"));
	assert_int_equal(strlen(v), 43);
	free(v);
	assert_non_null(v = mockproc_query_param(loc, "code_challenge_method"));
	assert_string_equal(v, "S256");
	free(v);
	assert_non_null(v = mockproc_query_param(loc, "client_id"));
	assert_string_equal(v, CLIENT_ID);
	free(v);
	assert_non_null(v = mockproc_query_param(loc, "redirect_uri"));
	assert_string_equal(v, F.cfg.env.redirect_uri);
	free(v);
	assert_non_null(v = mockproc_query_param(loc, "prompt"));
	assert_string_equal(v, "login");
	free(v);
	free(loc);
	assert_flow(&s, NL_FLOW_PENDING, NL_REASON_NONE);
	nl_flow_started_clear(&s);
}

static void test_bridge_qr_link_shows_the_confirmation_page_not_nhs_login(void **state)
{
	struct nl_flow_started s;
	char *uri = NULL, *complete = NULL;
	long before = -1, after = -1;
	struct resp r;

	(void)state;
	start_flow("alice", &s);
	assert_int_equal(nl_bridge_verification_uri(F.b, s.user_code, &uri, &complete), 0);
	assert_int_equal(mockproc_stat(F.mp, "authorize", &before), 0);
	fetch(complete, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_security_headers(&r);
	assert_null(header(&r, "Location"));
	assert_non_null(strstr(r.body, "Check this sign-in before you continue"));
	assert_non_null(strstr(r.body, s.user_code)); /* "check it is the code on the screen" */
	assert_int_equal(mockproc_stat(F.mp, "authorize", &after), 0);
	assert_int_equal(after, before);
	resp_free(&r);
	assert_flow(&s, NL_FLOW_PENDING, NL_REASON_NONE);
	free(uri);
	free(complete);
	nl_flow_started_clear(&s);
}

static void test_bridge_too_many_wrong_codes_shows_limit_page(void **state)
{
	struct nl_flow_started s;
	char typed[32], form[64];
	struct resp r;
	unsigned i;

	(void)state;
	start_flow("alice", &s);
	for (i = 0; i < F.cfg.code_attempts; i++) {
		post_code("code=ACDEFGHJ", &r);
		assert_int_equal(r.status, 400);
		resp_free(&r);
	}
	/* now even the right code is refused from this address */
	lower_no_dash(s.user_code, typed, sizeof(typed));
	snprintf(form, sizeof(form), "code=%s", typed);
	post_code(form, &r);
	assert_int_equal(r.status, 429);
	assert_security_headers(&r);
	assert_non_null(strstr(r.body, "Too many attempts - wait 10 minutes"));
	resp_free(&r);
	nl_flow_started_clear(&s);
}

static time_t clock_plus_hour(void)
{
	return time(NULL) + 3600;
}

static void test_bridge_expired_code_says_start_again(void **state)
{
	struct nl_flow_started s;
	char form[64];
	struct resp r;

	(void)state;
	start_flow("alice", &s);
	nl_set_clock(clock_plus_hour);
	snprintf(form, sizeof(form), "code=%s", s.user_code);
	post_code(form, &r);
	assert_int_equal(r.status, 410);
	assert_non_null(strstr(r.body, "This code has expired - start again at your workstation"));
	resp_free(&r);
	nl_flow_started_clear(&s);
}

static void test_bridge_oversize_body_refused(void **state)
{
	char *big = malloc(5001);
	struct resp r;

	(void)state;
	assert_non_null(big);
	memcpy(big, "code=", 5);
	memset(big + 5, 'A', 4995);
	big[5000] = '\0';
	post_code(big, &r);
	assert_int_equal(r.status, 413);
	assert_security_headers(&r);
	resp_free(&r);
	free(big);
}

static void test_bridge_unknown_path_is_404_with_headers(void **state)
{
	struct resp r;

	(void)state;
	get_path("/etc/passwd", &r);
	assert_int_equal(r.status, 404);
	assert_security_headers(&r);
	resp_free(&r);
}

/* ---- the callback ---- */

static void test_bridge_full_sign_in_approves_flow(void **state)
{
	struct nl_flow_started s;
	char *authz, *cb;
	struct resp r;

	(void)state;
	start_flow("alice", &s);
	authz = enter_code(&s);
	cb = authorize_at_mock(authz);
	assert_true(strncmp(cb, F.cfg.env.redirect_uri, strlen(F.cfg.env.redirect_uri)) == 0);
	fetch(cb, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_security_headers(&r);
	assert_non_null(strstr(r.body, "Signed in - return to your workstation"));
	resp_free(&r);
	assert_flow(&s, NL_FLOW_APPROVED, NL_REASON_NONE);
	assert_int_equal(nl_tokcache_count(F.tc), 1);
	free(authz);
	free(cb);
	nl_flow_started_clear(&s);
}

static void test_bridge_replayed_callback_is_400(void **state)
{
	struct nl_flow_started s;
	char *authz, *cb;
	struct resp r;

	(void)state;
	start_flow("alice", &s);
	authz = enter_code(&s);
	cb = authorize_at_mock(authz);
	fetch(cb, NULL, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	fetch(cb, NULL, &r);
	assert_int_equal(r.status, 400);
	assert_security_headers(&r);
	assert_non_null(strstr(r.body, "already been used"));
	resp_free(&r);
	assert_flow(&s, NL_FLOW_APPROVED, NL_REASON_NONE);
	free(authz);
	free(cb);
	nl_flow_started_clear(&s);
}

static void test_bridge_callback_access_denied_denies_flow(void **state)
{
	struct nl_flow_started s;
	char *authz, *st, *path = NULL;
	struct resp r;

	(void)state;
	start_flow("alice", &s);
	authz = enter_code(&s);
	st = mockproc_query_param(authz, "state");
	assert_non_null(st);
	assert_int_not_equal(asprintf(&path, "/callback?error=access_denied&state=%s", st), -1);
	get_path(path, &r);
	assert_int_equal(r.status, 403);
	assert_security_headers(&r);
	assert_non_null(strstr(r.body, "did not sign you in"));
	resp_free(&r);
	assert_flow(&s, NL_FLOW_DENIED, NL_REASON_DENIED);
	assert_int_equal(nl_tokcache_count(F.tc), 0);
	free(path);
	free(st);
	free(authz);
	nl_flow_started_clear(&s);
}

static void test_bridge_callback_unknown_state_is_400_without_exchange(void **state)
{
	struct resp r;
	long before = -1, after = -1;

	(void)state;
	assert_int_equal(mockproc_stat(F.mp, "token", &before), 0);
	get_path("/callback?state=not-a-state&code=abc", &r);
	assert_int_equal(r.status, 400);
	assert_security_headers(&r);
	resp_free(&r);
	get_path("/callback?code=abc", &r);
	assert_int_equal(r.status, 400);
	resp_free(&r);
	assert_int_equal(mockproc_stat(F.mp, "token", &after), 0);
	assert_int_equal(after, before);
}

static void test_bridge_mismatched_account_denied(void **state)
{
	struct nl_flow_started s;
	char *authz, *cb;
	struct resp r;

	(void)state;
	start_flow("bob", &s); /* the mock signs in p9, who maps to alice */
	authz = enter_code(&s);
	cb = authorize_at_mock(authz);
	fetch(cb, NULL, &r);
	assert_int_equal(r.status, 403);
	assert_non_null(strstr(r.body, "not linked to the account"));
	resp_free(&r);
	assert_flow(&s, NL_FLOW_DENIED, NL_REASON_MISMATCH);
	assert_int_equal(nl_tokcache_count(F.tc), 0);
	free(authz);
	free(cb);
	nl_flow_started_clear(&s);
}

/* ---- the callback's parameters, clause by clause ---- */

/* A flow for alice, walked to the mock and back: the callback URL (new string), before it is
 * fetched. */
static char *callback_url_for(struct nl_flow_started *s)
{
	char *authz, *cb;

	start_flow("alice", s);
	authz = enter_code(s);
	cb = authorize_at_mock(authz);
	free(authz);
	return cb;
}

static long token_count(void)
{
	long n = -1;
	assert_int_equal(mockproc_stat(F.mp, "token", &n), 0);
	return n;
}

static void mock_fault(const char *name)
{
	char body[128];
	long status = 0;

	snprintf(body, sizeof(body), "{\"fault\":\"%s\"}", name);
	assert_int_equal(mockproc_control(F.mp, body, &status), 0);
	assert_int_equal(status, 200);
}

/* Fetch cb with extra appended to its query: the flow ends invalid_token, the phone is told the
 * answer could not be checked, and the code never reaches the token endpoint. */
static void assert_callback_refused(const char *extra)
{
	struct nl_flow_started s;
	char *cb = callback_url_for(&s), *url = NULL;
	long tokens = token_count();
	struct resp r;

	assert_int_not_equal(asprintf(&url, "%s%s", cb, extra), -1);
	fetch(url, NULL, &r);
	assert_int_equal(r.status, 502);
	assert_non_null(strstr(r.body, "could not be checked"));
	resp_free(&r);
	assert_flow(&s, NL_FLOW_DENIED, NL_REASON_INVALID_TOKEN);
	assert_int_equal(token_count(), tokens);
	assert_int_equal(nl_tokcache_count(F.tc), 0);
	free(url);
	free(cb);
	nl_flow_started_clear(&s);
}

/* RFC 6749 3.1: "parameters MUST NOT be included more than once". */
static void test_bridge_callback_with_code_twice_is_refused_without_exchange(void **state)
{
	(void)state;
	assert_callback_refused("&code=a-second-code");
}

static void test_bridge_callback_with_error_twice_is_refused(void **state)
{
	(void)state;
	assert_callback_refused("&error=access_denied&error=access_denied");
}

/* A repeated state names no flow for sure: 400, and the flow is left as it was. */
static void test_bridge_callback_with_state_twice_is_400_and_leaves_the_flow(void **state)
{
	struct nl_flow_started s;
	char *cb = callback_url_for(&s), *st = mockproc_query_param(cb, "state"), *url = NULL;
	long tokens = token_count();
	struct resp r;

	(void)state;
	assert_non_null(st);
	assert_int_not_equal(asprintf(&url, "%s&state=%s", cb, st), -1);
	fetch(url, NULL, &r);
	assert_int_equal(r.status, 400);
	resp_free(&r);
	assert_flow(&s, NL_FLOW_PENDING, NL_REASON_NONE);
	assert_int_equal(token_count(), tokens);
	/* the honest callback still finishes it */
	fetch(cb, NULL, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	assert_flow(&s, NL_FLOW_APPROVED, NL_REASON_NONE);
	free(url);
	free(st);
	free(cb);
	nl_flow_started_clear(&s);
}

/* RFC 9207 2.4: iss, when present, must equal the issuer exactly (simple string comparison). */
static void test_bridge_callback_with_wrong_iss_is_refused(void **state)
{
	(void)state;
	assert_callback_refused("&iss=https%3A%2F%2Fimpostor.example");
}

static void test_bridge_callback_with_iss_plus_a_slash_is_refused(void **state)
{
	char *extra = NULL, *enc = curl_easy_escape(NULL, F.cfg.env.issuer, 0);

	(void)state;
	assert_int_not_equal(asprintf(&extra, "&iss=%s%%2F", enc), -1);
	assert_callback_refused(extra);
	free(extra);
	curl_free(enc);
}

/* "%00" must not end the value early: issuer%00junk is not the issuer. */
static void test_bridge_callback_with_a_nul_byte_in_iss_is_refused(void **state)
{
	char *extra = NULL, *enc = curl_easy_escape(NULL, F.cfg.env.issuer, 0);

	(void)state;
	assert_int_not_equal(asprintf(&extra, "&iss=%s%%00.impostor.example", enc), -1);
	assert_callback_refused(extra);
	free(extra);
	curl_free(enc);
}

static void test_bridge_callback_with_the_right_iss_signs_in(void **state)
{
	struct nl_flow_started s;
	char *cb = callback_url_for(&s), *url = NULL, *enc = curl_easy_escape(NULL, F.cfg.env.issuer, 0);
	struct resp r;

	(void)state;
	assert_int_not_equal(asprintf(&url, "%s&iss=%s", cb, enc), -1);
	fetch(url, NULL, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	assert_flow(&s, NL_FLOW_APPROVED, NL_REASON_NONE);
	curl_free(enc);
	free(url);
	free(cb);
	nl_flow_started_clear(&s);
}

/* RFC 9207 2.4: with authorization_response_iss_parameter_supported in discovery, a response
 * without iss is refused. */
static void test_bridge_callback_without_iss_that_discovery_promises_is_refused(void **state)
{
	(void)state;
	mock_fault("discovery_iss_param");
	nl_oidc_flush(F.oidc);
	assert_callback_refused("");
	mock_fault("none");
	nl_oidc_flush(F.oidc);
}

/* RFC 6749 4.1.2: code is REQUIRED in a success response. */
static void test_bridge_callback_without_code_ends_the_flow_without_exchange(void **state)
{
	struct nl_flow_started s;
	char *authz, *st, *path = NULL;
	long tokens;
	struct resp r;

	(void)state;
	start_flow("alice", &s);
	authz = enter_code(&s);
	st = mockproc_query_param(authz, "state");
	tokens = token_count();
	assert_int_not_equal(asprintf(&path, "/callback?state=%s", st), -1);
	get_path(path, &r);
	assert_int_equal(r.status, 502);
	resp_free(&r);
	assert_flow(&s, NL_FLOW_DENIED, NL_REASON_UNAVAILABLE);
	assert_int_equal(token_count(), tokens);
	free(path);
	free(st);
	free(authz);
	nl_flow_started_clear(&s);
}

/* RFC 6749 4.1.2.1: an error response is a denial, whatever the error word holds. */
static void test_bridge_callback_error_with_an_unsafe_word_is_a_denial(void **state)
{
	struct nl_flow_started s;
	char *authz, *st, *path = NULL;
	struct resp r;

	(void)state;
	start_flow("alice", &s);
	authz = enter_code(&s);
	st = mockproc_query_param(authz, "state");
	assert_int_not_equal(
	    asprintf(&path, "/callback?error=access_denied%%1B%%5B2J%%3Cscript%%3E&state=%s", st), -1);
	get_path(path, &r);
	assert_int_equal(r.status, 403);
	assert_null(strstr(r.body, "<script>"));
	resp_free(&r);
	assert_flow(&s, NL_FLOW_DENIED, NL_REASON_DENIED);
	free(path);
	free(st);
	free(authz);
	nl_flow_started_clear(&s);
}

/* ---- the confirmation page and the browser binding (issue 11: phishing and login CSRF) ---- */

static long stat_count(const char *endpoint)
{
	long n = -1;

	assert_int_equal(mockproc_stat(F.mp, endpoint, &n), 0);
	return n;
}

static void assert_has(const char *html, const char *needle)
{
	if (strstr(html, needle) == NULL)
		fail_msg("the page lacks \"%s\"", needle);
}

/* A flow started as a PAM stack would, with its service, remote host and terminal. */
static void start_flow_from(const char *user, const char *service, const char *rhost, const char *tty,
                            bool caller_supplied, struct nl_flow_started *s)
{
	const struct nl_flow_origin o = {.user = user,
	                                 .service = service,
	                                 .rhost = rhost,
	                                 .tty = tty,
	                                 .owner = 1,
	                                 .caller_supplied = caller_supplied};

	memset(s, 0, sizeof(*s));
	assert_int_equal(nl_flows_start_from(F.fl, &o, s), 0);
}

/* The attack: someone starts a sign-in for alice over SSH and sends her the QR code's link. Her
 * phone shows, from the daemon's record, whose account, which computer and what access - and the
 * warning - before anything goes to NHS login; "This was not me" ends the attacker's flow. */
static void test_phishing_link_shows_account_computer_access_and_the_victim_can_refuse(void **state)
{
	struct nl_flow_started s;
	char *uri = NULL, *complete = NULL, host[256] = "", *cookie;
	long authz = stat_count("authorize");
	struct resp page, r;

	(void)state;
	start_flow_from("alice", "sshd", "203.0.113.9", "ssh", false, &s);
	assert_int_equal(nl_bridge_verification_uri(F.b, s.user_code, &uri, &complete), 0);
	fetch(complete, NULL, &page);
	assert_int_equal(page.status, 200);
	assert_security_headers(&page);
	assert_has(page.body, "<dt>Account</dt><dd>alice</dd>");
	assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
	assert_has(page.body, host);
	assert_has(page.body, "<dt>Access</dt><dd>SSH from 203.0.113.9");
	assert_has(page.body, "PAM service: sshd, terminal ssh");
	assert_has(page.body, "<dt>Started</dt><dd>just now</dd>");
	assert_has(page.body, s.user_code);
	assert_has(page.body, "Check it is the code on the computer's screen.");
	assert_has(page.body, "Only continue if you are at this computer now and you started this sign-in. "
	                      "If someone sent you this link or code, stop.");
	assert_has(page.body, ">Continue to NHS login</button>");
	assert_has(page.body, ">This was not me</button>");
	assert_null(strstr(page.body, "reported how it is being accessed")); /* root's own record */
	cookie = header(&page, "Set-Cookie");
	assert_non_null(cookie);
	assert_true(strncmp(cookie, "__Host-nhslogin=", 16) == 0);
	assert_non_null(strstr(cookie, "; Path=/"));
	assert_non_null(strstr(cookie, "; Secure"));
	assert_non_null(strstr(cookie, "; HttpOnly"));
	assert_non_null(strstr(cookie, "; SameSite=Lax"));
	assert_null(strstr(cookie, "Domain="));
	free(cookie);
	assert_int_equal(stat_count("authorize"), authz); /* NHS login has not been asked */
	assert_flow(&s, NL_FLOW_PENDING, NL_REASON_NONE);

	answer_in(F.phone, page.body, "refuse", &r);
	assert_int_equal(r.status, 200);
	assert_has(r.body, "Sign-in stopped");
	assert_null(header(&r, "Location"));
	resp_free(&r);
	assert_flow(&s, NL_FLOW_DENIED, NL_REASON_DENIED);
	assert_int_equal(stat_count("authorize"), authz);
	/* the code is dead now */
	fetch(complete, NULL, &r);
	assert_int_equal(r.status, 400);
	assert_has(r.body, "not recognised");
	resp_free(&r);
	resp_free(&page);
	free(uri);
	free(complete);
	nl_flow_started_clear(&s);
}

/* The page states the kind of access in words, from the PAM service. */
static void test_confirm_page_names_the_kind_of_access(void **state)
{
	static const struct {
		const char *service, *rhost, *tty, *words;
	} cases[] = {
	    {"login", "", "tty1", "<dd>the console"},
	    {"sudo", "", "pts/3", "<dd>sudo"},
	    {"su", "", "pts/3", "<dd>su"},
	    {"gnome-screensaver", "", ":0", "<dd>unlocking the screen"},
	    {"gdm-password", "", ":0", "<dd>the graphical login"},
	    {"sshd", "2001:db8::7", "ssh", "<dd>SSH from 2001:db8::7"},
	    {"cockpit", "198.51.100.4", "", "<dd>a sign-in from 198.51.100.4"},
	    {"", "", "", "<dd>a sign-in at this computer"},
	};
	struct resp r;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct nl_flow_started s;
		char svc[300];

		start_flow_from("alice", cases[i].service, cases[i].rhost, cases[i].tty, false, &s);
		confirm_page_in(F.phone, &s, &r);
		assert_has(r.body, cases[i].words);
		snprintf(svc, sizeof(svc), "PAM service: %s",
		         cases[i].service[0] ? cases[i].service : "(none given)");
		assert_has(r.body, svc);
		resp_free(&r);
		nl_flow_started_clear(&s);
	}
}

/* A socket-group caller (not root) supplied the service, rhost and tty: the page says so, and
 * markup or control characters in them are shown inert. */
static void test_confirm_page_labels_caller_supplied_access(void **state)
{
	struct nl_flow_started s;
	struct resp r;

	(void)state;
	start_flow_from("alice", "sshd", "<b>10.9.9.9</b>\t", "ssh", true, &s);
	confirm_page_in(F.phone, &s, &r);
	assert_has(r.body, "A program running as this account reported how it is being accessed: the "
	                   "computer did not check it.");
	assert_has(r.body, "SSH from &lt;b&gt;10.9.9.9&lt;/b&gt;?");
	assert_null(strstr(r.body, "<b>10.9.9.9"));
	resp_free(&r);
	nl_flow_started_clear(&s);
}

/* "Started 40 seconds ago", from the flow's own start time. */
static time_t clock_plus_40s(void)
{
	return time(NULL) + 40;
}

static void test_confirm_page_says_how_long_ago_it_started(void **state)
{
	struct nl_flow_started s;
	struct resp r;

	(void)state;
	start_flow("alice", &s);
	nl_set_clock(clock_plus_40s);
	confirm_page_in(F.phone, &s, &r);
	nl_set_clock(NULL);
	if (strstr(r.body, "<dd>40 seconds ago</dd>") == NULL &&
	    strstr(r.body, "<dd>41 seconds ago</dd>") == NULL)
		fail_msg("no \"40 seconds ago\" on the page");
	resp_free(&r);
	nl_flow_started_clear(&s);
}

/* Login CSRF: the phone that entered the code continues (its cookie binds the flow), but the
 * callback arrives from another browser - a stolen or forwarded sign-in link. It neither finishes
 * the flow nor ends it, and the code is not exchanged; the phone's own callback still signs in. */
static void test_callback_from_another_browser_neither_finishes_nor_ends_the_flow(void **state)
{
	struct nl_flow_started s;
	char *authz, *cb;
	long token = stat_count("token");
	struct resp r;

	(void)state;
	start_flow("alice", &s);
	authz = enter_code(&s);
	cb = authorize_at_mock(authz);
	fetch_in(F.other, cb, NULL, NULL, &r);
	assert_int_equal(r.status, 403);
	assert_security_headers(&r);
	assert_has(r.body, "This sign-in was started in another browser");
	resp_free(&r);
	fetch_in(NULL, cb, NULL, NULL, &r); /* no cookies at all */
	assert_int_equal(r.status, 403);
	resp_free(&r);
	assert_int_equal(stat_count("token"), token);
	assert_flow(&s, NL_FLOW_PENDING, NL_REASON_NONE);
	fetch(cb, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_has(r.body, "Signed in - return to your workstation");
	resp_free(&r);
	assert_flow(&s, NL_FLOW_APPROVED, NL_REASON_NONE);
	free(authz);
	free(cb);
	nl_flow_started_clear(&s);
}

/* Nor can another browser end the flow with a forged error answer, or repeated parameters. */
static void test_callback_from_another_browser_cannot_deny_the_flow(void **state)
{
	struct nl_flow_started s;
	char *authz, *st, *path = NULL, *u;
	struct resp r;

	(void)state;
	start_flow("alice", &s);
	authz = enter_code(&s);
	assert_non_null(st = mockproc_query_param(authz, "state"));
	assert_int_not_equal(asprintf(&path, "/callback?error=access_denied&state=%s", st), -1);
	u = bridge_url(path);
	fetch_in(F.other, u, NULL, NULL, &r);
	assert_int_equal(r.status, 403);
	resp_free(&r);
	free(u);
	free(path);
	assert_int_not_equal(asprintf(&path, "/callback?code=a&code=b&state=%s", st), -1);
	u = bridge_url(path);
	fetch_in(F.other, u, NULL, NULL, &r);
	assert_int_equal(r.status, 403);
	resp_free(&r);
	assert_flow(&s, NL_FLOW_PENDING, NL_REASON_NONE);
	free(u);
	free(path);
	free(st);
	free(authz);
	nl_flow_started_clear(&s);
}

/* The attacker enters the victim's code in their own browser, continues, and sends the victim the
 * NHS login link (the real NHS login address). The victim signs in there, but the answer comes
 * back to the victim's browser, which never continued: refused, the flow is not approved. */
static void test_nhs_login_link_sent_by_an_attacker_does_not_approve(void **state)
{
	struct nl_flow_started s;
	char *authz, *cb;
	struct resp r;

	(void)state;
	start_flow("alice", &s);
	authz = enter_code_in(F.other, &s); /* the attacker's browser */
	cb = authorize_at_mock(authz);      /* the victim signs in at NHS login */
	fetch(cb, NULL, &r);                /* ... and comes back in her own browser */
	assert_int_equal(r.status, 403);
	resp_free(&r);
	assert_flow(&s, NL_FLOW_PENDING, NL_REASON_NONE);
	free(authz);
	free(cb);
	nl_flow_started_clear(&s);
}

/* Continuing needs the cookie the page set and the token made for it: a cross-site POST (no
 * cookie: SameSite=Lax), a token from another browser's page, or none, change nothing. */
static void test_continue_needs_the_pages_cookie_and_token(void **state)
{
	struct nl_flow_started s;
	struct resp page, other, r;
	char *u = bridge_url("/d/confirm"), *flow, *form = NULL;

	(void)state;
	start_flow("alice", &s);
	confirm_page_in(F.phone, &s, &page);
	answer_in(NULL, page.body, "continue", &r); /* the form's fields, no cookie */
	assert_int_equal(r.status, 403);
	assert_has(r.body, "did not keep the sign-in cookie");
	assert_null(header(&r, "Location"));
	resp_free(&r);
	confirm_page_in(F.other, &s, &other);
	answer_in(F.other, page.body, "continue", &r); /* another browser, the phone's token */
	assert_int_equal(r.status, 403);
	assert_has(r.body, "This page has expired");
	resp_free(&r);
	answer_in(F.other, page.body, "refuse", &r); /* nor may it refuse with it */
	assert_int_equal(r.status, 403);
	resp_free(&r);
	assert_non_null(flow = hidden(page.body, "flow"));
	assert_int_not_equal(asprintf(&form, "flow=%s&answer=continue", flow), -1);
	fetch(u, form, &r); /* no token */
	assert_int_equal(r.status, 403);
	resp_free(&r);
	free(form);
	fetch(u, "flow=../../x&token=a&answer=continue", &r);
	assert_int_equal(r.status, 400);
	resp_free(&r);
	get_path("/d/confirm", &r);
	assert_int_equal(r.status, 405);
	resp_free(&r);
	assert_flow(&s, NL_FLOW_PENDING, NL_REASON_NONE);
	/* the phone itself continues */
	answer_in(F.phone, page.body, "continue", &r);
	assert_int_equal(r.status, 302);
	resp_free(&r);
	resp_free(&page);
	resp_free(&other);
	free(flow);
	free(u);
	nl_flow_started_clear(&s);
}

/* One sign-in, one browser: once the phone continued, another browser that knows the code (it is
 * on the screen) cannot take the sign-in over; the phone can still finish it. */
static void test_second_browser_cannot_take_over_a_continued_sign_in(void **state)
{
	struct nl_flow_started s;
	struct resp page, r;
	char *authz, *cb;

	(void)state;
	start_flow("alice", &s);
	authz = enter_code(&s);
	confirm_page_in(F.other, &s, &page);
	answer_in(F.other, page.body, "continue", &r);
	assert_int_equal(r.status, 409);
	assert_has(r.body, "being finished in another browser");
	assert_null(header(&r, "Location"));
	resp_free(&r);
	resp_free(&page);
	cb = authorize_at_mock(authz);
	fetch(cb, NULL, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	assert_flow(&s, NL_FLOW_APPROVED, NL_REASON_NONE);
	free(authz);
	free(cb);
	nl_flow_started_clear(&s);
}

/* A browser keeps one cookie: two pages (two tabs) of one browser both work. */
static void test_one_browser_keeps_its_cookie_across_pages(void **state)
{
	struct nl_flow_started s;
	struct resp first, second, r;
	char *c1, *c2;

	(void)state;
	start_flow("alice", &s);
	confirm_page_in(F.phone, &s, &first);
	confirm_page_in(F.phone, &s, &second);
	assert_non_null(c1 = header(&first, "Set-Cookie"));
	assert_non_null(c2 = header(&second, "Set-Cookie"));
	assert_string_equal(c1, c2);
	answer_in(F.phone, first.body, "continue", &r);
	assert_int_equal(r.status, 302);
	resp_free(&r);
	free(c1);
	free(c2);
	resp_free(&first);
	resp_free(&second);
	nl_flow_started_clear(&s);
}

/* prompt=login by default (a phishing victim with a live NHS login session must still sign in);
 * prompt_login = no leaves it out. */
static void test_prompt_login_is_sent_unless_switched_off(void **state)
{
	struct nl_flow_started s;
	char *authz, *v;

	(void)state;
	start_flow("alice", &s);
	authz = enter_code(&s);
	assert_non_null(v = mockproc_query_param(authz, "prompt"));
	assert_string_equal(v, "login");
	free(v);
	free(authz);
	nl_flow_started_clear(&s);

	F.cfg.env.prompt_login = false;
	start_flow("alice", &s);
	authz = enter_code(&s);
	F.cfg.env.prompt_login = true;
	assert_null(mockproc_query_param(authz, "prompt"));
	assert_null(strstr(authz, "prompt="));
	free(authz);
	nl_flow_started_clear(&s);
}

/* ---- listener settings ---- */

static void test_bridge_verification_uri_uses_bound_port(void **state)
{
	char *uri = NULL, *complete = NULL, want[128];

	(void)state;
	assert_int_equal(nl_bridge_verification_uri(F.b, "KPWD-RHXT", &uri, &complete), 0);
	snprintf(want, sizeof(want), "http://127.0.0.1:%u/d", (unsigned)F.port);
	assert_string_equal(uri, want);
	snprintf(want, sizeof(want), "http://127.0.0.1:%u/d?code=KPWDRHXT", (unsigned)F.port);
	assert_string_equal(complete, want);
	free(uri);
	free(complete);
	assert_int_equal(nl_bridge_verification_uri(F.b, "not a code", &uri, &complete), NL_ERR_INVALID);
}

static void test_bridge_verification_uri_uses_public_url(void **state)
{
	struct nl_bridge *b = NULL;
	char *uri = NULL, *complete = NULL, *saved_listen = strdup(F.cfg.listen), err[256];

	(void)state;
	set_str(&F.cfg.listen, "127.0.0.1:0");
	set_str(&F.cfg.public_url, "https://signin.example.nhs.uk/");
	assert_int_equal(nl_bridge_start(&F.cfg, F.fl, F.oidc, F.tc, &b, err, sizeof(err)), 0);
	assert_int_equal(nl_bridge_verification_uri(b, "KPWD-RHXT", &uri, &complete), 0);
	assert_string_equal(uri, "https://signin.example.nhs.uk/d");
	assert_string_equal(complete, "https://signin.example.nhs.uk/d?code=KPWDRHXT");
	free(uri);
	free(complete);
	nl_bridge_stop(b);
	set_str(&F.cfg.public_url, NULL);
	set_str(&F.cfg.listen, saved_listen);
	free(saved_listen);
}

static void test_bridge_refuses_plain_http_off_loopback(void **state)
{
	struct nl_bridge *b = NULL;
	char *saved_listen = strdup(F.cfg.listen), err[256] = "";

	(void)state;
	set_str(&F.cfg.listen, "0.0.0.0:0");
	assert_int_equal(nl_bridge_start(&F.cfg, F.fl, F.oidc, F.tc, &b, err, sizeof(err)), NL_ERR_CONFIG);
	assert_null(b);
	assert_non_null(strstr(err, "plain http"));
	set_str(&F.cfg.listen, saved_listen);
	free(saved_listen);
}

static void test_bridge_serves_https_with_tls_cert(void **state)
{
	struct nl_bridge *b = NULL;
	char *cert = NULL, *key = NULL, *saved_listen = strdup(F.cfg.listen), err[256] = "";
	char cpath[128], kpath[128], *url = NULL;
	struct resp r;

	(void)state;
	if (!testsrv_tls_supported()) {
		free(saved_listen);
		skip_because("libmicrohttpd was built without TLS: cannot serve https here");
	}
	assert_int_equal(testsrv_selfsigned("127.0.0.1", &cert, &key), 0);
	snprintf(cpath, sizeof(cpath), "%s/tls.crt", F.dir);
	snprintf(kpath, sizeof(kpath), "%s/tls.key", F.dir);
	write_text(cpath, cert, 0644);
	write_text(kpath, key, 0600);
	set_str(&F.cfg.listen, "127.0.0.1:0");
	set_str(&F.cfg.tls_cert, cpath);
	set_str(&F.cfg.tls_key, kpath);
	assert_int_equal(nl_bridge_start(&F.cfg, F.fl, F.oidc, F.tc, &b, err, sizeof(err)), 0);
	assert_int_not_equal(asprintf(&url, "https://127.0.0.1:%u/d", (unsigned)nl_bridge_port(b)), -1);
	fetch_ca(url, NULL, cpath, &r);
	assert_int_equal(r.status, 200);
	assert_security_headers(&r);
	resp_free(&r);
	nl_bridge_stop(b);
	set_str(&F.cfg.tls_cert, NULL);
	set_str(&F.cfg.tls_key, NULL);
	set_str(&F.cfg.listen, saved_listen);
	free(saved_listen);
	free(url);
	free(cert);
	free(key);
}

/* ---- nl_signin_complete on its own ---- */

static struct nl_identity identity_with_nhs_number(const char *nhs)
{
	struct nl_identity id = {0};

	id.claims = json_pack("{s:s, s:s}", "sub", "sub-x", "nhs_number", nhs);
	id.sub = strdup("sub-x");
	id.vot = strdup("P9.Cp.Cd");
	id.level = 9;
	id.auth_time = nl_now();
	id.id_exp = nl_now() + 3600;
	return id;
}

/* A sign-in of user's flow by the identity with this NHS number ends denied with want; nothing is
 * cached. */
static void assert_signin_denied(const char *user, const char *nhs, enum nl_reason want)
{
	struct nl_flow_started s;
	struct nl_identity id = identity_with_nhs_number(nhs);

	start_flow(user, &s);
	assert_int_equal(nl_signin_complete(&F.cfg, F.fl, F.tc, s.id, user, NL_OUT_OK, &id, NULL), want);
	assert_flow(&s, NL_FLOW_DENIED, want);
	assert_int_equal(nl_tokcache_count(F.tc), 0);
	nl_identity_clear(&id);
	nl_flow_started_clear(&s);
}

static void test_signin_unmapped_identity_is_no_mapping(void **state)
{
	(void)state;
	assert_signin_denied("alice", "9686368906", NL_REASON_NO_MAPPING); /* valid, but in no map line */
}

static void test_signin_mapped_identity_approves_and_caches(void **state)
{
	struct nl_flow_started s;
	struct nl_identity id = identity_with_nhs_number(P9_NHS_NUMBER);

	(void)state;
	start_flow("alice", &s);
	assert_int_equal(nl_signin_complete(&F.cfg, F.fl, F.tc, s.id, "alice", NL_OUT_OK, &id, NULL),
	                 NL_REASON_NONE);
	assert_flow(&s, NL_FLOW_APPROVED, NL_REASON_NONE);
	assert_int_equal(nl_tokcache_count(F.tc), 1);
	nl_identity_clear(&id);
	nl_flow_started_clear(&s);
}

/* A sign-in whose flow wants the terminal's number is never cached for reuse: the number may never
 * come (the phished person is not at that terminal), and a reuse would skip it. */
static void test_signin_with_number_matching_is_never_cached(void **state)
{
	struct nl_identity id = identity_with_nhs_number(P9_NHS_NUMBER);
	const struct nl_flow_origin o = {.user = "alice",
	                                 .service = "sshd",
	                                 .rhost = "203.0.113.9",
	                                 .tty = "ssh",
	                                 .owner = 1,
	                                 .number_match = true};
	const struct nl_reuse_place here = {.service = "sshd",
	                                    .rhost = "203.0.113.9",
	                                    .tty = "ssh",
	                                    .by_root = true,
	                                    .audit_session = NL_AUDIT_SESSION_NONE,
	                                    .conn = 1};
	struct nl_flow_started s;
	unsigned number = 0;
	char typed[8];

	(void)state;
	(void)nl_tokcache_reuse(F.tc, &F.cfg, "alice", &here, nl_now(), NULL); /* as the server does */
	memset(&s, 0, sizeof(s));
	assert_int_equal(nl_flows_start_from(F.fl, &o, &s), 0);
	assert_int_equal(nl_signin_complete(&F.cfg, F.fl, F.tc, s.id, "alice", NL_OUT_OK, &id, NULL),
	                 NL_REASON_NONE);
	assert_int_equal(nl_tokcache_count(F.tc), 0);
	/* not when the right number comes either: the cache never saw this sign-in */
	assert_int_equal(nl_flows_number_of(F.fl, s.id, &number), 0);
	snprintf(typed, sizeof(typed), "%u", number);
	assert_int_equal(nl_flows_enter_number(F.fl, s.device_code, typed), 0);
	assert_flow(&s, NL_FLOW_APPROVED, NL_REASON_NONE);
	assert_int_equal(nl_tokcache_count(F.tc), 0);
	nl_identity_clear(&id);
	nl_flow_started_clear(&s);
}

static void test_signin_outcomes_become_reasons(void **state)
{
	static const struct {
		enum nl_outcome out;
		enum nl_reason want;
	} cases[] = {
	    {NL_OUT_DENIED, NL_REASON_DENIED},
	    {NL_OUT_EXPIRED, NL_REASON_EXPIRED},
	    {NL_OUT_INVALID_TOKEN, NL_REASON_INVALID_TOKEN},
	    {NL_OUT_LEVEL, NL_REASON_LEVEL},
	    {NL_OUT_UNAVAILABLE, NL_REASON_UNAVAILABLE},
	    {NL_OUT_PENDING, NL_REASON_UNAVAILABLE},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct nl_flow_started s;
		start_flow("alice", &s);
		assert_int_equal(
		    nl_signin_complete(&F.cfg, F.fl, F.tc, s.id, "alice", cases[i].out, NULL, "detail"),
		    cases[i].want);
		assert_flow(&s, NL_FLOW_DENIED, cases[i].want);
		nl_flow_started_clear(&s);
	}
	assert_int_equal(nl_tokcache_count(F.tc), 0);
}

/* The decision is signin.c's: an identity that maps to another account than the flow's user denies
 * the flow as a mismatch, and nothing is cached. */
static void test_signin_identity_of_another_account_is_mismatch(void **state)
{
	(void)state;
	assert_signin_denied("bob", P9_NHS_NUMBER, NL_REASON_MISMATCH); /* alice's */
}

static void test_signin_ok_without_identity_is_unavailable(void **state)
{
	struct nl_flow_started s;

	(void)state;
	start_flow("alice", &s);
	assert_int_equal(nl_signin_complete(&F.cfg, F.fl, F.tc, s.id, "alice", NL_OUT_OK, NULL, NULL),
	                 NL_REASON_UNAVAILABLE);
	assert_flow(&s, NL_FLOW_DENIED, NL_REASON_UNAVAILABLE);
	nl_flow_started_clear(&s);
}

/* ---- the phone's address behind a reverse proxy (issue 11, finding 6) ---- */

/* POST form to /d with extra request headers (NULL-terminated "Name: value" lines); the status. */
static long post_code_with(const char *form, const char *const *headers)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char *u = bridge_url("/d");
	struct resp r;
	long status = 0;

	memset(&r, 0, sizeof(r));
	assert_non_null(c);
	for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
		h = curl_slist_append(h, headers[i]);
	curl_easy_setopt(c, CURLOPT_URL, u);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(form));
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	free(r.body);
	free(u);
	return status;
}

/* POST form with one header line. */
static long post_code_as(const char *form, const char *header_line)
{
	const char *h[] = {header_line, NULL};
	return post_code_with(form, h);
}

static void right_code_form(const struct nl_flow_started *s, char *form, size_t len)
{
	char typed[32];

	lower_no_dash(s->user_code, typed, sizeof(typed));
	snprintf(form, len, "code=%s", typed);
}

/* A code the bridge took: on to the confirmation page or NHS login, not refused. */
static void assert_code_taken(long status)
{
	if (status != 302 && status != 200)
		fail_msg("the right code got HTTP %ld", status);
}

static void trust_proxies(const char *list)
{
	char err[256] = "";

	if (list == NULL) {
		F.cfg.n_trusted_proxies = 0;
		return;
	}
	assert_int_equal(nl_config_set(&F.cfg, "bridge", "trusted_proxies", list, err, sizeof(err)), 0);
}

/* The attack of finding 6 through the recommended proxy (on loopback, trusted): 1,000 wrong codes
 * from 100 phones, then the person who saw the screen types the right code on their own phone. */
static void
test_bridge_thousand_wrong_codes_through_a_trusted_proxy_do_not_lock_out_a_fresh_phone(void **state)
{
	struct nl_flow_started s;
	char form[64], xff[64];
	int refused = 0;

	(void)state;
	trust_proxies("127.0.0.1");
	start_flow("alice", &s);
	for (int i = 0; i < 1000; i++) {
		snprintf(xff, sizeof(xff), "X-Forwarded-For: 203.0.113.%d", i % 100);
		long st = post_code_as("code=ACDEFGHJ", xff);
		assert_true(st == 400 || st == 429);
		refused += st == 429;
	}
	assert_true(refused > 0);
	right_code_form(&s, form, sizeof(form));
	assert_code_taken(post_code_as(form, "X-Forwarded-For: 198.51.100.23"));
	/* RFC 7239 says the same */
	assert_code_taken(post_code_as(form, "Forwarded: for=\"[2001:db8:cafe::17]:4711\";proto=https"));
	trust_proxies(NULL);
	nl_flow_started_clear(&s);
}

/* One phone guessing through the proxy is stopped at code_attempts; the addresses it writes to
 * the left of the proxy's own entry do not make it someone new. */
static void test_bridge_one_phone_guessing_through_a_trusted_proxy_is_throttled(void **state)
{
	struct nl_flow_started s;
	char form[64], xff[96];

	(void)state;
	trust_proxies("127.0.0.1");
	start_flow("alice", &s);
	for (unsigned i = 0; i < F.cfg.code_attempts; i++) {
		snprintf(xff, sizeof(xff), "X-Forwarded-For: 10.9.%u.1, 198.51.100.9", i);
		assert_int_equal(post_code_as("code=ACDEFGHJ", xff), 400);
	}
	right_code_form(&s, form, sizeof(form));
	assert_int_equal(post_code_as(form, "X-Forwarded-For: 1.2.3.4, 198.51.100.9"), 429);
	assert_int_equal(post_code_as(form, "Forwarded: for=198.51.100.9"), 429);
	/* another phone behind the same proxy is not held up */
	assert_code_taken(post_code_as(form, "X-Forwarded-For: 198.51.100.10"));
	trust_proxies(NULL);
	nl_flow_started_clear(&s);
}

/* X-Forwarded-For from a peer not in trusted_proxies is ignored: a guesser cannot be someone new
 * with each request by writing a new header. */
static void test_bridge_forwarded_for_from_an_untrusted_peer_is_ignored(void **state)
{
	struct nl_flow_started s;
	char form[64], xff[64];

	(void)state;
	trust_proxies("192.0.2.1"); /* a proxy, but not this peer (127.0.0.1) */
	start_flow("alice", &s);
	for (unsigned i = 0; i < F.cfg.code_attempts; i++) {
		snprintf(xff, sizeof(xff), "X-Forwarded-For: 203.0.113.%u", i);
		assert_int_equal(post_code_as("code=ACDEFGHJ", xff), 400);
	}
	right_code_form(&s, form, sizeof(form));
	assert_int_equal(post_code_as(form, "X-Forwarded-For: 198.51.100.99"), 429);
	assert_int_equal(post_code_as(form, "Forwarded: for=198.51.100.98"), 429);
	trust_proxies(NULL);
	nl_flow_started_clear(&s);
}

/* Chains: the rightmost hop that is not a trusted proxy is the phone; a header that does not
 * parse, or two headers naming different phones (the proxy set one, the client the other), count
 * as the proxy itself - never as a client of the sender's choosing. */
static void test_bridge_forwarding_chains_are_read_from_the_right(void **state)
{
	struct nl_flow_started s;
	char form[64], xff[96];
	static const char *const odd[] = {
	    "X-Forwarded-For: 203.0.113.1, not-an-address",
	    "X-Forwarded-For: 203.0.113.2, unknown",
	    "Forwarded: for=\"203.0.113.3",
	    "Forwarded: for=_hidden",
	    "Forwarded: proto=https",
	    NULL,
	};

	(void)state;
	trust_proxies("127.0.0.1, 10.0.0.0/8");
	start_flow("alice", &s);
	right_code_form(&s, form, sizeof(form));
	/* a trusted hop inside the chain is skipped: each of these is its own phone */
	for (unsigned i = 0; i < F.cfg.code_attempts + 2; i++) {
		snprintf(xff, sizeof(xff), "X-Forwarded-For: 203.0.113.%u, 10.1.1.1", 100 + i);
		assert_int_equal(post_code_as("code=ACDEFGHJ", xff), 400);
	}
	assert_code_taken(post_code_as(form, "X-Forwarded-For: 203.0.113.100, 10.1.1.1"));
	/* two header lines are one list, read from the right across them */
	for (unsigned i = 0; i < F.cfg.code_attempts; i++)
		assert_int_equal(post_code_as("code=ACDEFGHJ", "X-Forwarded-For: 203.0.113.77"), 400);
	{
		const char *h[] = {"X-Forwarded-For: 203.0.113.77", "X-Forwarded-For: 10.2.2.2", NULL};
		assert_int_equal(post_code_with(form, h), 429);
	}
	/* the odd ones all land on the proxy's own count, which they then use up */
	for (unsigned i = 0; i < F.cfg.code_attempts; i++) {
		const char *h[] = {"X-Forwarded-For: 203.0.113.50", "Forwarded: for=203.0.113.51", NULL};
		assert_int_equal(i % 2 == 0 ? post_code_with("code=ACDEFGHJ", h)
		                            : post_code_as("code=ACDEFGHJ", odd[(i / 2) % 5]),
		                 400);
	}
	assert_int_equal(post_code_as(form, "X-Forwarded-For: garbage"), 429);
	assert_int_equal(post_code_with(form, (const char *const[]){"X-Forwarded-For: 203.0.113.60",
	                                                            "Forwarded: for=203.0.113.61", NULL}),
	                 429);
	assert_code_taken(post_code_as(form, "Forwarded: For=203.0.113.62"));
	assert_code_taken(post_code_as(form, "X-Forwarded-For: [2001:db8::5]:443"));
	trust_proxies(NULL);
	nl_flow_started_clear(&s);
}

/* Hostile forwarding headers never crash the bridge: long chains, long hops, many lines, stray
 * quotes and brackets. */
static void test_bridge_hostile_forwarding_headers_are_survived(void **state)
{
	struct nl_flow_started s;
	char form[64], *big = malloc(8192), *hop = malloc(600);
	const char *many[40];

	(void)state;
	assert_non_null(big);
	assert_non_null(hop);
	trust_proxies("127.0.0.1");
	start_flow("alice", &s);
	right_code_form(&s, form, sizeof(form));
	strcpy(big, "X-Forwarded-For: ");
	for (int i = 0; i < 500; i++)
		snprintf(big + strlen(big), 8192 - strlen(big), "10.0.%d.%d,", i / 250, i % 250);
	strcat(big, "198.51.100.200");
	assert_code_taken(post_code_as(form, big));
	memset(hop, 'a', 599);
	hop[599] = '\0';
	snprintf(big, 8192, "Forwarded: for=\"%s\"", hop);
	long st = post_code_as("code=ACDEFGHJ", big);
	assert_true(st == 400 || st == 429);
	for (int i = 0; i < 39; i++)
		many[i] = i % 3 == 0   ? "Forwarded: for=\"[::1"
		          : i % 3 == 1 ? "X-Forwarded-For: ,,,[]:"
		                       : "Forwarded: ;;=,";
	many[39] = NULL;
	st = post_code_with("code=ACDEFGHJ", many);
	assert_true(st == 400 || st == 429);
	/* still serving */
	assert_code_taken(post_code_as(form, "X-Forwarded-For: 198.51.100.201"));
	trust_proxies(NULL);
	free(big);
	free(hop);
	nl_flow_started_clear(&s);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_bridge_form_has_label_viewport_and_no_external_resources),
	    T(test_bridge_wrong_code_not_recognised),
	    T(test_bridge_echoed_code_is_escaped),
	    T(test_bridge_right_code_and_continue_redirects_to_authorize),
	    T(test_bridge_qr_link_shows_the_confirmation_page_not_nhs_login),
	    T(test_bridge_too_many_wrong_codes_shows_limit_page),
	    T(test_bridge_expired_code_says_start_again),
	    T(test_bridge_oversize_body_refused),
	    T(test_bridge_unknown_path_is_404_with_headers),
	    T(test_bridge_full_sign_in_approves_flow),
	    T(test_bridge_replayed_callback_is_400),
	    T(test_bridge_callback_access_denied_denies_flow),
	    T(test_bridge_callback_unknown_state_is_400_without_exchange),
	    T(test_bridge_mismatched_account_denied),
	    T(test_bridge_callback_with_code_twice_is_refused_without_exchange),
	    T(test_bridge_callback_with_error_twice_is_refused),
	    T(test_bridge_callback_with_state_twice_is_400_and_leaves_the_flow),
	    T(test_bridge_callback_with_wrong_iss_is_refused),
	    T(test_bridge_callback_with_iss_plus_a_slash_is_refused),
	    T(test_bridge_callback_with_a_nul_byte_in_iss_is_refused),
	    T(test_bridge_callback_with_the_right_iss_signs_in),
	    T(test_bridge_callback_without_iss_that_discovery_promises_is_refused),
	    T(test_bridge_callback_without_code_ends_the_flow_without_exchange),
	    T(test_bridge_callback_error_with_an_unsafe_word_is_a_denial),
	    T(test_phishing_link_shows_account_computer_access_and_the_victim_can_refuse),
	    T(test_confirm_page_names_the_kind_of_access),
	    T(test_confirm_page_labels_caller_supplied_access),
	    T(test_confirm_page_says_how_long_ago_it_started),
	    T(test_callback_from_another_browser_neither_finishes_nor_ends_the_flow),
	    T(test_callback_from_another_browser_cannot_deny_the_flow),
	    T(test_nhs_login_link_sent_by_an_attacker_does_not_approve),
	    T(test_continue_needs_the_pages_cookie_and_token),
	    T(test_second_browser_cannot_take_over_a_continued_sign_in),
	    T(test_one_browser_keeps_its_cookie_across_pages),
	    T(test_prompt_login_is_sent_unless_switched_off),
	    T(test_bridge_verification_uri_uses_bound_port),
	    T(test_bridge_verification_uri_uses_public_url),
	    T(test_bridge_refuses_plain_http_off_loopback),
	    T(test_bridge_serves_https_with_tls_cert),
	    T(test_signin_unmapped_identity_is_no_mapping),
	    T(test_signin_mapped_identity_approves_and_caches),
	    T(test_signin_with_number_matching_is_never_cached),
	    T(test_signin_outcomes_become_reasons),
	    T(test_signin_identity_of_another_account_is_mismatch),
	    T(test_signin_ok_without_identity_is_unavailable),
	    T(test_bridge_thousand_wrong_codes_through_a_trusted_proxy_do_not_lock_out_a_fresh_phone),
	    T(test_bridge_one_phone_guessing_through_a_trusted_proxy_is_throttled),
	    T(test_bridge_forwarded_for_from_an_untrusted_peer_is_ignored),
	    T(test_bridge_forwarding_chains_are_read_from_the_right),
	    T(test_bridge_hostile_forwarding_headers_are_survived),
	};

	return cmocka_run_group_tests_name("bridge", tests, group_setup, group_teardown);
}
