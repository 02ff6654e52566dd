/* Sign-in flows in progress: the device-code layer of nhslogind. One table, one mutex; every
 * state change wakes the socket server (the notify fd) so a waiting PAM call returns at once.
 * Secrets (device_code, state, nonce, PKCE verifier) live only here and in the messages that
 * carry them; they are wiped when a flow is freed. */
#ifndef NL_FLOWS_H
#define NL_FLOWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "nl_config.h"
#include "nl_reason.h"

#define NL_FLOW_ID_LEN   20 /* "f-" + 16 hex + NUL fits in 20 */
#define NL_USER_CODE_LEN 8  /* characters of entropy, shown as XXXX-XXXX */
/* The user-code alphabet: no look-alikes (no 0/O, 1/I/L, 2/Z, 5/S, 8/B, U/V). 23 characters:
 * 8 of them give 23^8 = 2^36.2 codes. */
#define NL_USER_CODE_ALPHABET "ACDEFGHJKMNPQRTWXY34679"
#define NL_USER_MAX           64
#define NL_FIELD_MAX          256

enum nl_flow_state { NL_FLOW_PENDING = 0, NL_FLOW_APPROVED, NL_FLOW_DENIED };

struct nl_flows;

/* What `start` hands back to the PAM module. Free with nl_flow_started_clear (wipes). */
struct nl_flow_started {
	char id[NL_FLOW_ID_LEN];
	char *device_code;                    /* secret */
	char user_code[NL_USER_CODE_LEN + 2]; /* display form XXXX-XXXX */
	int expires_in;
};
void nl_flow_started_clear(struct nl_flow_started *s);

/* What a waiter learns. */
struct nl_flow_status {
	enum nl_flow_state state;
	enum nl_reason reason;
	int expires_in;             /* seconds left while pending */
	bool want_number;           /* pending: signed in at NHS login, waiting for the number */
	char user[NL_USER_MAX + 1]; /* the flow's user */
	char message[NL_FIELD_MAX]; /* one line for the person, no secrets */
	uint64_t tag;               /* the flow's wake-up tag (see nl_flows_take_changed) */
};

/* What the bridge needs to send the phone to /authorize (from a user code). Free with
 * nl_flow_authz_clear. */
struct nl_flow_authz {
	char id[NL_FLOW_ID_LEN];
	char *state; /* secret-ish: binds the callback to this flow */
	char *nonce;
	char *code_challenge; /* S256 of the flow's PKCE verifier */
};
void nl_flow_authz_clear(struct nl_flow_authz *a);

/* What the callback needs for the code exchange (from state). Free with nl_flow_exchange_clear. */
struct nl_flow_exchange {
	char id[NL_FLOW_ID_LEN];
	char user[NL_USER_MAX + 1];
	char *nonce;
	char *code_verifier; /* secret */
};
void nl_flow_exchange_clear(struct nl_flow_exchange *x);

/* Admin listing. */
struct nl_flow_info {
	char id[NL_FLOW_ID_LEN];
	char user[NL_USER_MAX + 1];
	char service[NL_FIELD_MAX];
	char rhost[NL_FIELD_MAX];
	enum nl_flow_state state;
	int expires_in;
};

/* Where a start comes from: the PAM items the module sent and the socket peer that sent them. */
struct nl_flow_origin {
	const char *user, *service, *rhost, *tty;
	uint64_t owner;       /* the connection; its closing cancels the flow */
	unsigned ttl;         /* seconds; 0 = flow_ttl */
	bool caller_supplied; /* service/rhost/tty come from a non-root peer: labelled as such */
	bool number_match;    /* the approval waits for the phone's number typed at the terminal */
};

/* cfg supplies flow_ttl, max_flows, max_flows_per_user, code_attempts; it must outlive the table.
 * notify_fd (an eventfd or pipe write end, or -1) gets a write on every state change. */
int nl_flows_new(const struct nl_config *cfg, int notify_fd, struct nl_flows **out);
void nl_flows_free(struct nl_flows *fl);

/* A new pending flow for (user, service, rhost, tty) owned by connection `owner`.
 * NL_ERR_LIMIT when max_flows or max_flows_per_user is reached; NL_ERR_INVALID for a bad user
 * name (1..64 bytes, no control characters). */
int nl_flows_start(struct nl_flows *fl, const char *user, const char *service, const char *rhost,
                   const char *tty, uint64_t owner, struct nl_flow_started *out);
/* A new pending flow from o. Limits that no caller can use to lock a person out:
 * - per origin (the remote host, or else the tty), max_flows_per_user pending flows of one user:
 *   NL_ERR_LIMIT past it;
 * - per user over all origins, NL_FLOWS_USER_FACTOR x max_flows_per_user: a sign-in at the
 *   computer itself (no rhost) ends the user's oldest remote pending flow to make room; otherwise
 *   NL_ERR_UNAVAILABLE;
 * - the whole table (max_flows): ended flows go first; then a sign-in at the computer itself
 *   ends the oldest remote pending flow; otherwise NL_ERR_UNAVAILABLE (the break-glass code).
 * An ended-to-make-room flow is denied as cancelled and logged "evicted". */
