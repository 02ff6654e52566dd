/* The bridge's HTML pages: one layout with inline CSS (the Content-Security-Policy allows nothing
 * else), large tap targets, labels, and high-contrast colours; everything echoed is escaped. */
#include "config.h"
#include "pages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nl_wipe.h"

/* NHS blue (#005eb8) on white is 6.6:1; body text #212b32 on #f0f4f5 is 13:1. */
static const char page_css[] =
    "*{box-sizing:border-box}"
    "body{margin:0;background:#f0f4f5;color:#212b32;font-family:system-ui,-apple-system,"
    "'Segoe UI',Arial,sans-serif;font-size:1.1875rem;line-height:1.5}"
    "header{background:#005eb8;color:#fff;padding:1rem}"
    "header p{margin:0;font-weight:700;font-size:1.25rem}"
    "main{max-width:32rem;margin:0 auto;padding:1rem}"
    "h1{font-size:1.75rem;line-height:1.25;margin:1rem 0}"
    "label{display:block;font-weight:700;margin:1rem 0 .5rem}"
    "input[type=text]{width:100%;min-height:3.25rem;font-size:1.5rem;padding:.5rem;"
    "letter-spacing:.15em;text-transform:uppercase;border:2px solid #4c6272;border-radius:0;"
    "font-family:ui-monospace,Menlo,Consolas,monospace}"
    "input[type=text]:focus{outline:4px solid #ffeb3b;outline-offset:0;border-color:#212b32}"
    "button,.button{display:block;width:100%;min-height:3.25rem;margin:1.5rem 0;padding:.75rem;"
    "font-size:1.1875rem;font-weight:700;color:#fff;background:#007f3b;border:0;"
    "border-radius:4px;text-align:center;text-decoration:none;box-shadow:0 4px 0 #00401e}"
    "button:focus,.button:focus{outline:4px solid #ffeb3b;outline-offset:0}"
    ".alert{border-left:8px solid #d5281b;background:#fff;padding:1rem;margin:1rem 0}"
    ".done{border-left:8px solid #007f3b;background:#fff;padding:1rem;margin:1rem 0}"
    ".hint{color:#4c6272}";

char *nl_html_escape(const char *s)
{
	size_t n = 0, i, o = 0;
	char *out;

	if (s == NULL)
		s = "";
	for (i = 0; s[i] != '\0'; i++) {
		switch (s[i]) {
		case '&':
			n += 5;
			break;
		case '<':
		case '>':
			n += 4;
			break;
		case '"':
		case '\'':
			n += 6;
			break;
		default:
			n += 1;
		}
	}
	if ((out = malloc(n + 1)) == NULL)
		return NULL;
	for (i = 0; s[i] != '\0'; i++) {
		const char *rep = NULL;
		switch (s[i]) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&#39;";
			break;
		default:
			out[o++] = s[i];
			continue;
		}
		memcpy(out + o, rep, strlen(rep));
		o += strlen(rep);
	}
	out[o] = '\0';
	return out;
}

/* The layout around an already-escaped body. New string or NULL. */
static char *layout(const char *title_esc, const char *body_html)
{
	char *page = NULL;

	if (asprintf(&page,
	             "<!DOCTYPE html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"utf-8\">\n"
	             "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	             "<meta name=\"referrer\" content=\"no-referrer\">\n"
	             "<title>%s - NHS login</title>\n<style>%s</style>\n</head>\n<body>\n"
	             "<header><p>NHS login for your "
	             "workstation</p></header>\n<main>\n%s</main>\n</body>\n</html>\n",
	             title_esc, page_css, body_html) < 0)
		return NULL;
	return page;
}

char *nl_page_form(const char *prefill, const char *problem)
{
	char *pre = NULL, *prob = NULL, *body = NULL, *alert = NULL, *page = NULL;

	if ((pre = nl_html_escape(prefill)) == NULL ||
	    (problem != NULL && (prob = nl_html_escape(problem)) == NULL))
		goto out;
	if (prob != NULL &&
	    asprintf(&alert, "<div class=\"alert\" role=\"alert\"><p>%s</p></div>\n", prob) < 0) {
		alert = NULL;
		goto out;
	}
	if (asprintf(
	        &body,
	        "<h1>Sign in at your workstation</h1>\n%s"
	        "<form method=\"post\" action=\"/d\">\n"
	        "<label for=\"code\">Enter the code shown on your workstation screen</label>\n"
	        "<p class=\"hint\" id=\"code-hint\">It has 8 letters and numbers, for example "
	        "KPWD-RHXT.</p>\n"
	        "<input type=\"text\" id=\"code\" name=\"code\" value=\"%s\" maxlength=\"20\" "
	        "autocomplete=\"off\" autocapitalize=\"characters\" autocorrect=\"off\" spellcheck=\"false\" "
	        "aria-describedby=\"code-hint\" required autofocus>\n"
	        "<button type=\"submit\">Continue to NHS login</button>\n</form>\n",
	        alert != NULL ? alert : "", pre) < 0) {
		body = NULL;
		goto out;
	}
	page = layout("Enter your code", body);
out:
	nl_free_secret(pre); /* a typed code is a (weak) secret */
	free(prob);
	free(alert);
	nl_free_secret(body);
	return page;
}

char *nl_page_message(const char *title, const char *text, bool ok, bool again)
{
	char *t = NULL, *x = NULL, *body = NULL, *page = NULL;

	if ((t = nl_html_escape(title)) == NULL || (x = nl_html_escape(text)) == NULL)
		goto out;
	if (asprintf(&body, "<h1>%s</h1>\n<div class=\"%s\"%s><p>%s</p></div>\n%s", t, ok ? "done" : "alert",
	             ok ? "" : " role=\"alert\"", x,
	             again ? "<a class=\"button\" href=\"/d\">Enter a code</a>\n" : "") < 0) {
		body = NULL;
		goto out;
	}
	page = layout(t, body);
out:
	free(t);
	free(x);
	free(body);
	return page;
}
