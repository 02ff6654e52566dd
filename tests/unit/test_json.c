/* Bounded JSON parsing: what is accepted, and each bound that refuses. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "nl_err.h"
#include "nl_json.h"

static int parse(const char *s, size_t max_size, size_t depth, bool obj, json_t **out)
{
	char err[128];
	return nl_json_parse(s, strlen(s), max_size, depth, obj, out, err, sizeof(err));
}

static void test_json_parses_object(void **state)
{
	json_t *v = NULL;
	long long n = 0;
	(void)state;
	assert_int_equal(parse("{\"a\":\"x\",\"n\":42}", 1024, 4, true, &v), 0);
	assert_string_equal(nl_json_str(v, "a"), "x");
	assert_null(nl_json_str(v, "n"));
	assert_int_equal(nl_json_int(v, "n", &n), 0);
	assert_int_equal(n, 42);
	assert_int_equal(nl_json_int(v, "a", &n), NL_ERR_INVALID);
	assert_int_equal(nl_json_int(v, "zz", &n), NL_ERR_NOT_FOUND);
	json_decref(v);
}

static void test_json_rejects_duplicate_keys(void **state)
{
	json_t *v = NULL;
	(void)state;
	assert_int_equal(parse("{\"sub\":\"a\",\"sub\":\"b\"}", 1024, 4, true, &v), NL_ERR_INVALID);
	assert_null(v);
}

static void test_json_rejects_trailing_garbage(void **state)
{
	json_t *v = NULL;
	(void)state;
	assert_int_equal(parse("{\"a\":1} x", 1024, 4, true, &v), NL_ERR_INVALID);
	assert_int_equal(parse("{\"a\":1}{}", 1024, 4, true, &v), NL_ERR_INVALID);
}

static void test_json_rejects_nul_bytes(void **state)
{
	json_t *v = NULL;
	char err[64];
	const char raw[] = "{\"a\":\"x\0y\"}";
	(void)state;
	assert_int_equal(nl_json_parse(raw, sizeof(raw) - 1, 1024, 4, true, &v, err, sizeof(err)),
	                 NL_ERR_INVALID);
	assert_int_equal(parse("{\"a\":\"x\\u0000y\"}", 1024, 4, true, &v), NL_ERR_INVALID);
}

static void test_json_rejects_oversized(void **state)
{
	json_t *v = NULL;
	(void)state;
	assert_int_equal(parse("{\"a\":\"0123456789\"}", 10, 4, true, &v), NL_ERR_TOO_BIG);
}

static void test_json_depth_limit(void **state)
{
	json_t *v = NULL;
	(void)state;
	assert_int_equal(parse("{\"a\":{\"b\":[1]}}", 1024, 3, true, &v), 0);
	json_decref(v);
	v = NULL;
	assert_int_equal(parse("{\"a\":{\"b\":[[1]]}}", 1024, 3, true, &v), NL_ERR_TOO_BIG);
	assert_null(v);
}

static void test_json_deep_nesting_refused_quickly(void **state)
{
	enum { N = 1500 };
	char *s = malloc(2 * N + 1);
	json_t *v = NULL;
	(void)state;
	memset(s, '[', N);
	memset(s + N, ']', N);
	s[2 * N] = '\0';
	assert_int_not_equal(parse(s, 1 << 20, NL_JSON_MAX_DEPTH, false, &v), 0);
	assert_null(v);
	free(s);
}

static void test_json_require_object(void **state)
{
	json_t *v = NULL;
	(void)state;
	assert_int_equal(parse("[1,2]", 1024, 4, true, &v), NL_ERR_INVALID);
	assert_int_equal(parse("[1,2]", 1024, 4, false, &v), 0);
	json_decref(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_json_parses_object),
	    cmocka_unit_test(test_json_rejects_duplicate_keys),
	    cmocka_unit_test(test_json_rejects_trailing_garbage),
	    cmocka_unit_test(test_json_rejects_nul_bytes),
	    cmocka_unit_test(test_json_rejects_oversized),
	    cmocka_unit_test(test_json_depth_limit),
	    cmocka_unit_test(test_json_deep_nesting_refused_quickly),
	    cmocka_unit_test(test_json_require_object),
	};
	return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