#define NL_FLOWS_USER_FACTOR 4
int nl_flows_start_from(struct nl_flows *fl, const struct nl_flow_origin *o, struct nl_flow_started *out);
/* The same with its own lifetime in seconds (device mode: the provider's expires_in, capped by
 * flow_ttl by the caller). */
int nl_flows_start_ttl(struct nl_flows *fl, const char *user, const char *service, const char *rhost,
                       const char *tty, uint64_t owner, unsigned ttl, struct nl_flow_started *out);

/* Status by device_code (constant-time compare). NL_ERR_NOT_FOUND if unknown. A flow that has
 * ended stays readable until its owner collects it once (then it is freed) or it expires. */
int nl_flows_status(struct nl_flows *fl, const char *device_code, struct nl_flow_status *out);

/* Cancel by device_code / all flows of a connection (closed) / by public id (admin). A flow that
 * has already ended is left as it ended; *was (may be NULL) gets the state the flow had: only
 * NL_FLOW_PENDING means this call cancelled it. */
int nl_flows_cancel(struct nl_flows *fl, const char *device_code);
void nl_flows_cancel_owner(struct nl_flows *fl, uint64_t owner);
int nl_flows_cancel_id(struct nl_flows *fl, const char *id, enum nl_flow_state *was);

/* Bridge: the phone typed a user code (any case, spaces and dash ignored). client is the
 * phone's address (behind a trusted proxy, the one it forwarded), for the guessing limit; an IPv6
 * address counts by its /64. NL_ERR_NOT_FOUND (wrong code; counts an attempt), NL_ERR_LIMIT (this
 * client entered too many wrong codes in 10 min: code_attempts, or 3 while wrong codes arrive from
 * everyone at 100 a minute or more; checked before the code, so the right code is refused too),
 * NL_ERR_EXPIRED. Wrong codes from other clients never refuse this one. */
int nl_flows_begin_authz(struct nl_flows *fl, const char *user_code, const char *client,
                         struct nl_flow_authz *out);
/* Bridge callback: take the pending flow that state names, once (a replayed state gets
 * NL_ERR_NOT_FOUND). The flow stays pending until nl_flows_finish. No browser check: the bridge
 * uses nl_flows_take_state_bound. */
int nl_flows_take_state(struct nl_flows *fl, const char *state, struct nl_flow_exchange *out);

/* The confirmation page and the browser binding (RFC 8628 5.4; doc/threat-model.md). The bridge
 * shows the phone what the flow's own record says before anything goes to NHS login, and ties the
 * flow to the one browser that continued from that page: the SHA-256 of a random cookie value
 * (NL_FLOW_BROWSER_LEN bytes) is kept in the flow, never the value itself. */
#define NL_FLOW_BROWSER_LEN 32
struct nl_flow_view {
	char id[NL_FLOW_ID_LEN];
	char user[NL_USER_MAX + 1];
	char service[NL_FIELD_MAX], rhost[NL_FIELD_MAX], tty[NL_FIELD_MAX];
	bool caller_supplied; /* service, rhost and tty came from a peer that is not root */
	time_t started_at;
	char user_code[NL_USER_CODE_LEN + 2]; /* display form XXXX-XXXX */
	char host[64]; /* role = bridge: the enrolled workstation's name; "" for this computer */
};
/* The record of pending flow id. NL_ERR_NOT_FOUND, or NL_ERR_EXPIRED once it has ended, expired
 * or its callback has been taken. */
int nl_flows_view(struct nl_flows *fl, const char *id, struct nl_flow_view *out);
/* "Continue to NHS login" from the browser whose cookie hashes to browser: the first such call
 * binds the flow to that browser and later ones must come from it (NL_ERR_PERM otherwise: the flow
 * is being finished in another browser; nothing changes). On success *out is what /authorize
 * needs, as nl_flows_begin_authz gives it. NL_ERR_NOT_FOUND, NL_ERR_EXPIRED as nl_flows_view. */
int nl_flows_bind_browser(struct nl_flows *fl, const char *id, const unsigned char *browser,
                          struct nl_flow_authz *out);
/* "This was not me" on the confirmation page: the pending flow ends denied (reason denied), logged
 * as refused at the confirmation page from client. NL_ERR_NOT_FOUND, NL_ERR_EXPIRED. */
int nl_flows_refuse(struct nl_flows *fl, const char *id, const char *client);
/* The bridge callback's nl_flows_take_state: only the browser the flow is bound to (browser: the
 * SHA-256 of the request's cookie, NULL without one) may take the state. From any other browser,
 * or before any browser continued, NL_ERR_PERM with out->id set to the flow's id: the state is not
 * taken and the flow goes on, so that a stolen or forwarded callback URL can neither finish nor end
 * the sign-in (the first such callback of a flow is logged at notice with client). */
