/* HTTP client: URL policy, redirects refused, size and time bounds, TLS verification, headers and
 * form encoding, all against a real libmicrohttpd server on 127.0.0.1 in this process. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nl_err.h"
#include "nl_http.h"
#include "nl_time.h"
#include "skip.h"
#include "testsrv.h"

#define JSON_BODY "{\"issuer\":\"https://auth.login.nhs.uk\"}"

static struct testsrv *srv;

static int stop_server(void **state)
{
	(void)state;
	testsrv_stop(srv);
	srv = NULL;
	return 0;
}

static void start(const struct testsrv_route *routes, size_t n)
{
	srv = testsrv_start(routes, n, NULL, NULL);
	assert_non_null(srv);
}

/* GET path on the test server; returns the nl_http result. */
static int get(const char *path, const struct nl_http_opts *opts, struct nl_http_resp *resp, char *err,
               size_t errlen)
{
	char *url = testsrv_url(srv, path);
	int r;

	assert_non_null(url);
	r = nl_http_get(url, opts, resp, err, errlen);
	free(url);
	return r;
}

static void test_get_returns_json_body_and_headers(void **state)
{
	const struct testsrv_route routes[] = {{.path = "/jwks",
	                                        .content_type = "application/json",
	                                        .headers = "Cache-Control: max-age=300, public\n",
	                                        .body = JSON_BODY}};
	struct nl_http_resp resp;
	char err[256];
	(void)state;

	start(routes, 1);
	assert_int_equal(get("/jwks", NULL, &resp, err, sizeof(err)), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.body_len, strlen(JSON_BODY));
	assert_string_equal(resp.body, JSON_BODY);
	assert_string_equal(resp.content_type, "application/json");
	assert_string_equal(resp.cache_control, "max-age=300, public");
	nl_http_resp_free(&resp);
	assert_null(resp.body);
}

static void test_get_sends_accept_json(void **state)
{
	const struct testsrv_route routes[] = {{.path = "/x", .body = "{}"}};
	struct nl_http_resp resp;
	char err[256], accept[64];
	(void)state;

	start(routes, 1);
	assert_int_equal(get("/x", NULL, &resp, err, sizeof(err)), 0);
	nl_http_resp_free(&resp);
	assert_true(testsrv_last_header(srv, "Accept", accept, sizeof(accept)));
	assert_string_equal(accept, "application/json");
}

static void test_get_absent_headers_are_null(void **state)
{
	const struct testsrv_route routes[] = {{.path = "/bare", .body = "x"}};
	struct nl_http_resp resp;
	char err[256];
	(void)state;

	start(routes, 1);
	assert_int_equal(get("/bare", NULL, &resp, err, sizeof(err)), 0);
	assert_null(resp.content_type);
	assert_null(resp.cache_control);
	nl_http_resp_free(&resp);
}

static void test_get_404_is_a_status_not_an_error(void **state)
{
	struct nl_http_resp resp;
	char err[256];
	(void)state;

	start(NULL, 0);
	assert_int_equal(get("/missing", NULL, &resp, err, sizeof(err)), 0);
	assert_int_equal(resp.status, 404);
	assert_string_equal(resp.body, "not found");
	nl_http_resp_free(&resp);
}

static void test_post_form_reaches_server_intact(void **state)
{
	const struct testsrv_route routes[] = {{.method = "POST",
	                                        .path = "/token",
	                                        .status = 200,
	                                        .content_type = "application/json",
	                                        .body = "{}"}};
	struct nl_http_resp resp;
	char *form = NULL, *url;
	char err[256], body[512], ctype[128], method[16];
	(void)state;

	start(routes, 1);
	assert_int_equal(nl_form_add(&form, "grant_type", "authorization_code"), 0);
	assert_int_equal(nl_form_add(&form, "code", "a b&c=d/é"), 0);
	assert_int_equal(nl_form_add(&form, "redirect_uri", "https://host/cb?x=1"), 0);
	url = testsrv_url(srv, "/token");
	assert_int_equal(nl_http_post_form(url, form, NULL, &resp, err, sizeof(err)), 0);
	assert_int_equal(resp.status, 200);
	assert_true(testsrv_last_method(srv, method, sizeof(method)));
	assert_string_equal(method, "POST");
	assert_true(testsrv_last_body(srv, body, sizeof(body)));
	assert_string_equal(body, "grant_type=authorization_code&code=a%20b%26c%3Dd%2F%C3%A9"
	                          "&redirect_uri=https%3A%2F%2Fhost%2Fcb%3Fx%3D1");
	assert_true(testsrv_last_header(srv, "Content-Type", ctype, sizeof(ctype)));
	assert_string_equal(ctype, "application/x-www-form-urlencoded");
	nl_http_resp_free(&resp);
	free(url);
	free(form);
}

