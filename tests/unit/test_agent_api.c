/* The agent's pure helpers (src/daemon/agent.c): the request target under the bridge's URL (what
 * the signature's htu covers), the bridge's denial words, and the flow ids the API allows. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "agent.h"

static void target_is(const char *base, const char *suffix, const char *want_url, const char *want_path)
{
	char *url = NULL, *path = NULL;

	assert_int_equal(nl_agent_target(base, suffix, &url, &path), 0);
	assert_string_equal(url, want_url);
	assert_string_equal(path, want_path);
	free(url);
	free(path);
}

static void test_target_at_the_root(void **state)
{
	(void)state;
	target_is("https://bridge.example", "/agent/v1/flows", "https://bridge.example/agent/v1/flows",
	          "/agent/v1/flows");
	target_is("https://bridge.example/", "/agent/v1/flows", "https://bridge.example/agent/v1/flows",
	          "/agent/v1/flows");
	target_is("http://127.0.0.1:8080", "/agent/v1/flows/f1?wait=25",
	          "http://127.0.0.1:8080/agent/v1/flows/f1?wait=25", "/agent/v1/flows/f1?wait=25");
}

/* A bridge behind a path prefix: the prefix is part of the signed target. */
static void test_target_under_a_path(void **state)
{
	(void)state;
	target_is("https://signin.example.nhs.uk/nhslogin", "/agent/v1/flows",
	          "https://signin.example.nhs.uk/nhslogin/agent/v1/flows", "/nhslogin/agent/v1/flows");
	target_is("https://signin.example.nhs.uk/nhslogin/", "/agent/v1/flows/x",
	          "https://signin.example.nhs.uk/nhslogin/agent/v1/flows/x", "/nhslogin/agent/v1/flows/x");
}

static void test_target_refuses_nonsense(void **state)
{
	char *url = (char *)"x", *path = (char *)"x";
	(void)state;
	assert_int_not_equal(nl_agent_target("not a url", "/agent/v1/flows", &url, &path), 0);
	assert_null(url);
	assert_null(path);
	assert_int_not_equal(nl_agent_target("https://b.example", "agent", &url, &path), 0);
	assert_int_not_equal(nl_agent_target(NULL, "/agent", &url, &path), 0);
}

static void test_denial_words(void **state)
{
	(void)state;
	assert_int_equal(nl_agent_outcome_of("denied"), NL_OUT_DENIED);
	assert_int_equal(nl_agent_outcome_of("expired"), NL_OUT_EXPIRED);
	assert_int_equal(nl_agent_outcome_of("cancelled"), NL_OUT_EXPIRED);
	assert_int_equal(nl_agent_outcome_of("invalid_token"), NL_OUT_INVALID_TOKEN);
	assert_int_equal(nl_agent_outcome_of("level"), NL_OUT_LEVEL);
	assert_int_equal(nl_agent_outcome_of("unavailable"), NL_OUT_UNAVAILABLE);
	/* never approval, whatever the word; words only the agent decides are denials */
	assert_int_equal(nl_agent_outcome_of("none"), NL_OUT_DENIED);
	assert_int_equal(nl_agent_outcome_of("approved"), NL_OUT_DENIED);
	assert_int_equal(nl_agent_outcome_of("mismatch"), NL_OUT_DENIED);
	assert_int_equal(nl_agent_outcome_of(""), NL_OUT_DENIED);
	assert_int_equal(nl_agent_outcome_of(NULL), NL_OUT_DENIED);
}

static void test_flow_ids(void **state)
{
	char long_id[80];
	(void)state;
	assert_true(nl_agent_flow_id_ok("fb-flow_1"));
	memset(long_id, 'a', 64);
	long_id[64] = '\0';
	assert_true(nl_agent_flow_id_ok(long_id));
	long_id[64] = 'a';
	long_id[65] = '\0';
	assert_false(nl_agent_flow_id_ok(long_id));
	assert_false(nl_agent_flow_id_ok(""));
	assert_false(nl_agent_flow_id_ok(NULL));
	assert_false(nl_agent_flow_id_ok("../x"));
	assert_false(nl_agent_flow_id_ok("a?wait=0"));
	assert_false(nl_agent_flow_id_ok("a b"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_target_at_the_root),
	    cmocka_unit_test(test_target_under_a_path),
	    cmocka_unit_test(test_target_refuses_nonsense),
	    cmocka_unit_test(test_denial_words),
	    cmocka_unit_test(test_flow_ids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
