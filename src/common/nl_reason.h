/* How a sign-in ends: the one vocabulary of verdicts. Every reason has one wire word (the socket
 * protocol's `reason`, doc/protocol.md) and one row of what each surface makes of it: the line the
 * module shows at the terminal and its PAM result, nhsloginctl login's hint to the admin, the flow's
 * message, the phone's result page and the priority of the daemon's log line. A new reason is one
 * X(...) entry in NL_REASONS below. */
#ifndef NL_REASON_H
#define NL_REASON_H

#include <stdbool.h>
#include <stddef.h>
#include <syslog.h>

/* The phone's pages end a failure the person may retry with this sentence. */
#define NL_REASON_PHONE_AGAIN       " Start again at your workstation if you want to try again."
#define NL_REASON_PHONE_ENDED_TITLE "This code has expired - start again at your workstation"
#define NL_REASON_PHONE_ENDED_TEXT                                                                           \
	"The sign-in at your workstation has ended. Start again there to get a new code."
#define NL_REASON_PHONE_UNREACHED_TITLE "Sign-in could not be finished"
#define NL_REASON_PHONE_UNREACHED_TEXT                                                                       \
	"NHS login could not be reached to finish signing in." NL_REASON_PHONE_AGAIN

/* Every reason, one X(...) each, in the enum's order:
 *   X(NAME, wire word, falls_back, log priority, phone's HTTP status,
 *     terminal line, nhsloginctl login's hint, flow message ("%s": the flow's user),
 *     phone page title, phone page text)
 * falls_back: the module answers PAM_AUTHINFO_UNAVAIL (a stack may fall back to a break-glass
 * password) rather than PAM_AUTH_ERR. The words must not change; the texts are what people read. */
#define NL_REASONS(X)                                                                                        \
	X(NONE, "none", false, LOG_NOTICE, 200, NULL, "", "", "Signed in - return to your workstation",      \
	  "You have signed in with NHS login. Your workstation will continue in a moment. You can close "    \
	  "this page.")                                                                                      \
	X(DENIED, "denied", false, LOG_NOTICE, 403,                                                          \
	  "NHS login: the sign-in was declined. To try again, start the login again.",                       \
	  "The sign-in was declined on the phone, stopped at NHS login (at its identity check, for one) or " \
	  "refused by NHS login; nhslogind's log has NHS login's words.",                                    \
	  "The sign-in was declined.", "Sign-in was not completed",                                          \
	  "NHS login did not sign you in, so your workstation stays locked." NL_REASON_PHONE_AGAIN)          \
	X(EXPIRED, "expired", false, LOG_NOTICE, 410,                                                        \
	  "NHS login: the code has expired. Start the login again to get a new code.",                       \
	  "The code expired before the sign-in was finished: run the command again.",                        \
	  "The sign-in code has expired.", NL_REASON_PHONE_ENDED_TITLE, NL_REASON_PHONE_ENDED_TEXT)          \
	X(MISMATCH, "mismatch", false, LOG_NOTICE, 403,                                                      \
	  "NHS login: this NHS login is not linked to the account you are signing in to. Check the user "    \
	  "name, or sign in on the phone with your own NHS login.",                                          \
	  "That NHS login belongs to another local account (see map_file).",                                 \
	  "This NHS login is not linked to the account %s.", "Wrong account",                                \
	  "This NHS login is not linked to the account being signed in to at the workstation. Check the "    \
	  "user name on the workstation, or ask your IT service desk.")                                      \
	X(NO_MAPPING, "no_mapping", false, LOG_NOTICE, 403,                                                  \
	  "NHS login: this NHS login is not linked to any account on this computer. Ask IT to link it to "   \
	  "your account.",                                                                                   \
	  "That NHS login is linked to no local account: add it to map_file.",                               \
	  "This NHS login is not linked to any account on this computer.", "No account for this NHS login",  \
	  "Your NHS login is not linked to an account on this workstation. Ask your IT service desk to "     \
	  "link it.")                                                                                        \
	X(LEVEL, "level", false, LOG_NOTICE, 403,                                                            \
	  "NHS login: your NHS login identity level is not high enough for this computer. Prove your "       \
	  "identity in the NHS App or at NHS login, then try again.",                                        \
	  "The identity level is below [identity] min_level.",                                               \
	  "This NHS login does not have a high enough identity level.", "Identity check needed",             \
	  "Your NHS login has not been checked to the level this workstation needs. Prove your identity in " \
	  "the NHS App or NHS login settings, then try again.")                                              \
	X(INVALID_TOKEN, "invalid_token", false, LOG_WARNING, 502,                                           \
	  "NHS login: the sign-in could not be verified. Try again; if it happens again, ask IT.",           \
	  "An ID token check failed: see journalctl -u nhslogind.",                                          \
	  "The answer from NHS login could not be verified.", "Sign-in could not be checked",                \
	  "The answer from NHS login could not be checked." NL_REASON_PHONE_AGAIN)                           \
	X(CANCELLED, "cancelled", false, LOG_NOTICE, 410, "NHS login: sign-in cancelled.",                   \
	  "The sign-in was cancelled.", "The sign-in was cancelled.", NL_REASON_PHONE_ENDED_TITLE,           \
	  NL_REASON_PHONE_ENDED_TEXT)                                                                        \
	X(UNAVAILABLE, "unavailable", true, LOG_WARNING, 502,                                                \
	  "NHS login could not be reached. Try again later, or use your break-glass login.",                 \
	  "NHS login could not be reached: run nhsloginctl check.",                                          \
	  "NHS login could not be reached; try again later.", NL_REASON_PHONE_UNREACHED_TITLE,               \
	  NL_REASON_PHONE_UNREACHED_TEXT)                                                                    \
	X(RESTARTED, "restarted", true, LOG_NOTICE, 502,                                                     \
	  "NHS login stopped on this computer while you were signing in (it may be restarting). Start the "  \
	  "login again in a minute, or use your break-glass login.",                                         \
	  "", "NHS login stopped on this computer during the sign-in.", NL_REASON_PHONE_UNREACHED_TITLE,     \
	  NL_REASON_PHONE_UNREACHED_TEXT)                                                                    \
	X(NO_CLAIM, "no_claim", false, LOG_NOTICE, 403,                                                      \
	  "NHS login: the sign-in did not include your NHS number (or verified email address), which this "  \
	  "computer uses to find your account. Ask IT.",                                                     \
	  "The sign-in did not carry [identity] claim: check scope (profile, email).",                       \
	  "The sign-in did not include what this computer needs to find your account.",                      \
	  "NHS login did not say who you are",                                                               \
	  "The sign-in did not include your NHS number (or verified email address), which this workstation " \
	  "uses to find your account. Ask your IT service desk.")                                            \
	X(MISCONFIGURED, "misconfigured", true, LOG_ERR, 500,                                                \
	  "NHS login is not set up correctly on this computer. Ask IT, or use your break-glass login.",      \
	  "The map file or identity settings cannot work: run nhsloginctl check.",                           \
	  "NHS login is not set up correctly on this computer; ask IT.", "Workstation not set up correctly", \
	  "You signed in to NHS login, but this workstation is not set up correctly to finish signing you "  \
	  "in. Ask your IT service desk.")                                                                   \
	X(POLICY, "policy", false, LOG_NOTICE, 502,                                                          \
	  "NHS login: this computer does not allow signing in with NHS login this way (from there, or with " \
	  "this program). Ask IT if you need to.",                                                           \
	  "[policy] refuses sign-ins of this service or from this network.",                                 \
	  "This computer does not allow signing in with NHS login this way.",                                \
	  NL_REASON_PHONE_UNREACHED_TITLE, NL_REASON_PHONE_UNREACHED_TEXT)                                   \
	X(WRONG_NUMBER, "wrong_number", false, LOG_NOTICE, 502,                                              \
	  "NHS login: that is not the number shown on the phone, so the sign-in has been stopped. If you "   \
	  "did not start this sign-in, someone may be trying to use your account: tell IT.",                 \
	  "", "The number typed at the computer was not the one the phone showed.",                          \
	  NL_REASON_PHONE_UNREACHED_TITLE, NL_REASON_PHONE_UNREACHED_TEXT)