static void test_bearer_is_sent_as_authorization(void **state)
{
	const struct testsrv_route routes[] = {{.path = "/userinfo", .body = "{}"}};
	struct nl_http_opts opts = {.bearer = "at-123.xyz"};
	struct nl_http_resp resp;
	char err[256], auth[128];
	(void)state;

	start(routes, 1);
	assert_int_equal(get("/userinfo", &opts, &resp, err, sizeof(err)), 0);
	nl_http_resp_free(&resp);
	assert_true(testsrv_last_header(srv, "Authorization", auth, sizeof(auth)));
	assert_string_equal(auth, "Bearer at-123.xyz");
}

static void test_no_authorization_without_bearer(void **state)
{
	const struct testsrv_route routes[] = {{.path = "/x", .body = "{}"}};
	struct nl_http_resp resp;
	char err[256], auth[128];
	(void)state;

	start(routes, 1);
	assert_int_equal(get("/x", NULL, &resp, err, sizeof(err)), 0);
	nl_http_resp_free(&resp);
	assert_false(testsrv_last_header(srv, "Authorization", auth, sizeof(auth)));
}

static void test_bearer_with_newline_is_refused(void **state)
{
	const struct testsrv_route routes[] = {{.path = "/x", .body = "{}"}};
	struct nl_http_opts opts = {.bearer = "abc\r\nX-Injected: 1"};
	struct nl_http_resp resp;
	char err[256];
	(void)state;

	start(routes, 1);
	assert_int_equal(get("/x", &opts, &resp, err, sizeof(err)), NL_ERR_INVALID);
	assert_int_equal(testsrv_hits(srv, "/x"), 0);
	assert_null(strstr(err, "abc"));
}

static void test_redirect_is_refused_and_not_followed(void **state)
{
	const struct testsrv_route routes[] = {
	    {.path = "/start", .status = 302, .headers = "Location: /target\n", .body = "moved"},
	    {.path = "/target", .body = "{}"},
	};
	struct nl_http_resp resp;
	char err[256];
	(void)state;

	start(routes, 2);
	assert_int_equal(get("/start", NULL, &resp, err, sizeof(err)), NL_ERR_HTTP);
	assert_non_null(strstr(err, "redirect refused"));
	assert_null(resp.body);
	assert_int_equal(testsrv_hits(srv, "/start"), 1);
	assert_int_equal(testsrv_hits(srv, "/target"), 0);
}

static char *make_body(size_t n)
{
	char *b = malloc(n + 1);
	assert_non_null(b);
	memset(b, 'a', n);
	b[n] = '\0';
	return b;
}

static void test_body_over_cap_with_content_length_is_too_big(void **state)
{
	char *big = make_body(2000);
	const struct testsrv_route routes[] = {{.path = "/big", .kind = TESTSRV_FIXED, .body = big}};
	struct nl_http_opts opts = {.max_body = 1000};
	struct nl_http_resp resp;
	char err[256];
	(void)state;

	start(routes, 1);
	assert_int_equal(get("/big", &opts, &resp, err, sizeof(err)), NL_ERR_TOO_BIG);
	assert_null(resp.body);
	stop_server(NULL);
	free(big);
}

static void test_body_over_cap_streamed_is_too_big(void **state)
{
	char *big = make_body(200000);
	const struct testsrv_route routes[] = {{.path = "/big", .kind = TESTSRV_CHUNKED, .body = big}};
	struct nl_http_opts opts = {.max_body = 1000};
	struct nl_http_resp resp;
	char err[256];
	(void)state;

	start(routes, 1);
	assert_int_equal(get("/big", &opts, &resp, err, sizeof(err)), NL_ERR_TOO_BIG);
	assert_null(resp.body);
	stop_server(NULL);
	free(big);
}

