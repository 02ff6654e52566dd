/* Shared by the tests/unit/test_oidc_*.c programs: the fixture (oidc_fixture.c) and the helpers
 * that configure a client, drive the mock and run a grant. */
#ifndef OIDC_FIXTURE_H
#define OIDC_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

#include "nl_config.h"
#include "mockproc.h"
#include "oidc.h"

#define CLIENT_ID      "oidc-test-client"
#define REDIRECT_URI   "http://127.0.0.1:9/callback"
#define TEST_TIMEOUT_S 180
#define MOCK_START_MS  15000

/* The fixture shared by the group: a temp dir, the client key pair, the mock process. */
struct oidc_fixture {
	char dir[256];
	char *key_path, *pub_path;
	struct mockproc *mock;
	const char *issuer; /* the mock's */
	int n_cache;
};

extern struct oidc_fixture fx;

int mock_start(bool auto_approve, struct mockproc **out);
long mock_stat(const char *name);
void mock_fault(const char *fault);
void set(struct nl_config *cfg, const char *section, const char *key, const char *value);
void make_cfg(struct nl_config *cfg, const char *cache_name);
struct nl_oidc *new_oidc(const struct nl_config *cfg);
void ready(struct nl_oidc *o);
char *query_param(const char *url, const char *name);
char *get_code(struct nl_oidc *o, const char *state, const char *nonce, const char *challenge);
int exchange(struct nl_oidc *o, const char *code, const char *verifier, const char *nonce,
             struct nl_identity *id, enum nl_outcome *oc, char *err, size_t errlen);
int device_poll(struct nl_oidc *o, const char *device_code, struct nl_identity *id, enum nl_outcome *oc,
                char *err, size_t errlen);
int group_setup(void **state);
int group_teardown(void **state);
int clear_faults(void **state);
struct nl_oidc *device_client(struct nl_config *cfg, const char *issuer);

#endif
