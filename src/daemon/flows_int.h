/* The flows table's insides, shared by flows.c, flows_start.c and flows_phone.c only. */
#ifndef NL_FLOWS_INT_H
#define NL_FLOWS_INT_H

#include <openssl/evp.h>
#include <pthread.h>
#include "flows.h"
#include "flows_store.h"

/* The guessing limit on user codes (the arithmetic is in nhslogin.conf(5), "THE WRONG-CODE LIMIT").
 * Per client (an address; an IPv6 address counts by its /64): cfg->code_attempts wrong codes in a
 * window of GUESS_WINDOW seconds, then that client is refused - the right code too - until the
 * window passes. That part is hard: a client past it gets no answer about any code.
 * Globally: GUESS_GLOBAL_PER_MIN wrong codes in a minute from everyone mean a distributed guesser is
 * at work; until a minute passes below that, every client's allowance drops to GUESS_PRESSURE_MAX.
 * The global count never refuses anyone by itself: a phone that has not entered wrong codes itself
 * always has its code looked at, so no number of other addresses can lock a person out.
 * Clients are remembered in an open-addressed table of GUESS_CLIENTS entries (keyed hash, at most
 * GUESS_PROBE slots looked at); when a new client finds no free slot, the entry whose window began
 * longest ago among those slots is forgotten. */
#define GUESS_WINDOW         600
#define GUESS_CLIENTS        8192 /* a power of two */
#define GUESS_PROBE          16
#define GUESS_CLIENT_MAX     64
#define GUESS_GLOBAL_PER_MIN 100
#define GUESS_PRESSURE_MAX   3
/* An ended flow stays readable (for the waiter to learn the outcome) at least this long after it
 * ended and after its expiry time: a person who signed in on the phone and is slow to press Enter
 * still gets the approval. Its owner collecting it, or closing, removes it sooner. */
#define ENDED_GRACE  60
#define UNIQUE_TRIES 32

enum ix { IX_DC = 0, IX_STATE, IX_UCODE, IX_ID, IX_USER, IX_N };

struct flow {
	struct flow *next[IX_N]; /* hash bucket chains */
	uint64_t hash[IX_N];
	bool linked[IX_N];
	struct flow *prev_all, *next_all; /* every flow, oldest first */
	char id[NL_FLOW_ID_LEN];
	char *device_code, *state, *nonce, *verifier, *challenge;
	char user_code[NL_USER_CODE_LEN + 1]; /* canonical, no dash */
	char user[NL_USER_MAX + 1];
	char service[NL_FIELD_MAX], rhost[NL_FIELD_MAX], tty[NL_FIELD_MAX];
	uint64_t owner, seq; /* seq: start order, for "oldest" */
	bool caller_supplied;
	time_t expires_at, ended_at;
	enum nl_flow_state st;
	enum nl_reason reason;
	char message[NL_FIELD_MAX];
	bool taken;                     /* the callback has claimed the state */
	bool number_match, want_number; /* number matching: asked for; signed in, number not typed yet */
	unsigned number;                /* what the phone shows, 10..99, while want_number */
	unsigned preset;                /* an agent's: the number the bridge's phone showed, or 0 */
	time_t started_at;
	unsigned char browser[NL_FLOW_BROWSER_LEN]; /* SHA-256 of the bound browser's cookie */
	bool bound;                                 /* a browser continued to NHS login */
	unsigned foreign_callbacks;                 /* callbacks refused for another browser */
};

/* Wrong numbers typed for one account: the times of the last three. */
#define WRONG_USERS  64
#define WRONG_WINDOW 3600
struct wrong_number {
	char user[NL_USER_MAX + 1];
	time_t at[3];
};

struct guess {
	char client[GUESS_CLIENT_MAX];
	time_t start;
	unsigned count;
};

struct nl_store;

struct nl_flows {
	struct nl_store *st;         /* role = bridge: every flow is in Redis (flows_store.c), none here */
	unsigned char state_key[32]; /* bridge: keys the state derived from a flow id (secret) */
	pthread_mutex_t mu;
	const struct nl_config *cfg;
	int notify_fd;
	unsigned char hkey[32];
	EVP_MD_CTX *hbase, *hwork; /* SHA-256 with hkey absorbed; scratch */
	struct flow **bucket[IX_N];
	size_t mask;
	struct flow *head, *tail;
	size_t count, pending;
	struct guess guesses[GUESS_CLIENTS];
	time_t gwin_start;      /* this minute of the global count */
	unsigned gcount, gprev; /* wrong codes from everyone this minute and the minute before */
	uint64_t next_seq;
	struct wrong_number wrong[WRONG_USERS]; /* recent wrong-number endings, by account */
	uint64_t changed[NL_FLOWS_CHANGED_MAX]; /* tags of flows that ended, for the server */
	size_t nchanged;
	bool changed_overflow;
};

/* Shared by flows.c, flows_start.c and flows_phone.c; all but flows_khash need fl->mu held. */
void flows_notify(struct nl_flows *fl);
uint64_t flows_khash(struct nl_flows *fl, enum ix ix, const char *s);
void flows_ix_link(struct nl_flows *fl, struct flow *f, enum ix ix);
struct flow *flows_ix_find(struct nl_flows *fl, enum ix ix, const char *key);
void flows_free_flow(struct flow *f);
void flows_remove_flow(struct nl_flows *fl, struct flow *f);
void flows_note_change(struct nl_flows *fl, const struct flow *f);
void flows_end_flow(struct nl_flows *fl, struct flow *f, enum nl_flow_state st, enum nl_reason reason,
                    const char *message, time_t now, const char *logwhy);
bool flows_check_expiry(struct nl_flows *fl, struct flow *f, time_t now);
int flows_random_user_code(char *out);
int flows_random_id(char *out);
void flows_guess_key(const char *client, char *out, size_t outlen);

/* The bridge role's back end (flows_store.c), called by the functions of flows.h when fl->st is set. */
int flows_store_begin_authz(struct nl_flows *fl, const char *user_code, const char *client,
                            struct nl_flow_authz *out);
int flows_store_view(struct nl_flows *fl, const char *id, struct nl_flow_view *out);
int flows_store_bind_browser(struct nl_flows *fl, const char *id, const unsigned char *browser,
                             struct nl_flow_authz *out);
int flows_store_refuse(struct nl_flows *fl, const char *id, const char *client);
int flows_store_finish(struct nl_flows *fl, const char *id, enum nl_reason reason, const char *message);

#endif