static void test_body_at_cap_streamed_is_accepted(void **state)
{
	char *body = make_body(10000);
	const struct testsrv_route routes[] = {{.path = "/exact", .kind = TESTSRV_CHUNKED, .body = body}};
	struct nl_http_opts opts = {.max_body = 10000};
	struct nl_http_resp resp;
	char err[256];
	(void)state;

	start(routes, 1);
	assert_int_equal(get("/exact", &opts, &resp, err, sizeof(err)), 0);
	assert_int_equal(resp.body_len, 10000);
	assert_memory_equal(resp.body, body, 10000);
	assert_int_equal(resp.body[10000], '\0');
	nl_http_resp_free(&resp);
	stop_server(NULL);
	free(body);
}

static void test_slow_answer_times_out_within_bound(void **state)
{
	const struct testsrv_route routes[] = {
	    {.path = "/slow", .kind = TESTSRV_DELAY, .delay_ms = 5000, .body = "{}"}};
	struct nl_http_opts opts = {.total_timeout_ms = 300};
	struct nl_http_resp resp;
	char err[256];
	int64_t t0, dt;
	(void)state;

	start(routes, 1);
	t0 = nl_mono_ms();
	assert_int_equal(get("/slow", &opts, &resp, err, sizeof(err)), NL_ERR_TIMEOUT);
	dt = nl_mono_ms() - t0;
	assert_true(dt >= 250);
	assert_true(dt < 900); /* well under the 1 s low-speed backstop: the total timeout fired */
	assert_non_null(strstr(err, "timed out after 300 ms"));
}

static void test_never_ending_answer_times_out_within_bound(void **state)
{
	const struct testsrv_route routes[] = {{.path = "/trickle",
	                                        .kind = TESTSRV_TRICKLE,
	                                        .delay_ms = 50,
	                                        .content_type = "application/json"}};
	struct nl_http_opts opts = {.total_timeout_ms = 500};
	struct nl_http_resp resp;
	char err[256];
	int64_t t0, dt;
	(void)state;

	start(routes, 1);
	t0 = nl_mono_ms();
	assert_int_equal(get("/trickle", &opts, &resp, err, sizeof(err)), NL_ERR_TIMEOUT);
	dt = nl_mono_ms() - t0;
	assert_true(dt >= 450);
	assert_true(dt < 2500);
	assert_null(resp.body);
}

/* A port on 127.0.0.1 that is bound but not listening: connecting to it is refused. */
static int closed_port(int *fd)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(*fd >= 0);
	assert_int_equal(bind(*fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(*fd, (struct sockaddr *)&sa, &len), 0);
	return ntohs(sa.sin_port);
}

static void test_closed_port_is_network_error(void **state)
{
	struct nl_http_resp resp;
	char url[64], err[256];
	int fd;
	(void)state;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", closed_port(&fd));
	assert_int_equal(nl_http_get(url, NULL, &resp, err, sizeof(err)), NL_ERR_NETWORK);
	assert_non_null(strstr(err, "GET http://127.0.0.1:"));
	assert_null(strchr(err, '\n'));
	close(fd);
}

static void test_error_omits_query_and_form(void **state)
{
	struct nl_http_opts opts = {.bearer = "bearer-secret"};
	struct nl_http_resp resp;
	char url[96], err[512];
	int fd;
	(void)state;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/token?code=query-secret", closed_port(&fd));
	assert_int_equal(
	    nl_http_post_form(url, "client_assertion=form-secret", &opts, &resp, err, sizeof(err)),
	    NL_ERR_NETWORK);
	assert_non_null(strstr(err, "POST http://127.0.0.1:"));
	assert_non_null(strstr(err, "/token"));
	assert_null(strstr(err, "query-secret"));
	assert_null(strstr(err, "form-secret"));
	assert_null(strstr(err, "bearer-secret"));
	close(fd);
}

static void test_http_to_remote_host_refused_without_connecting(void **state)
{
	struct nl_http_resp resp;
	char err[256];
	int64_t t0;
	(void)state;

	t0 = nl_mono_ms();
	assert_int_equal(nl_http_get("http://192.0.2.1/", NULL, &resp, err, sizeof(err)), NL_ERR_INVALID);
	assert_true(nl_mono_ms() - t0 < 200);
	assert_int_equal(nl_http_post_form("http://192.0.2.1/token", "a=b", NULL, &resp, err, sizeof(err)),
	                 NL_ERR_INVALID);
	assert_null(resp.body);
}

