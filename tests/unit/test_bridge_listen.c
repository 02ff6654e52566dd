/* How the bridge is reached: the verification URI, plain HTTP and TLS, and the phone's address
 * behind a reverse proxy (issue 11, finding 6). */
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

static void fetch_ca(const char *url, const char *post_body, const char *cainfo, struct resp *r)
{
	fetch_in(F.phone, url, post_body, cainfo, r);
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
	    T(test_bridge_verification_uri_uses_bound_port),
	    T(test_bridge_verification_uri_uses_public_url),
	    T(test_bridge_refuses_plain_http_off_loopback),
	    T(test_bridge_serves_https_with_tls_cert),
	    T(test_bridge_thousand_wrong_codes_through_a_trusted_proxy_do_not_lock_out_a_fresh_phone),
	    T(test_bridge_one_phone_guessing_through_a_trusted_proxy_is_throttled),
	    T(test_bridge_forwarded_for_from_an_untrusted_peer_is_ignored),
	    T(test_bridge_forwarding_chains_are_read_from_the_right),
	    T(test_bridge_hostile_forwarding_headers_are_survived),
	};

	return cmocka_run_group_tests_name("bridge_listen", tests, group_setup, group_teardown);
}
