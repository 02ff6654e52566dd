/* The verdict table, made from NL_REASONS (nl_reason.h), and the lookups on it. */
#include "config.h"
#include "nl_reason.h"

#include <stdio.h>
#include <string.h>

static const struct nl_reason_row rows[NL_REASON_COUNT] = {
#define NL_REASON_ROW(name, word, falls_back, prio, status, terminal, admin, flow, title, text)              \
	[NL_REASON_##name] = {word,  falls_back, prio,  status, terminal,                                    \
	                      admin, flow,       title, text,   NL_REASON_##name == NL_REASON_NONE},
    NL_REASONS(NL_REASON_ROW)
#undef NL_REASON_ROW
};

const struct nl_reason_row *nl_reason_row(enum nl_reason r)
{
	if ((unsigned)r >= NL_REASON_COUNT)
		r = NL_REASON_DENIED;
	return &rows[r];
}

const char *nl_reason_word(enum nl_reason r)
{
	return nl_reason_row(r)->word;
}

bool nl_reason_from_word(const char *word, enum nl_reason *out)
{
	if (word == NULL)
		return false;
	for (unsigned i = NL_REASON_NONE + 1; i < NL_REASON_COUNT; i++) {
		if (strcmp(word, rows[i].word) == 0) {
			*out = (enum nl_reason)i;
			return true;
		}
	}
	return false;
}

/* No printf with a format from the table (-Wformat-nonliteral): the one "%s" is spliced by hand. */
void nl_reason_flow_message(enum nl_reason r, const char *user, char *out, size_t outlen)
{
	const char *text = nl_reason_row(r)->flow;
	const char *at = strstr(text, "%s");

	if (outlen == 0)
		return;
	if (at == NULL)
		snprintf(out, outlen, "%s", text);
	else
		snprintf(out, outlen, "%.*s%s%s", (int)(at - text), text, user != NULL ? user : "", at + 2);
}
