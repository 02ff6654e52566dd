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
/* s with & < > " ' escaped for HTML text and attribute values. New string, or NULL. */
char *nl_html_escape(const char *s);

#endif