enum nl_reason {
#define NL_REASON_ENUM(name, ...) NL_REASON_##name,
	NL_REASONS(NL_REASON_ENUM)
#undef NL_REASON_ENUM
	    NL_REASON_COUNT
};

/* One reason as every surface shows it. Strings are static; none holds a secret. */
struct nl_reason_row {
	const char *word;        /* the wire word */
	bool falls_back;         /* PAM_AUTHINFO_UNAVAIL rather than PAM_AUTH_ERR (see above) */
	int log_prio;            /* syslog priority of the daemon's line for a flow ending so */
	int phone_status;        /* the phone's result page: its HTTP status, */
	const char *terminal;    /* what the module shows at the terminal (NULL for NONE) */
	const char *admin;       /* nhsloginctl login's hint to the admin ("" when it has none) */
	const char *flow;        /* the flow's message (wait replies); "%s" stands for the flow's user */
	const char *phone_title; /* the phone's result page: its heading, */
	const char *phone_text;  /* and its text */
	bool phone_ok;           /* the success styling (NONE only) */
};

/* The row of r; an out-of-range value gets the row of NL_REASON_DENIED. Never NULL. */
const struct nl_reason_row *nl_reason_row(enum nl_reason r);
/* The wire word of r ("none" for NL_REASON_NONE, "denied" for an out-of-range value). */
const char *nl_reason_word(enum nl_reason r);
/* The denial reason a wire word names: true and *out set, or false for an unknown word (and for
 * "none", which never ends a flow denied). */
bool nl_reason_from_word(const char *word, enum nl_reason *out);
/* The flow's message for r, with user in place of "%s", into out (always terminated). */
void nl_reason_flow_message(enum nl_reason r, const char *user, char *out, size_t outlen);

#endif
