/* The README's reverse proxy, as written: its nginx server block is taken from README.md
 * ("A central bridge behind TLS"), given test ports and a certificate, and run by a real nginx in
 * front of a real nhslogind, with the bridge settings the README gives (public_url,
 * trusted_proxies, a redirect_uri under /nhslogin/). A phone (libcurl, from 127.0.0.2, not the
 * proxy's address) signs in through it over TLS while the real module waits under pam_wrapper.
 * Checked: the sign-in completes; the phone's address is what the proxy saw, not what the phone
 * claims in its own X-Forwarded-For; the wrong-code limit counts each phone by that address (one
 * phone's guessing does not lock out another); nothing but /d and the callback is reachable; the
 * access log stays empty (the callback's query holds a one-time code). */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "lbproc.h"
#include "mockproc.h"
#include "ports.h"
#include "skip.h"
#include "testsrv.h"

#define TEST_TIMEOUT_S 240
#define CODE_ATTEMPTS  4

static struct {
	bool ready;
	char why[200]; /* the reason to skip, when not ready */
	struct world *w;
	struct lbproc lb;
	char dir[64], ca[128];
	unsigned short port;
} fx;

static int write_pem(const char *path, const char *pem)
{
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fputs(pem, f);
	return fclose(f);
}

static int group_setup(void **state)
{
	char *cert = NULL, *key = NULL, *site = NULL, redirect[128], bridge_extra[256], public_url[64];
	char listen[64], proxy_pass[64], path[160];
	struct world_opts o = {0};
	(void)state;

	alarm(TEST_TIMEOUT_S);
	if (lbproc_nginx() == NULL) {
		snprintf(fx.why, sizeof(fx.why), "nginx is not installed (Debian package nginx)");
		return 0;
	}
	if (!testsrv_tls_supported() && access("/usr/bin/openssl", X_OK) != 0) {
		snprintf(fx.why, sizeof(fx.why), "no way to make a certificate");
		return 0;
	}
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/nl-proxytest.XXXXXX");
	if (mkdtemp(fx.dir) == NULL)
		return -1;
	/* the certificate nginx serves, which the phone trusts */
	if (testsrv_selfsigned("127.0.0.1", &cert, &key) != 0)
		return -1;
	snprintf(fx.ca, sizeof(fx.ca), "%s/cert.pem", fx.dir);
	snprintf(path, sizeof(path), "%s/key.pem", fx.dir);
	if (write_pem(fx.ca, cert) != 0 || write_pem(path, key) != 0)
		return -1;
	fx.port = (unsigned short)test_free_port();
	/* the README's settings for the bridge, with this proxy's address */
	snprintf(public_url, sizeof(public_url), "https://127.0.0.1:%u", fx.port);
	snprintf(redirect, sizeof(redirect), "%s/nhslogin/callback", public_url);
	snprintf(bridge_extra, sizeof(bridge_extra),
	         "public_url = %s\ntrusted_proxies = 127.0.0.1\ncode_attempts = %d", public_url,
	         CODE_ATTEMPTS);
	o.redirect_uri = redirect;
	o.daemon_extra = "flow_ttl = 60"; /* a phone that cannot get through fails the test in a minute */
	o.bridge_extra = bridge_extra;
	if (world_start(&o, &fx.w) != 0 || world_activate(fx.w) != 0)
		return -1;
	/* the README's nginx block, as written, with this test's ports and files */
	site = lbproc_readme_block("    # nginx\n", "\n");
	if (site == NULL) {
		fprintf(stderr, "# README.md has no nginx block after \"    # nginx\"\n");
		return -1;
	}
	snprintf(listen, sizeof(listen), "listen 127.0.0.1:%u ssl http2;", fx.port);
	snprintf(proxy_pass, sizeof(proxy_pass), "proxy_pass http%s;", strchr(fx.w->bridge, ':'));
	if (!lbproc_replace(&site, "listen 443 ssl http2;", listen) ||
	    !lbproc_replace(&site, "/etc/ssl/signin.example.trust.nhs.uk.pem", fx.ca) ||
	    !lbproc_replace(&site, "/etc/ssl/private/signin.example.trust.nhs.uk.key", path) ||
	    !lbproc_replace(&site, "proxy_pass http://127.0.0.1:8765;", proxy_pass)) {
		fprintf(stderr, "# the README's nginx block has changed shape: update this test\n%s", site);
		free(site);
		return -1;
	}
	if (lbproc_start(site, fx.port, &fx.lb) != 0) {
		free(site);
		return -1;
	}
	free(site);
	free(cert);
	free(key);
	/* from here the phone reaches the bridge only through the proxy, from its own address */
	snprintf(fx.w->bridge, sizeof(fx.w->bridge), "%s", public_url);
	mockproc_phone_configure(fx.ca, "127.0.0.2", NULL);
	fx.ready = true;
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[128];
	(void)state;

	mockproc_phone_configure(NULL, NULL, NULL);
	lbproc_stop(&fx.lb);
	world_stop(fx.w);
	if (strncmp(fx.dir, "/tmp/nl-proxytest.", 18) == 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.dir);
		if (system(cmd) != 0)
			fprintf(stderr, "# could not remove %s\n", fx.dir);
	}
	return 0;
}

