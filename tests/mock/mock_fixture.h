/* Shared by the tests/mock/test_mock_*.c programs: the fixture (mock_fixture.c) and the client's
 * helpers: authorize, assertions, forms, the token endpoint, JWT checks. */
#ifndef MOCK_FIXTURE_H
#define MOCK_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "mockproc.h"
#include "nl_http.h"
#include "nl_jose.h"

#define CLIENT_ID "test-client"
#define REDIRECT  "http://127.0.0.1:9/callback"
#define STATE     "st-1"
#define NONCE     "n-1"
#define SCOPE     "openid profile email"
/* RFC 7636 appendix B */
#define PKCE_VERIFIER  "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#define PKCE_CHALLENGE "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

struct mock_fixture {
	char dir[64];
	cjose_jwk_t *key, *other;
	char *pub, *keyp, *other_pub, *other_keyp;
	char client_arg[512];
	struct mockproc *mp;     /* --auto-approve p9 --device-endpoint */
	struct mockproc *manual; /* per test: no --auto-approve */
};

extern struct mock_fixture F;

void url_of(const struct mockproc *mp, const char *path, char *out, size_t len);
void authorize(const struct mockproc *mp, const char *params, struct mockproc_resp *resp);
char *std_params(const char *extra);
char *get_code_from(const struct mockproc *mp, const char *extra);
char *get_code(const char *extra);
char *assertion_with(const struct mockproc *mp, const cjose_jwk_t *key, const char *aud, time_t now);
char *assertion_for(const struct mockproc *mp);
void form_add(char **form, const char *name, const char *value);
char *code_form(const char *code, const char *redirect, const char *verifier, const char *assertion);
void post_form(const struct mockproc *mp, const char *path, const char *form, struct nl_http_resp *resp);
void http_get(const struct mockproc *mp, const char *path, const char *bearer, struct nl_http_resp *resp);
void exchange(const char *code, const char *redirect, const char *verifier, struct nl_http_resp *resp);
json_t *body_json(const struct nl_http_resp *resp);
void assert_oauth_error(const struct nl_http_resp *resp, long status, const char *error);
json_t *verify_jwt(const struct mockproc *mp, const char *jwt, char **kid);
char *jwks_kid(const struct mockproc *mp);
void control(const struct mockproc *mp, const char *json);
int group_setup(void **state);
int group_teardown(void **state);
int manual_setup(void **state);
int manual_teardown(void **state);
int reset_faults(void **state);

#endif
