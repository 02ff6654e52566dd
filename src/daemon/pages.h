/* The bridge's HTML pages: mobile-first, plain language, no JavaScript, no external resources.
 * Every string from outside is HTML-escaped here; callers pass plain text. */
#ifndef NL_PAGES_H
#define NL_PAGES_H

#include <stdbool.h>

/* The code entry form. prefill (may be NULL) goes into the text field; problem (may be NULL) is
 * shown in an error summary at the top and beside the field. New string, or NULL when out of
 * memory. */
char *nl_page_form(const char *prefill, const char *problem);
/* An outcome page: title is the one heading; text's first sentence says what happened and the
 * sentences after it (if any) go under "What to do next". ok chooses the success styling; with
 * again, a button back to the code entry form. New string, or NULL when out of memory. */
char *nl_page_message(const char *title, const char *text, bool ok, bool again);
/* What the confirmation page states, as plain text from the flow's record (never from the phone):
 * the local account, the computer's name, the kind of access in words ("SSH from 10.1.2.3"), the
 * PAM service, how long ago it started ("40 seconds ago") and the code; caller_supplied says the
 * access came from a caller that is not root. flow_id and token are the form's hidden fields. */
struct nl_confirm {
	const char *account, *computer, *access, *service, *started, *code;
	bool caller_supplied;
	const char *flow_id, *token;
};
/* The confirmation page: the facts, the warning to stop if someone sent the link, and a form that
 * POSTs to /d/confirm with answer=continue ("Continue to NHS login") or answer=refuse ("This was
 * not me"). New string, or NULL when out of memory. */
char *nl_page_confirm(const struct nl_confirm *c);
/* s with & < > " ' escaped for HTML text and attribute values. New string, or NULL. */
char *nl_html_escape(const char *s);

#endif
