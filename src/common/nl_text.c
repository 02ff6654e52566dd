/* Text from outside on its way to a log line, a terminal or a page. */
#include "config.h"
#include "nl_text.h"

#include <string.h>

void nl_text_mask_controls(char *s)
{
	for (; *s != '\0'; s++)
		if (nl_text_is_control((unsigned char)*s))
			*s = '?';
}

bool nl_text_printable(const char *s)
{
	if (s == NULL || s[0] == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (nl_text_is_control((unsigned char)*s))
			return false;
	return true;
}

void nl_text_ascii_copy(const char *src, char *dst, size_t len)
{
	size_t i;

	if (len == 0)
		return;
	for (i = 0; src[i] != '\0' && i + 1 < len; i++)
		dst[i] = (unsigned char)src[i] < 0x20 || (unsigned char)src[i] >= 0x7f ? '?' : src[i];
	dst[i] = '\0';
}

bool nl_words_has(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; p != NULL && *p != '\0';) {
		size_t len = strcspn(p, " ");

		if (len == n && strncmp(p, word, n) == 0)
			return true;
		p += len;
		p += strspn(p, " ");
	}
	return false;
}
