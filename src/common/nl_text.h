/* Text from outside (a provider, a phone, a configuration file, the daemon) on its way to a log
 * line, a terminal or a page: the one definition of a control character, and the small helpers
 * built on it. */
#ifndef NL_TEXT_H
#define NL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* A C0 control character or DEL: what a terminal or a log line must never receive raw. */
static inline bool nl_text_is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* Replace every control character of s with '?', in place. */
void nl_text_mask_controls(char *s);
/* s is non-empty and holds no control character (UTF-8 is fine). */
bool nl_text_printable(const char *s);
/* src into dst (len bytes, always terminated, cut if long) as printable ASCII: anything else,
 * controls and non-ASCII bytes alike, becomes '?'. */
void nl_text_ascii_copy(const char *src, char *dst, size_t len);
/* Is word one of the space-separated words of list (a scope, for one)? */
bool nl_words_has(const char *list, const char *word);

#endif
