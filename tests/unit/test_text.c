/* Unit tests for nl_text: the one definition of a control character and its helpers. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "nl_text.h"

static void test_controls_are_c0_and_del(void **state)
{
	(void)state;
	for (int c = 0; c < 256; c++)
		assert_int_equal(nl_text_is_control((unsigned char)c), c < 0x20 || c == 0x7f);
}

static void test_mask_controls_in_place(void **state)
{
	char s[] = "a\tb\x1b[31mc\x7f\xc3\xa9";

	(void)state;
	nl_text_mask_controls(s);
	assert_string_equal(s, "a?b?[31mc?\xc3\xa9"); /* UTF-8 kept */
}

static void test_printable(void **state)
{
	(void)state;
	assert_true(nl_text_printable("https://example.nhs.uk/d?c=ABCD-1234"));
	assert_true(nl_text_printable("caf\xc3\xa9"));
	assert_false(nl_text_printable(""));
	assert_false(nl_text_printable(NULL));
	assert_false(nl_text_printable("a\nb"));
	assert_false(nl_text_printable("\x7f"));
}

static void test_ascii_copy_cuts_and_masks(void **state)
{
	char out[8];

	(void)state;
	nl_text_ascii_copy("ssh\x1b\xc3\xa9-host-long", out, sizeof(out));
	assert_string_equal(out, "ssh??"
	                         "?-"); /* split so that no trigraph forms */
	nl_text_ascii_copy("ok", out, sizeof(out));
	assert_string_equal(out, "ok");
	out[0] = 'x';
	nl_text_ascii_copy("ok", out, 0); /* no room: nothing written */
	assert_int_equal(out[0], 'x');
}

static void test_words_has(void **state)
{
	(void)state;
	assert_true(nl_words_has("openid profile email", "profile"));
	assert_true(nl_words_has("openid  profile", "profile"));
	assert_true(nl_words_has("openid", "openid"));
	assert_false(nl_words_has("openid profile_extended", "profile"));
	assert_false(nl_words_has("openid prof", "profile"));
	assert_false(nl_words_has("", "openid"));
	assert_false(nl_words_has(NULL, "openid"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_controls_are_c0_and_del),
	    cmocka_unit_test(test_mask_controls_in_place),
	    cmocka_unit_test(test_printable),
	    cmocka_unit_test(test_ascii_copy_cuts_and_masks),
	    cmocka_unit_test(test_words_has),
	};

	return cmocka_run_group_tests_name("nl_text", tests, NULL, NULL);
}
