/* How a sign-in ends: the one vocabulary of verdicts. Every reason has one wire word (the socket
 * protocol's `reason`, doc/protocol.md) and one row of what each surface makes of it: the line the
 * module shows at the terminal and its PAM result, the flow's message, the phone's result page and
 * the priority of the daemon's log line. A new reason is one enum value and one row in nl_reason.c. */
#ifndef NL_REASON_H
#define NL_REASON_H

#include <stdbool.h>
#include <stddef.h>

/* The values are stable within a build only; the wire carries the words. */
enum nl_reason {
	NL_REASON_NONE = 0, /* approved */
	NL_REASON_DENIED,   /* the person declined, or the provider refused */
	NL_REASON_EXPIRED,
	NL_REASON_MISMATCH,      /* mapped local account differs from the flow's user */
	NL_REASON_NO_MAPPING,    /* identity maps to no account */
	NL_REASON_LEVEL,         /* identity level below min_level */
	NL_REASON_INVALID_TOKEN, /* an ID token rule failed */
	NL_REASON_CANCELLED,
	NL_REASON_UNAVAILABLE,   /* provider unreachable or misbehaving */
	NL_REASON_RESTARTED,     /* nhslogind stopped (or restarted) while the flow was pending */
	NL_REASON_NO_CLAIM,      /* the identity lacks the configured claim (or it is unusable) */
	NL_REASON_MISCONFIGURED, /* the identity mapping cannot work here (map file, settings) */
	NL_REASON_POLICY,        /* [policy] refuses this service or remote network (at start) */
	NL_REASON_WRONG_NUMBER,  /* number matching: the terminal typed another number than the phone's */
	NL_REASON_COUNT
};

/* One reason as every surface shows it. Strings are static; none holds a secret. */
struct nl_reason_row {
	const char *word;        /* the wire word */
	bool falls_back;         /* the module answers PAM_AUTHINFO_UNAVAIL (a stack may fall back to a
	                          * break-glass password) rather than PAM_AUTH_ERR */
	int log_prio;            /* syslog priority of the daemon's line for a flow ending so */
	const char *terminal;    /* what the module shows at the terminal (NULL for NONE) */
	const char *flow;        /* the flow's message (wait replies); "%s" stands for the flow's user */
	const char *phone_title; /* the phone's result page: its heading, */
	const char *phone_text;  /* its text, */
	int phone_status;        /* and its HTTP status */
	bool phone_ok;           /* the success styling */
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
