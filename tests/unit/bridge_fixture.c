/* The bridge tests' fixture, shared by the tests/unit/test_bridge_*.c programs: a real nhslogin-mock
 * started once a program, a bridge, flows table and token cache made anew for each test, and the
 * "browsers" (libcurl cookie jars) that fetch its pages without following redirects. */
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
#include "bridge_fixture.h"

struct bridge_fixture F;

/* ---- HTTP without following redirects ---- */

size_t on_body(char *p, size_t size, size_t n, void *ud)
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
void fetch_in(CURLSH *jar, const char *url, const char *post_body, const char *cainfo, struct resp *r)
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

/* The phone's browser. */
void fetch(const char *url, const char *post_body, struct resp *r)
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

void resp_free(struct resp *r)
{
	free(r->body);
	r->body = NULL;
}

/* The value of header name (case-insensitive) in a new string, or NULL. */
char *header(const struct resp *r, const char *name)
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

void assert_security_headers(const struct resp *r)
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

char *bridge_url(const char *path)
{
	char *u = NULL;

	assert_int_not_equal(asprintf(&u, "http://127.0.0.1:%u%s", (unsigned)F.port, path), -1);
	return u;
}

void get_path(const char *path, struct resp *r)
{
	char *u = bridge_url(path);
	fetch(u, NULL, r);
	free(u);
}

/* ---- fixtures ---- */

void set_str(char **field, const char *value)
{
	free(*field);
	*field = value != NULL ? strdup(value) : NULL;
}

void write_text(const char *path, const char *text, mode_t mode)
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

int group_setup(void **state)
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

int group_teardown(void **state)
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

int setup(void **state)
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

int teardown(void **state)
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

void start_flow(const char *user, struct nl_flow_started *s)
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
void lower_no_dash(const char *code, char *out, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; code[i] != '\0' && o + 1 < len; i++)
		if (code[i] != '-')
			out[o++] = (char)(code[i] >= 'A' && code[i] <= 'Z' ? code[i] - 'A' + 'a' : code[i]);
	out[o] = '\0';
}

/* value="..." of the hidden input name in html (new string), or NULL. */
char *hidden(const char *html, const char *name)
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
void confirm_page_in(CURLSH *jar, const struct nl_flow_started *s, struct resp *r)
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
void answer_in(CURLSH *jar, const char *html, const char *answer, struct resp *r)
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
char *enter_code_in(CURLSH *jar, const struct nl_flow_started *s)
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
char *enter_code(const struct nl_flow_started *s)
{
	return enter_code_in(F.phone, s);
}

/* Follow /authorize at the auto-approving mock; the Location back to the callback (new string). */
char *authorize_at_mock(const char *authorize)
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

void assert_flow(const struct nl_flow_started *s, enum nl_flow_state st, enum nl_reason reason)
{
	struct nl_flow_status fs;

	assert_int_equal(nl_flows_status(F.fl, s->device_code, &fs), 0);
	assert_int_equal(fs.state, st);
	assert_int_equal(fs.reason, reason);
}
