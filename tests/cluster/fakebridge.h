/* A stand-in for the central bridge (doc/bridge.md, "The API"), for the agent's tests: it speaks
 * the agent API on 127.0.0.1 (libmicrohttpd, a thread a connection so that long-polls block), checks
 * every request's NL-Host signature with nl_hostauth_verify against a hosts directory (an
 * in-memory replay set: a reused jti is refused), and answers as its mode says. Honest approvals
 * carry REAL tokens from the real nhslogin-mock, exchanged with the test's client key for the
 * nonce the agent chose; the malicious modes tell each lie a compromised bridge could. */
#ifndef NL_TEST_FAKEBRIDGE_H
#define NL_TEST_FAKEBRIDGE_H

#include <stdbool.h>
#include <stddef.h>

enum fb_mode {
	FB_HONEST,          /* the token of the agent's own flow */
	FB_OTHER_NONCE,     /* a real token of another flow (another nonce) */
	FB_OWN_KEY_NHS_KID, /* the flow's claims signed with the bridge's own key, NHS login's kid */
	FB_OWN_KEY_OWN_KID, /* the same under the bridge's own kid */
	FB_ALTERED,         /* NHS login's token with its payload edited (another NHS number) */
	FB_NO_TOKEN,        /* "approved" and nothing else */
	FB_REPLAY,          /* the id_token of an earlier flow (the last one approved) */
	FB_GARBAGE,         /* "approved" with an id_token that is no JWS */
	FB_TWO_TOKENS,      /* "approved" with id_token twice (the flow's own, and another flow's) */
};

struct fakebridge;

/* Start on 127.0.0.1:port 0, trusting the public keys in hosts_dir. NULL on failure. */
struct fakebridge *fakebridge_start(const char *hosts_dir);
/* The bridge's own client at NHS login (the mock): issuer, the registered client_id, the client's
 * private key file and redirect_uri. 0 or -1. */
int fakebridge_client(struct fakebridge *fb, const char *issuer, const char *client_id, const char *key_path,
                      const char *redirect_uri, const char *dir);
/* Load NHS login's discovery and JWKS into the bridge's client now (after fakebridge_client), so
 * that later requests at the mock are others' (an agent's). 0 or -1. */
int fakebridge_warm(struct fakebridge *fb);
void fakebridge_stop(struct fakebridge *fb);
/* "http://127.0.0.1:PORT" */
const char *fakebridge_url(const struct fakebridge *fb);

/* Behaviour, set between runs. */
void fakebridge_mode(struct fakebridge *fb, enum fb_mode mode);
/* Answer the start with this status and an error body (0: 201 as usual). */
void fakebridge_start_status(struct fakebridge *fb, unsigned status);
/* Make each flow at once but answer the start only ms later (0: at once). */
void fakebridge_start_delay(struct fakebridge *fb, unsigned ms);
/* The next n polls fail: odd ones drop the connection without an answer, even ones answer 502. */
void fakebridge_fail_polls(struct fakebridge *fb, unsigned n);
/* The number the phone's page shows, put in the approval (0: none). */
void fakebridge_number(struct fakebridge *fb, unsigned number);

/* The bridge's operator revokes workstation name (removes hosts_dir/NAME.pem) while its long-poll
 * waits; that poll is answered 502 at once, so that the next one meets the revocation. */
void fakebridge_revoke(struct fakebridge *fb, const char *hosts_dir, const char *name);

/* The phone: sign the latest flow's person in at the mock (auto-approved there) and end the flow
 * as the mode says; the waiting long-poll gets it. 0 or -1. */
int fakebridge_approve(struct fakebridge *fb);

struct fakebridge_stats {
	unsigned starts, polls, deletes, refused; /* refused: requests answered 401 */
	unsigned replayed;                        /* of them: a jti seen before */
	unsigned jtis;                            /* distinct jtis seen */
	unsigned last_ttl;                        /* the "ttl" of the last start */
	bool last_number_match;
	char last_refusal[256];
};
void fakebridge_stats(struct fakebridge *fb, struct fakebridge_stats *st);

#endif
