/* base64url: RFC 4648 test vectors, and every way a non-canonical input is refused. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "nl_b64.h"
#include "nl_err.h"

static void assert_round_trip(const char *plain, const char *encoded)
{
	char *enc = NULL;
	uint8_t *dec = NULL;
	size_t declen = 0;

	assert_int_equal(nl_b64url_encode((const uint8_t *)plain, strlen(plain), &enc), 0);
	assert_string_equal(enc, encoded);
	assert_int_equal(nl_b64url_decode(encoded, strlen(encoded), &dec, &declen), 0);
	assert_int_equal(declen, strlen(plain));
	assert_memory_equal(dec, plain, declen);
	free(enc);
	free(dec);
}

static void test_b64url_rfc4648_vectors(void **state)
{
	(void)state;
	assert_round_trip("", "");
	assert_round_trip("f", "Zg");
	assert_round_trip("fo", "Zm8");
	assert_round_trip("foo", "Zm9v");
	assert_round_trip("foob", "Zm9vYg");
	assert_round_trip("fooba", "Zm9vYmE");
	assert_round_trip("foobar", "Zm9vYmFy");
}

static void test_b64url_uses_url_alphabet(void **state)
{
	const uint8_t raw[] = {0xfb, 0xff, 0xbf};
	char *enc = NULL;
	(void)state;
	assert_int_equal(nl_b64url_encode(raw, sizeof(raw), &enc), 0);
	assert_string_equal(enc, "-_-_");
	free(enc);
}

static void assert_rejected(const char *s)
{
	uint8_t *dec = NULL;
	size_t declen = 0;
	assert_int_equal(nl_b64url_decode(s, strlen(s), &dec, &declen), NL_ERR_INVALID);
	assert_null(dec);
}

static void test_b64url_rejects_padding(void **state)
{
	(void)state;
	assert_rejected("Zg==");
	assert_rejected("Zm8=");
}

static void test_b64url_rejects_standard_alphabet_and_whitespace(void **state)
{
	(void)state;
	assert_rejected("+/+/");
	assert_rejected("Zm9v Yg");
	assert_rejected("Zm9v\nYmFy");
}

static void test_b64url_rejects_impossible_length(void **state)
{
	(void)state;
	assert_rejected("Z");
	assert_rejected("Zm9vY");
}

static void test_b64url_rejects_nonzero_trailing_bits(void **state)
{
	(void)state;
	assert_rejected("Zh");  /* "Zg" with a stray low bit */
	assert_rejected("Zm9"); /* "Zm8" with a stray low bit */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_b64url_rfc4648_vectors),
	    cmocka_unit_test(test_b64url_uses_url_alphabet),
	    cmocka_unit_test(test_b64url_rejects_padding),
	    cmocka_unit_test(test_b64url_rejects_standard_alphabet_and_whitespace),
	    cmocka_unit_test(test_b64url_rejects_impossible_length),
	    cmocka_unit_test(test_b64url_rejects_nonzero_trailing_bits),
	};
	return cmocka_run_group_tests_name("b64", tests, NULL, NULL);
}