static int need_proxy(void **state)
{
	(void)state;
	mockproc_phone_configure(fx.ca, "127.0.0.2", NULL);
	return 0;
}

#define NEED_PROXY()                                                                                         \
	do {                                                                                                 \
		if (!fx.ready)                                                                               \
			skip_because("%s", fx.why);                                                          \
	} while (0)

static bool daemon_log_has(const char *needle)
{
	char path[PATH_MAX], *buf = NULL;
	size_t len = 0;
	FILE *f;
	bool found;

	snprintf(path, sizeof(path), "%s/daemon.log", fx.w->dir);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	buf = calloc(1, 4 * 1024 * 1024 + 1);
	if (buf != NULL)
		len = fread(buf, 1, 4 * 1024 * 1024, f);
	fclose(f);
	found = buf != NULL && len > 0 && strstr(buf, needle) != NULL;
	free(buf);
	return found;
}

static long fetch_status(const char *method, const char *path, const char *body)
{
	struct mockproc_resp r = {0};
	char url[200];
	long status;

	snprintf(url, sizeof(url), "%s%s", fx.w->bridge, path);
	if (mockproc_fetch(method, url, body != NULL ? "application/x-www-form-urlencoded" : NULL, body, NULL,
	                   &r) != 0)
		return -1;
	status = r.status;
	mockproc_resp_free(&r);
	return status;
}

/* ---- the cases ---- */

/* A whole sign-in through the proxy; the phone says it is 203.0.113.7, the proxy says 127.0.0.2. */
static void test_signin_through_the_readme_proxy(void **state)
{
	struct pam_run run = {.service = "nl-login", .user = "clinician", .as_user = "p9"};
	(void)state;
	NEED_PROXY();
	mockproc_phone_configure(fx.ca, "127.0.0.2", "X-Forwarded-For: 203.0.113.7");
	assert_int_equal(pam_run_auth(fx.w, &run), PAM_SUCCESS);
	assert_int_equal(run.phone_rc, 0);
	/* the code shown points at the proxy */
	assert_true(pam_run_saw_info(&run, fx.w->bridge));
	assert_true(daemon_log_has("code accepted from 127.0.0.2"));
	assert_false(daemon_log_has("203.0.113.7"));
}

/* A guessing phone reaches the limit by its own address; another phone, same proxy, still signs in. */
static void test_wrong_code_limit_counts_each_phone_behind_the_proxy(void **state)
{
	struct pam_run run = {.service = "nl-login", .user = "clinician", .as_user = "p9"};
	(void)state;
	NEED_PROXY();
	mockproc_phone_configure(fx.ca, "127.0.0.3", NULL);
	for (int i = 0; i < CODE_ATTEMPTS; i++)
		assert_int_equal(fetch_status("POST", "/d", "code=CDEFGHJK"), 400);
	assert_int_equal(fetch_status("POST", "/d", "code=CDEFGHJK"), 429);
	/* the phone at 127.0.0.2 was not one of them */
	mockproc_phone_configure(fx.ca, "127.0.0.2", NULL);
	assert_int_equal(pam_run_auth(fx.w, &run), PAM_SUCCESS);
	assert_int_equal(run.phone_rc, 0);
}

/* Only the two paths the phone needs pass; the access log stays empty. */
static void test_proxy_passes_only_the_phone_pages_and_keeps_no_access_log(void **state)
{
	(void)state;
	NEED_PROXY();
	assert_int_equal(fetch_status("GET", "/d", NULL), 200);
	assert_int_equal(fetch_status("GET", "/", NULL), 404);
	assert_int_equal(fetch_status("GET", "/callback", NULL), 404);
	assert_int_equal(fetch_status("GET", "/d/../status", NULL), 404);
	/* the callback passes (and, with no state, is refused by the bridge itself) */
	assert_int_equal(fetch_status("GET", "/nhslogin/callback", NULL), 400);
	assert_true(lbproc_log_size(&fx.lb, "access.log") <= 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_signin_through_the_readme_proxy, need_proxy),
	    cmocka_unit_test_setup(test_wrong_code_limit_counts_each_phone_behind_the_proxy, need_proxy),
	    cmocka_unit_test_setup(test_proxy_passes_only_the_phone_pages_and_keeps_no_access_log,
	                           need_proxy),
	};
	harness_under_pam_wrapper();
	return cmocka_run_group_tests_name("proxy", tests, group_setup, group_teardown);
}
