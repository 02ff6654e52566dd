/* Shared by the tests/unit/test_bridge_*.c programs: the fixture (bridge_fixture.c), its HTTP
 * helpers and the steps of a sign-in as a phone's browser takes them. */
#ifndef BRIDGE_FIXTURE_H
#define BRIDGE_FIXTURE_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bridge.h"
#include "signin.h"
#include "mockproc.h"

#define CLIENT_ID     "bridge-test-client"
#define P9_NHS_NUMBER "9686368973" /* the mock's user p9 */

struct bridge_fixture {
	char dir[64];
	char *pub, *keyp;
	cjose_jwk_t *key;
	struct nl_config cfg;
	struct nl_oidc *oidc;
	struct mockproc *mp;
	uint16_t port;
	char client_arg[512];
	/* per test */
	struct nl_flows *fl;
	struct nl_tokcache *tc;
	struct nl_bridge *b;
	CURLSH *phone, *other; /* two browsers: cookie jars */
};

extern struct bridge_fixture F;

struct resp {
	long status;
	char *body;
	size_t len;
	char headers[16384];
	size_t hlen;
};

size_t on_body(char *p, size_t size, size_t n, void *ud);
void fetch_in(CURLSH *jar, const char *url, const char *post_body, const char *cainfo, struct resp *r);
void fetch(const char *url, const char *post_body, struct resp *r);
void resp_free(struct resp *r);
char *header(const struct resp *r, const char *name);
void assert_security_headers(const struct resp *r);
char *bridge_url(const char *path);
void get_path(const char *path, struct resp *r);
void set_str(char **field, const char *value);
void write_text(const char *path, const char *text, mode_t mode);
int group_setup(void **state);
int group_teardown(void **state);
int setup(void **state);
int teardown(void **state);
void start_flow(const char *user, struct nl_flow_started *s);
void lower_no_dash(const char *code, char *out, size_t len);
char *hidden(const char *html, const char *name);
void confirm_page_in(CURLSH *jar, const struct nl_flow_started *s, struct resp *r);
void answer_in(CURLSH *jar, const char *html, const char *answer, struct resp *r);
char *enter_code_in(CURLSH *jar, const struct nl_flow_started *s);
char *enter_code(const struct nl_flow_started *s);
char *authorize_at_mock(const char *authorize);
void assert_flow(const struct nl_flow_started *s, enum nl_flow_state st, enum nl_reason reason);

#endif
