/* The OpenID client against a real nhslogin-mock child: the discovery and JWKS caches, in memory
 * and on disk, across clients and threads. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nl_b64.h"
#include "nl_config.h"
#include "nl_err.h"
#include "nl_http.h"
#include "nl_json.h"
#include "nl_log.h"
#include "nl_time.h"
#include "nl_wipe.h"
#include "mockproc.h"
#include "oidc.h"
#include "oidc_fixture.h"

/* ---- discovery and JWKS caches ---- */

static void test_ready_fetches_discovery_and_jwks_once(void **state)
{
	struct nl_config cfg;
	struct nl_oidc_stats st;
	long d0 = mock_stat("discovery"), j0 = mock_stat("jwks");
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	ready(o);
	assert_int_equal(mock_stat("discovery") - d0, 1);
	assert_int_equal(mock_stat("jwks") - j0, 1);
	nl_oidc_get_stats(o, &st);
	assert_int_equal(st.discovery_fetches, 1);
	assert_int_equal(st.jwks_fetches, 1);
	assert_true(st.discovery_fetched_at > 0);
	assert_true(st.jwks_fetched_at > 0);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_ready_again_makes_no_request(void **state)
{
	struct nl_config cfg;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	ready(o);
	long d0 = mock_stat("discovery"), j0 = mock_stat("jwks");
	ready(o);
	ready(o);
	assert_int_equal(mock_stat("discovery"), d0);
	assert_int_equal(mock_stat("jwks"), j0);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_ready_reads_disk_cache_in_a_new_client(void **state)
{
	struct nl_config cfg;
	struct nl_oidc_stats st;
	struct stat sb;
	char path[512];
	(void)state;

	make_cfg(&cfg, "shared-disk");
	struct nl_oidc *o = new_oidc(&cfg);
	ready(o);
	nl_oidc_free(o);
	snprintf(path, sizeof(path), "%s/discovery.json", cfg.cache_dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/jwks.json", cfg.cache_dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);

	long d0 = mock_stat("discovery"), j0 = mock_stat("jwks");
	o = new_oidc(&cfg);
	ready(o);
	assert_int_equal(mock_stat("discovery"), d0);
	assert_int_equal(mock_stat("jwks"), j0);
	nl_oidc_get_stats(o, &st);
	assert_int_equal(st.discovery_fetches, 0);
	assert_int_equal(st.jwks_fetches, 0);
	assert_true(nl_oidc_pkce_s256(o));
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void overwrite(const char *dir, const char *name, const char *text)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void test_ready_ignores_damaged_cache_file(void **state)
{
	struct nl_config cfg;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	ready(o);
	nl_oidc_free(o);
	overwrite(cfg.cache_dir, "discovery.json", "{\"fetched_at\": 1, \"body\": tru");
	overwrite(cfg.cache_dir, "jwks.json", "{\"fetched_at\":1,\"max_age\":3600,\"issuer\":\"x\"}");

	long d0 = mock_stat("discovery"), j0 = mock_stat("jwks");
	o = new_oidc(&cfg);
	ready(o);
	assert_int_equal(mock_stat("discovery") - d0, 1);
	assert_int_equal(mock_stat("jwks") - j0, 1);
	nl_oidc_free(o);

	/* ... and the refetch repaired the cache. */
	d0 = mock_stat("discovery");
	o = new_oidc(&cfg);
	ready(o);
	assert_int_equal(mock_stat("discovery"), d0);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_ready_ignores_cache_of_another_issuer(void **state)
{
	struct nl_config cfg;
	char text[256];
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	ready(o);
	nl_oidc_free(o);
	snprintf(text, sizeof(text),
	         "{\"fetched_at\":%lld,\"max_age\":3600,\"issuer\":\"https://evil.example\",\"body\":\"{}\"}",
	         (long long)time(NULL));
	overwrite(cfg.cache_dir, "discovery.json", text);

	long d0 = mock_stat("discovery");
	o = new_oidc(&cfg);
	ready(o);
	assert_int_equal(mock_stat("discovery") - d0, 1);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_ready_ignores_stale_cache(void **state)
{
	struct nl_config cfg;
	char text[256];
	(void)state;

	make_cfg(&cfg, NULL);
	snprintf(text, sizeof(text),
	         "{\"fetched_at\":%lld,\"max_age\":300,\"issuer\":\"%s\",\"body\":\"{}\"}",
	         (long long)time(NULL) - 301, fx.issuer);
	overwrite(cfg.cache_dir, "discovery.json", text);
	long d0 = mock_stat("discovery");
	struct nl_oidc *o = new_oidc(&cfg);
	ready(o);
	assert_int_equal(mock_stat("discovery") - d0, 1);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_ready_refuses_discovery_of_another_issuer(void **state)
{
	struct nl_config cfg;
	char issuer[300], err[256] = "";
	(void)state;

	/* Same server, but not the same issuer string: discovery's issuer must equal it exactly. */
	make_cfg(&cfg, NULL);
	snprintf(issuer, sizeof(issuer), "%s/", fx.issuer);
	set(&cfg, "env", "issuer", issuer);
	struct nl_oidc *o = new_oidc(&cfg);
	assert_int_not_equal(nl_oidc_ready(o, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "issuer"));
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_ready_reports_unreachable_provider(void **state)
{
	struct nl_config cfg;
	struct nl_oidc_stats st;
	char err[256] = "";
	(void)state;

	make_cfg(&cfg, NULL);
	set(&cfg, "env", "issuer", "http://127.0.0.1:9");
	struct nl_oidc *o = new_oidc(&cfg);
	assert_int_equal(nl_oidc_ready(o, err, sizeof(err)), NL_ERR_UNAVAILABLE);
	assert_non_null(strstr(err, "discovery"));
	nl_oidc_get_stats(o, &st);
	assert_string_equal(st.last_error, err);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_flush_drops_memory_and_disk_caches(void **state)
{
	struct nl_config cfg;
	struct stat sb;
	char path[512];
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	ready(o);
	nl_oidc_flush(o);
	snprintf(path, sizeof(path), "%s/discovery.json", cfg.cache_dir);
	assert_int_not_equal(stat(path, &sb), 0);
	snprintf(path, sizeof(path), "%s/jwks.json", cfg.cache_dir);
	assert_int_not_equal(stat(path, &sb), 0);
	long d0 = mock_stat("discovery"), j0 = mock_stat("jwks");
	ready(o);
	assert_int_equal(mock_stat("discovery") - d0, 1);
	assert_int_equal(mock_stat("jwks") - j0, 1);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

static void test_new_refuses_readable_client_key(void **state)
{
	struct nl_config cfg;
	struct nl_oidc *o = NULL;
	char err[256] = "";
	(void)state;

	make_cfg(&cfg, NULL);
	assert_int_equal(chmod(fx.key_path, 0644), 0);
	int r = nl_oidc_new(&cfg, &o, err, sizeof(err));
	assert_int_equal(chmod(fx.key_path, 0600), 0);
	assert_int_not_equal(r, 0);
	assert_null(o);
	assert_non_null(strstr(err, "client key"));
	nl_config_free(&cfg);
}

struct race {
	struct nl_oidc *o;
	bool flusher;
	int failures;
};

/* No cmocka asserts in threads: count failures and let the test check them. */
static void *race_thread(void *arg)
{
	struct race *rc = arg;
	struct nl_oidc_stats st;
	char err[256], *url;

	for (int i = 0; i < 25; i++) {
		if (rc->flusher) {
			if (i % 5 == 0)
				nl_oidc_flush(rc->o);
			continue;
		}
		if (nl_oidc_ready(rc->o, err, sizeof(err)) != 0)
			rc->failures++;
		if (nl_oidc_authorize_url(rc->o, "s", "n", NULL, &url) == 0)
			free(url);
		else
			rc->failures++;
		(void)nl_oidc_pkce_s256(rc->o);
		nl_oidc_get_stats(rc->o, &st);
	}
	return NULL;
}

static void test_ready_from_many_threads_is_safe(void **state)
{
	struct nl_config cfg;
	struct race rc[5];
	pthread_t th[5];
	int failures = 0;
	(void)state;

	make_cfg(&cfg, NULL);
	struct nl_oidc *o = new_oidc(&cfg);
	/* A cold start from four threads at once: every call must succeed. */
	for (int i = 0; i < 4; i++) {
		rc[i] = (struct race){.o = o};
		assert_int_equal(pthread_create(&th[i], NULL, race_thread, &rc[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		failures += rc[i].failures;
	}
	assert_int_equal(failures, 0);
	/* Now with a thread flushing: no crash, and the client works afterwards. */
	for (int i = 0; i < 5; i++) {
		rc[i] = (struct race){.o = o, .flusher = i == 4};
		assert_int_equal(pthread_create(&th[i], NULL, race_thread, &rc[i]), 0);
	}
	for (int i = 0; i < 5; i++)
		pthread_join(th[i], NULL);
	ready(o);
	nl_oidc_free(o);
	nl_config_free(&cfg);
}

#define T(f) cmocka_unit_test_setup_teardown(f, clear_faults, clear_faults)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_ready_fetches_discovery_and_jwks_once),     T(test_ready_again_makes_no_request),
	    T(test_ready_reads_disk_cache_in_a_new_client),    T(test_ready_ignores_damaged_cache_file),
	    T(test_ready_ignores_cache_of_another_issuer),     T(test_ready_ignores_stale_cache),
	    T(test_ready_refuses_discovery_of_another_issuer), T(test_ready_reports_unreachable_provider),
	    T(test_flush_drops_memory_and_disk_caches),        T(test_ready_from_many_threads_is_safe),
	    T(test_new_refuses_readable_client_key),
	};
	return cmocka_run_group_tests_name("oidc_discovery", tests, group_setup, group_teardown);
}