static void test_refused_url_is_not_echoed(void **state)
{
	struct nl_http_resp resp;
	char err[256];
	(void)state;

	assert_int_equal(nl_http_get("https://user:hunter2@127.0.0.1/", NULL, &resp, err, sizeof(err)),
	                 NL_ERR_INVALID);
	assert_null(strstr(err, "hunter2"));
	assert_non_null(strstr(err, "URL refused"));
}

static void test_url_allowed_table(void **state)
{
	static const struct {
		const char *url;
		bool ok;
	} cases[] = {
	    {"https://auth.login.nhs.uk/.well-known/openid-configuration", true},
	    {"https://auth.login.nhs.uk", true},
	    {"http://127.0.0.1:8080", true},
	    {"http://127.0.0.1:8080/x", true},
	    {"http://127.1.2.3/", true},
	    {"http://[::1]:80/", true},
	    {"http://localhost/", true},
	    {"http://LOCALHOST:9/", true},
	    {"http://example.com/", false},
	    {"http://192.0.2.1/", false},
	    {"http://[::2]/", false},
	    {"http://128.0.0.1/", false},
	    {"http://127.0.0.1.evil.com/", false},
	    {"http://localhost.evil.com/", false},
	    {"ftp://127.0.0.1/", false},
	    {"file:///etc/passwd", false},
	    {"gopher://127.0.0.1/", false},
	    {"https://user:pw@auth.login.nhs.uk/", false},
	    {"https://user@auth.login.nhs.uk/", false},
	    {"http://user:pw@127.0.0.1/", false},
	    {"not a url", false},
	    {"", false},
	    {"https://", false},
	    {"//auth.login.nhs.uk/", false},
	};
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (nl_url_allowed(cases[i].url) != cases[i].ok)
			fail_msg("nl_url_allowed(\"%s\") should be %s", cases[i].url,
			         cases[i].ok ? "true" : "false");
	}
	assert_false(nl_url_allowed(NULL));
}

static void test_url_is_loopback_table(void **state)
{
	(void)state;
	assert_true(nl_url_is_loopback("http://127.0.0.1:1/"));
	assert_true(nl_url_is_loopback("https://[::1]/"));
	assert_true(nl_url_is_loopback("http://localhost:8080/cb"));
	assert_false(nl_url_is_loopback("https://auth.login.nhs.uk/"));
	assert_false(nl_url_is_loopback("http://127.0.0.1.evil.com/"));
	assert_false(nl_url_is_loopback("garbage"));
}

