/* Honest skips under cmocka 1.1.5: its TAP output says "not ok N # SKIP name" for a skipped test,
 * which TAP (and automake's driver) counts as a failure. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "skip.h"

static char reason[256];

void skip_note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
}

/* libcmocka prints every line through print_message(); a program that links this file has its own
 * print_message, found before the library's, which writes a skip as TAP means it, "ok N - name #
 * SKIP reason" (later cmocka versions print "ok" themselves: the rewrite is the same). Every other
 * line goes on to the library's vprint_message unchanged. */
void print_message(const char *const format, ...)
{
	va_list ap;
	char line[1024], *end;
	unsigned long n;
	const char *p;

	va_start(ap, format);
	if (strstr(format, "# SKIP") == NULL) {
		vprint_message(format, ap);
		va_end(ap);
		return;
	}
	vsnprintf(line, sizeof(line), format, ap);
	va_end(ap);
	p = strncmp(line, "not ", 4) == 0 ? line + 4 : line;
	if (strncmp(p, "ok ", 3) != 0 || (n = strtoul(p + 3, &end, 10)) == 0 ||
	    strncmp(end, " # SKIP ", 8) != 0) {
		fputs(line, stdout);
	} else {
		end += 8;
		end[strcspn(end, "\n")] = '\0';
		printf("ok %lu - %s # SKIP %s\n", n, end, reason[0] != '\0' ? reason : "no reason given");
	}
	reason[0] = '\0';
	fflush(stdout);
}
