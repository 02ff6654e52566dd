/* Wiping, constant-time comparison and random tokens. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "nl_err.h"
#include "nl_wipe.h"

static void test_wipe_zeroes_buffer(void **state)
{
	char buf[16];
	static const char zero[16];
	(void)state;
	memset(buf, 'x', sizeof(buf));
	nl_wipe(buf, sizeof(buf));
	assert_memory_equal(buf, zero, sizeof(buf));
	nl_wipe(NULL, 10); /* must not crash */
}

static void test_ct_streq(void **state)
{
	(void)state;
	assert_true(nl_ct_streq("abc", "abc"));
	assert_false(nl_ct_streq("abc", "abd"));
	assert_false(nl_ct_streq("abc", "abcd"));
	assert_false(nl_ct_streq("abcd", "abc"));
	assert_false(nl_ct_streq(NULL, "abc"));
	assert_false(nl_ct_streq(NULL, NULL));
	assert_true(nl_ct_streq("", ""));
}

static void test_random_token_is_long_and_distinct(void **state)
{
	char *a = NULL, *b = NULL;
	(void)state;
	assert_int_equal(nl_random_token(16, &a), 0);
	assert_int_equal(nl_random_token(16, &b), 0);
	assert_int_equal(strlen(a), 22); /* 128 bits in base64url */
	assert_string_not_equal(a, b);
	assert_int_equal(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 22);
	nl_free_secret(a);
	nl_free_secret(b);
	assert_int_equal(nl_random_token(8, &a), NL_ERR_INTERNAL);
}

static void test_strerror_covers_codes(void **state)
{
	(void)state;
	for (int r = 0; r >= NL_ERR_CLOSED; r--)
		assert_string_not_equal(nl_strerror(r), "unknown error");
	assert_string_equal(nl_strerror(-999), "unknown error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wipe_zeroes_buffer),
	    cmocka_unit_test(test_ct_streq),
	    cmocka_unit_test(test_random_token_is_long_and_distinct),
	    cmocka_unit_test(test_strerror_covers_codes),
	};
	return cmocka_run_group_tests_name("wipe", tests, NULL, NULL);
}