/* TLS: write the server's certificate to a file for ca_file. */
static char *write_temp(const char *content)
{
	const char *dir = getenv("TMPDIR");
	char *path = NULL;
	FILE *f;
	int fd;

	assert_true(asprintf(&path, "%s/test_http_ca.XXXXXX", dir != NULL ? dir : "/tmp") > 0);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_int_equal(fputs(content, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	return path;
}

static void test_https_verifies_peer_against_ca_file(void **state)
{
	char *cert = NULL, *key = NULL, *url, *ca;
	struct nl_http_opts opts = {0};
	const struct testsrv_route routes[] = {
	    {.path = "/tls", .content_type = "application/json", .body = "{}"}};
	struct nl_http_resp resp;
	char err[256];
	(void)state;

	if (!testsrv_tls_supported())
		skip_because("libmicrohttpd was built without TLS: cannot serve https here");
	assert_int_equal(testsrv_selfsigned("127.0.0.1", &cert, &key), 0);
	srv = testsrv_start(routes, 1, cert, key);
	assert_non_null(srv);
	url = testsrv_url(srv, "/tls");
	assert_non_null(strstr(url, "https://"));

	/* Without the CA file the self-signed certificate is not trusted. */
	assert_int_equal(nl_http_get(url, &opts, &resp, err, sizeof(err)), NL_ERR_NETWORK);
	assert_null(resp.body);
	assert_int_equal(testsrv_hits(srv, "/tls"), 0);

	ca = write_temp(cert);
	opts.ca_file = ca;
	assert_int_equal(nl_http_get(url, &opts, &resp, err, sizeof(err)), 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.body, "{}");
	assert_int_equal(testsrv_hits(srv, "/tls"), 1);
	nl_http_resp_free(&resp);

	unlink(ca);
	free(ca);
	free(url);
	free(cert);
	free(key);
}

static void test_missing_ca_file_is_config_error(void **state)
{
	char *cert = NULL, *key = NULL, *url;
	struct nl_http_opts opts = {.ca_file = "/nonexistent/ca.pem"};
	struct nl_http_resp resp;
	char err[256];
	(void)state;

	if (!testsrv_tls_supported())
		skip_because("libmicrohttpd was built without TLS: cannot serve https here");
	assert_int_equal(testsrv_selfsigned("127.0.0.1", &cert, &key), 0);
	srv = testsrv_start(NULL, 0, cert, key);
	assert_non_null(srv);
	url = testsrv_url(srv, "/x");
	assert_int_equal(nl_http_get(url, &opts, &resp, err, sizeof(err)), NL_ERR_CONFIG);
	free(url);
	free(cert);
	free(key);
}

static void assert_encodes(const char *in, const char *out)
{
	char *e = nl_url_encode(in);
	assert_non_null(e);
	assert_string_equal(e, out);
	free(e);
}

static void test_url_encode_vectors(void **state)
{
	(void)state;
	assert_encodes("", "");
	assert_encodes("AZaz09-._~", "AZaz09-._~");
	assert_encodes("a b", "a%20b");
	assert_encodes("a+b", "a%2Bb");
	assert_encodes("&=?/#%:@", "%26%3D%3F%2F%23%25%3A%40");
	assert_encodes("\xc3\xa9\xff\x01", "%C3%A9%FF%01");
	assert_encodes("https://h/cb", "https%3A%2F%2Fh%2Fcb");
}

static void test_form_add_builds_encoded_pairs(void **state)
{
	char *form = NULL;
	(void)state;

	assert_int_equal(nl_form_add(&form, "a", "1"), 0);
	assert_string_equal(form, "a=1");
	assert_int_equal(nl_form_add(&form, "b", "x y&z"), 0);
	assert_string_equal(form, "a=1&b=x%20y%26z");
	assert_int_equal(nl_form_add(&form, "empty", ""), 0);
	assert_string_equal(form, "a=1&b=x%20y%26z&empty=");
	free(form);
}

static void test_form_add_starts_from_empty_string(void **state)
{
	char *form = strdup("");
	(void)state;

	assert_non_null(form);
	assert_int_equal(nl_form_add(&form, "k", "v"), 0);
	assert_string_equal(form, "k=v");
	free(form);
}

static int group_setup(void **state)
{
	(void)state;
	return nl_http_global_init();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_get_returns_json_body_and_headers, stop_server),
	    cmocka_unit_test_teardown(test_get_sends_accept_json, stop_server),
	    cmocka_unit_test_teardown(test_get_absent_headers_are_null, stop_server),
	    cmocka_unit_test_teardown(test_get_404_is_a_status_not_an_error, stop_server),
	    cmocka_unit_test_teardown(test_post_form_reaches_server_intact, stop_server),
	    cmocka_unit_test_teardown(test_bearer_is_sent_as_authorization, stop_server),
	    cmocka_unit_test_teardown(test_no_authorization_without_bearer, stop_server),
	    cmocka_unit_test_teardown(test_bearer_with_newline_is_refused, stop_server),
	    cmocka_unit_test_teardown(test_redirect_is_refused_and_not_followed, stop_server),
	    cmocka_unit_test_teardown(test_body_over_cap_with_content_length_is_too_big, stop_server),
	    cmocka_unit_test_teardown(test_body_over_cap_streamed_is_too_big, stop_server),
	    cmocka_unit_test_teardown(test_body_at_cap_streamed_is_accepted, stop_server),
	    cmocka_unit_test_teardown(test_slow_answer_times_out_within_bound, stop_server),
	    cmocka_unit_test_teardown(test_never_ending_answer_times_out_within_bound, stop_server),
	    cmocka_unit_test(test_closed_port_is_network_error),
	    cmocka_unit_test(test_error_omits_query_and_form),
	    cmocka_unit_test(test_http_to_remote_host_refused_without_connecting),
	    cmocka_unit_test(test_refused_url_is_not_echoed),
	    cmocka_unit_test(test_url_allowed_table),
	    cmocka_unit_test(test_url_is_loopback_table),
	    cmocka_unit_test_teardown(test_https_verifies_peer_against_ca_file, stop_server),
	    cmocka_unit_test_teardown(test_missing_ca_file_is_config_error, stop_server),
	    cmocka_unit_test(test_url_encode_vectors),
	    cmocka_unit_test(test_form_add_builds_encoded_pairs),
	    cmocka_unit_test(test_form_add_starts_from_empty_string),
	};
	return cmocka_run_group_tests_name("http", tests, group_setup, NULL);
}
