/* Shared by the tests/cluster/test_hostauth_*.c programs: the fixture (hostauth_fixture.c), a hosts
 * directory with keys A, B enrolled as ws-a, ws-b and C never enrolled, and the helpers that sign
 * requests, check them as the bridge does, and make tokens by hand. */
#ifndef HOSTAUTH_FIXTURE_H
#define HOSTAUTH_FIXTURE_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "harness.h"
#include "hostauth.h"
#include "nl_jose.h"

#define AUD  "https://signin.example.trust.nhs.uk"
#define PATH "/api/v1/flows?wait=1"
#define BODY "{\"user\":\"alice\",\"service\":\"login\",\"tty\":\"tty1\"}"
#define T0   1764928800 /* a fixed "now" */
/* The header our signer writes, for tokens made by hand. */
#define TYPED_HEADER "{\"alg\":\"ES256\",\"typ\":\"nl-host+jwt\"}"

/* ---- an in-memory replay cache (the bridge's is Redis SET NX) ---- */

#define REPLAY_MAX 4096
struct replay {
	struct {
		char key[160];
		time_t until;
	} seen[REPLAY_MAX];
	size_t n;
	bool fail; /* answer ERROR, as an unreachable Redis would */
	unsigned calls;
};

/* ---- fixtures: keys A, B (enrolled as ws-a, ws-b), C (never enrolled), and the directories ---- */

struct hostauth_fx {
	char dir[64];   /* everything, removed at the end */
	char hosts[96]; /* dir/hosts: the bridge's enrolment directory */
	char keys[96];  /* dir/keys: the workstations' private keys */
	cjose_jwk_t *a, *b, *c;
	EVP_PKEY *evp_a; /* A again, to craft tokens by hand */
	struct nl_hostauth_hosts *h;
	struct replay rp;
};

extern struct hostauth_fx fx;

cjose_jwk_t *new_key(const char *file, char *path, size_t pathlen);
int enrol(const char *name, const cjose_jwk_t *key);
int group_setup(void **state);
int group_teardown(void **state);

/* ---- helpers ---- */

char *sign(const cjose_jwk_t *key, const char *name, const char *method, const char *path, const char *body,
           const char *aud, time_t now);
int verify_at(const char *value, const char *method, const char *path, const char *body, time_t now,
              enum nl_hostauth_reason *why, char name[NL_HOSTAUTH_NAME_MAX + 1]);

/* Refused for exactly this reason (and no name handed out). */
#define assert_refused(value, method, path, body, now, reason)                                               \
	do {                                                                                                 \
		enum nl_hostauth_reason why_;                                                                \
		char name_[NL_HOSTAUTH_NAME_MAX + 1];                                                        \
		assert_int_not_equal(verify_at((value), (method), (path), (body), (now), &why_, name_), 0);  \
		assert_int_equal(why_, (reason));                                                            \
		assert_string_equal(name_, "");                                                              \
	} while (0)

void assert_accepted(const char *value, const char *method, const char *path, const char *body, time_t now,
                     const char *want_name);
char *bh_of(const char *body);
json_t *claims_of(const char *iss, const char *method, const char *path, const char *body, long long iat,
                  long long exp, const char *jti);
char *signed_typed(const cjose_jwk_t *key, const char *kid, const char *typ, json_t *claims);
char *signed_value(const cjose_jwk_t *key, const char *kid, json_t *claims);
char *by_hand(const char *header, const char *payload, const uint8_t *sig, size_t siglen, char **input_out);
char *es256_by_hand(const char *header, const char *payload);

#endif