int nl_flows_take_state_bound(struct nl_flows *fl, const char *state, const unsigned char *browser,
                              const char *client, struct nl_flow_exchange *out);
/* End a flow by id as the sign-in decided (nl_signin_complete decides; this only records it):
 * approved if reason == NL_REASON_NONE (with number matching: pending, wanting the number), denied
 * with reason otherwise. message (may be NULL: the reason's own) is what the person reads. */
int nl_flows_finish(struct nl_flows *fl, const char *id, enum nl_reason reason, const char *message);

/* End every pending flow with reason (nhslogind stopping: NL_REASON_RESTARTED), logging each with
 * logwhy. Returns how many ended. */
size_t nl_flows_end_all(struct nl_flows *fl, enum nl_reason reason, const char *logwhy);

/* Does connection `owner` still have a flow here, pending or ended but not yet collected? Such a
 * connection is a sign-in in progress (a person reading the screen), never an idle one. */
bool nl_flows_owner_active(struct nl_flows *fl, uint64_t owner);

/* Is the flow with this public id still pending (device mode: keep polling the provider)? */
bool nl_flows_pending_id(struct nl_flows *fl, const char *id);

/* Wake-up tags, so that the server wakes only the waiters of flows that changed. A flow's tag is
 * a keyed hash of its device_code (it says nothing about the code), handed out in
 * nl_flow_status.tag. Every flow that ends records its tag (before the notify fd is written); this
 * hands out up to max recorded tags and forgets them. Returns how many. Only NL_FLOWS_CHANGED_MAX
 * are kept: past that *overflow is set (until the next call), and the caller must recheck every
 * waiter. Tags may repeat. */
#define NL_FLOWS_CHANGED_MAX 4096
size_t nl_flows_take_changed(struct nl_flows *fl, uint64_t *tags, size_t max, bool *overflow);

/* Expire flows past their time; returns how many ended. Call about once a second. */
size_t nl_flows_sweep(struct nl_flows *fl);
size_t nl_flows_count(struct nl_flows *fl);
/* Copy up to max flows into out; returns the number copied. */
size_t nl_flows_list(struct nl_flows *fl, struct nl_flow_info *out, size_t max);

/* Where flow id was started, for the reuse rule (the token cache). */
struct nl_flow_where {
	char service[NL_FIELD_MAX], rhost[NL_FIELD_MAX], tty[NL_FIELD_MAX];
	uint64_t owner;       /* the connection that started it */
	bool caller_supplied; /* started by a peer that is not root */
	bool number_match;    /* its approval waits for the number typed at the terminal */
};
/* 0, or NL_ERR_NOT_FOUND if no flow has that id. */
int nl_flows_where(struct nl_flows *fl, const char *id, struct nl_flow_where *out);

/* Canonical user code from what a person typed: upper-cased, spaces/dashes dropped, must be
 * NL_USER_CODE_LEN characters of the alphabet. 0 or NL_ERR_INVALID. out has room for LEN+1. */
int nl_user_code_normalize(const char *typed, char *out);

/* Number matching ([policy] number_matching; doc/threat-model.md): a flow started with
 * number_match does not end approved at nl_flows_finish. It stays pending, wanting the two-digit
 * number (10..99) that the phone's result page shows to be typed at the terminal, for at least
 * NL_FLOW_NUMBER_GRACE seconds more: a phishing victim signs in on their phone but is not at the
 * terminal to read the number off it. */
#define NL_FLOW_NUMBER_GRACE 120
/* An agent's flow (doc/bridge.md): the bridge's phone showed `number` (10..99), so that is the number
 * the terminal must type when nl_flows_finish approves flow id, instead of one drawn here. 0;
 * NL_ERR_INVALID for a number out of range, a flow without number_match or one that wants its number
 * already; NL_ERR_NOT_FOUND when the flow is not pending. */
int nl_flows_set_number(struct nl_flows *fl, const char *id, unsigned number);
/* The number the phone shows for flow id, or NL_ERR_NOT_FOUND when none is wanted. */
int nl_flows_number_of(struct nl_flows *fl, const char *id, unsigned *number);
/* The terminal typed `typed` for the flow of device_code. The right number approves the flow (0).
 * Anything else ends it denied (NL_REASON_WRONG_NUMBER, logged as a possible phishing attempt;
 * the third such ending for one account within an hour is logged at warning) and returns
 * NL_ERR_DENIED. NL_ERR_INVALID when the flow wants no number (yet); NL_ERR_NOT_FOUND. */
int nl_flows_enter_number(struct nl_flows *fl, const char *device_code, const char *typed);

#endif
