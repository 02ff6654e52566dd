/* The bridge's HTML pages: one layout with inline CSS (the Content-Security-Policy allows nothing
 * else) following the NHS digital service manual where it fits: NHS blue header, error summary,
 * labelled field with hint, green button, 44 px tap targets, visible focus; everything echoed is
 * escaped. */
#include "config.h"
#include "pages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nl_wipe.h"

/* Contrast (WCAG): #212b32 on #f0f4f5 13:1; #4c6272 on #f0f4f5 5.7:1; white on NHS blue #005eb8
 * 6.4:1; white on NHS green #007f3b 5.1:1; #d5281b on white 5.1:1 and on #f0f4f5 4.6:1. Focus is
 * the NHS yellow #ffeb3b with a dark edge. Every control is at least 44 px tall. */
static const char page_css[] =
    "*,*::before,*::after{box-sizing:border-box}"
    "html{-webkit-text-size-adjust:100%;text-size-adjust:100%}"
    "body{margin:0;background:#f0f4f5;color:#212b32;font-family:Frutiger,'Frutiger Linotype',Univers,"
    "Calibri,'Gill Sans','Gill Sans MT','Helvetica Neue',Helvetica,Arial,sans-serif;"
    "font-size:1.1875rem;line-height:1.5}"
    ".skip{position:absolute;left:-9999px;top:0}"
    ".skip:focus{left:0;padding:.75rem 1rem;background:#ffeb3b;color:#212b32;z-index:1}"
    "header{background:#005eb8;color:#fff;padding:.75rem 1rem}"
    ".hd{max-width:40rem;margin:0 auto;display:flex;align-items:center;gap:.75rem}"
    ".logo{background:#fff;color:#005eb8;font-weight:700;font-style:italic;font-size:1.375rem;"
    "line-height:1;padding:.3rem .45rem .2rem .35rem}"
    ".service{font-weight:700;font-size:1.1875rem;line-height:1.3}"
    "main{display:block;max-width:40rem;margin:0 auto;padding:1.5rem 1rem 3rem}"
    "h1{font-size:2rem;line-height:1.2;font-weight:700;margin:0 0 1rem}"
    "h2{font-size:1.375rem;line-height:1.3;font-weight:700;margin:1.5rem 0 .75rem}"
    "p{margin:0 0 1rem}"
    "label{display:block}"
    ".hint{color:#4c6272;margin:0 0 1rem}"
    ".nowrap{white-space:nowrap}"
    ".visually-hidden{position:absolute;width:1px;height:1px;margin:0;padding:0;overflow:hidden;"
    "clip:rect(0 0 0 0);clip-path:inset(50%);border:0;white-space:nowrap}"
    ".group{margin:0 0 1.5rem}"
    ".group-error{border-left:4px solid #d5281b;padding-left:1rem}"
    ".error-message{color:#d5281b;font-weight:700;margin:0 0 1rem}"
    ".input{display:block;width:100%;max-width:12em;min-height:3rem;margin:0;padding:.25rem .5rem;"
    "font-size:1.5rem;letter-spacing:.12em;text-transform:uppercase;color:#212b32;background:#fff;"
    "border:2px solid #4c6272;border-radius:0;-webkit-appearance:none;appearance:none;"
    "font-family:ui-monospace,'SF Mono',Menlo,Consolas,'Liberation Mono',monospace}"
    ".input-error{border-color:#d5281b}"
    ".input:focus{outline:4px solid #ffeb3b;outline-offset:0;border-color:#212b32;"
    "box-shadow:inset 0 0 0 2px #212b32}"
    ".error-summary{border:4px solid #d5281b;background:#fff;padding:1rem;margin:0 0 1.5rem}"
    ".error-summary h2{margin-top:0}"
    ".error-summary ul{margin:0;padding:0;list-style:none}"
    "a{color:#005eb8}"
    "a:visited{color:#330072}"
    ".error-summary a,.error-summary a:visited{color:#d5281b;font-weight:700}"
    "button,.button,.button:visited{display:block;width:100%;min-height:3rem;margin:0 0 1.75rem;"
    "padding:.625rem 1rem;font:inherit;font-weight:700;line-height:1.5;color:#fff;background:#007f3b;"
    "border:2px solid transparent;border-radius:4px;box-shadow:0 4px 0 #00401e;text-align:center;"
    "text-decoration:none;cursor:pointer;-webkit-appearance:none;appearance:none}"
    "button.secondary{background:#4c6272;box-shadow:0 4px 0 #263139}"
    "button:hover,.button:hover{background:#00662f}"
    "button.secondary:hover{background:#384853}"
    "button:active,.button:active{background:#00401e;box-shadow:none;transform:translateY(4px)}"
    "a:focus,.error-summary a:focus{outline:4px solid transparent;background:#ffeb3b;color:#212b32;"
    "box-shadow:0 -2px #ffeb3b,0 4px #212b32;text-decoration:none}"
    "button:focus,button:focus:hover,.button:focus,.button:focus:hover{outline:4px solid "
    "transparent;background:#ffeb3b;color:#212b32;"
    "box-shadow:0 4px 0 #212b32}"
    "details{margin:0 0 1.5rem}"
    "summary{display:inline-block;min-height:2.75rem;padding:.5rem 0;color:#005eb8;cursor:pointer;"
    "text-decoration:underline}"
    "summary:focus{outline:4px solid transparent;background:#ffeb3b;color:#212b32;"
    "box-shadow:0 -2px #ffeb3b,0 4px #212b32;text-decoration:none}"
    ".details-text{border-left:4px solid #d8dde0;padding:.5rem 0 .5rem 1rem}"
    ".card{background:#fff;border-left:8px solid #d5281b;padding:1rem 1rem .25rem;margin:0 0 1.5rem}"
    ".card-ok{background:#007f3b;color:#fff;border-left:0;padding:1.25rem 1rem .5rem}"
    ".card h1{margin-bottom:.75rem}"
    ".summary{background:#fff;margin:0 0 1.5rem;padding:0 1rem}"
    ".summary div{border-bottom:1px solid #d8dde0;padding:.75rem 0}"
    ".summary div:last-child{border-bottom:0}"
    ".summary dt{font-weight:700;margin:0 0 .25rem}"
    ".summary dd{margin:0;overflow-wrap:anywhere}"
    ".summary .hint{margin:.25rem 0 0}"
    ".usercode{font-family:ui-monospace,'SF Mono',Menlo,Consolas,'Liberation Mono',monospace;"
    "font-size:1.5rem;font-weight:700;letter-spacing:.12em}"
    ".callout{background:#fff9c4;border:1px solid #ffeb3b;padding:1rem 1rem .25rem;margin:0 0 1.5rem}"
    ".callout h2{margin-top:0}"
    "@media (min-width:40.0625em){button,.button,.button:visited{display:inline-block;width:auto}"
    "h1{font-size:3rem}}";

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

/* The layout around an already-escaped title and body; error prefixes the title as the service
 * manual asks, so that a screen reader hears it first. New string or NULL. */
static char *layout(const char *title_esc, bool error, const char *body_html)
{
	char *page = NULL;

	if (asprintf(
	        &page,
	        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	        "<meta name=\"referrer\" content=\"no-referrer\">\n"
	        "<meta name=\"color-scheme\" content=\"light\">\n"
	        "<title>%s%s - Workstation sign-in - NHS login</title>\n<style>%s</style>\n"
	        "</head>\n<body>\n"
	        "<a class=\"skip\" href=\"#main\">Skip to main content</a>\n"
	        "<header><div class=\"hd\"><span class=\"logo\" role=\"img\" aria-label=\"NHS\">NHS</span>"
	        "<span class=\"service\">Workstation sign-in</span></div></header>\n"
	        "<main id=\"main\">\n%s</main>\n</body>\n</html>\n",
	        error ? "Error: " : "", title_esc, page_css, body_html) < 0)
		return NULL;
	return page;
}

/* The error summary (top of the page, linking to the field) and the message beside the field. */
static int form_problem(const char *prob, char **summary, char **beside)
{
	*summary = *beside = NULL;
	if (prob == NULL)
		return 0;
	if (asprintf(summary,
	             "<div class=\"error-summary\" role=\"alert\" aria-labelledby=\"error-summary-title\" "
	             "tabindex=\"-1\">\n<h2 id=\"error-summary-title\">There is a problem</h2>\n"
	             "<ul>\n<li><a href=\"#code\">%s</a></li>\n</ul>\n</div>\n",
	             prob) < 0) {
		*summary = NULL;
		return -1;
	}
	if (asprintf(beside,
	             "<p class=\"error-message\" id=\"code-error\"><span class=\"visually-hidden\">Error: "
	             "</span>%s</p>\n",
	             prob) < 0) {
		*beside = NULL;
		free(*summary);
		*summary = NULL;
		return -1;
	}
	return 0;
}

char *nl_page_form(const char *prefill, const char *problem)
{
	char *pre = NULL, *prob = NULL, *body = NULL, *summary = NULL, *beside = NULL, *page = NULL;
	bool err = problem != NULL;

	if ((pre = nl_html_escape(prefill)) == NULL || (err && (prob = nl_html_escape(problem)) == NULL) ||
	    form_problem(prob, &summary, &beside) != 0)
		goto out;
	/* The label is the heading (one question a page). The code's alphabet has letters and
	 * digits, so the keyboard is a text one with capitals; the daemon ignores case, spaces
	 * and the dash. No HTML validation (novalidate): the server's message is clearer. */
	if (asprintf(&body,
	             "%s<form method=\"post\" action=\"/d\" novalidate>\n"
	             "<div class=\"group%s\">\n"
	             "<h1><label for=\"code\">Enter the code shown on your workstation</label></h1>\n"
	             "<p class=\"hint\" id=\"code-hint\">It has 8 letters and numbers, like <span "
	             "class=\"nowrap\">KPWD-RHXT</span>. "
	             "Small letters are fine, and you can leave out the dash.</p>\n"
	             "%s"
	             "<input class=\"input%s\" type=\"text\" id=\"code\" name=\"code\" value=\"%s\" "
	             "maxlength=\"20\" inputmode=\"text\" autocomplete=\"one-time-code\" "
	             "autocapitalize=\"characters\" autocorrect=\"off\" spellcheck=\"false\" "
	             "aria-describedby=\"code-hint%s\"%s>\n"
	             "</div>\n"
	             "<button type=\"submit\">Continue to NHS login</button>\n</form>\n"
	             "<details>\n<summary>Where to find the code</summary>\n"
	             "<div class=\"details-text\"><p>The code is on the screen of the computer you are "
	             "signing in to, after the words &ldquo;enter the code&rdquo;. If a QR code is shown "
	             "there, you can scan it with your phone's camera instead of typing.</p>\n<p>Each code "
	             "works for a few minutes. If it has gone, start "
	             "signing in again at the computer to get a new one.</p></div>\n</details>\n",
	             summary != NULL ? summary : "", err ? " group-error" : "", beside != NULL ? beside : "",
	             err ? " input-error" : "", pre, err ? " code-error" : "",
	             err ? " aria-invalid=\"true\"" : "") < 0) {
		body = NULL;
		goto out;
	}
	page = layout("Enter the code shown on your workstation", err, body);
out:
	nl_free_secret(pre); /* a typed code is a (weak) secret */
	free(prob);
	free(summary);
	free(beside);
	nl_free_secret(body);
	return page;
}

char *nl_page_message(const char *title, const char *text, bool ok, bool again)
{
	char *t = NULL, *x = NULL, *body = NULL, *page = NULL;
	const char *happened = NULL, *next = NULL;
	char *dot;

	if ((t = nl_html_escape(title)) == NULL || (x = nl_html_escape(text)) == NULL)
		goto out;
	/* what happened (the first sentence), then what to do next; on a failure page whose heading
	 * already says what happened, a single sentence is the next step */
	happened = x;
	if ((dot = strstr(x, ". ")) != NULL && dot[2] != '\0') {
		dot[1] = '\0';
		next = dot + 2;
	} else if (!ok) {
		happened = NULL;
		next = x;
	}
	if (asprintf(&body, "<div class=\"card%s\">\n<h1>%s</h1>\n%s%s%s</div>\n%s%s%s%s",
	             ok ? " card-ok" : "", t, happened != NULL ? "<p>" : "", happened != NULL ? happened : "",
	             happened != NULL ? "</p>\n" : "", next != NULL ? "<h2>What to do next</h2>\n<p>" : "",
	             next != NULL ? next : "", next != NULL ? "</p>\n" : "",
	             again ? "<p><a class=\"button\" href=\"/d\">Enter a code</a></p>\n" : "") < 0) {
		body = NULL;
		goto out;
	}
	page = layout(t, false, body);
out:
	free(t);
	free(x);
	free(body);
	return page;
}

/* One row of the summary list: an escaped term and an escaped value with an optional hint. */
static int summary_row(FILE *f, const char *term, const char *value_esc, const char *value_class,
                       const char *hint_esc)
{
	return fprintf(f, "<div><dt>%s</dt><dd>%s%s%s%s%s%s</dd></div>\n", term,
	               value_class != NULL ? "<span class=\"" : "", value_class != NULL ? value_class : "",
	               value_class != NULL ? "\">" : "", value_esc, value_class != NULL ? "</span>" : "",
	               hint_esc != NULL ? hint_esc : "") < 0
	           ? -1
	           : 0;
}

/* The body of the confirmation page into f; e holds the escaped texts in nl_page_confirm's order. */
static int confirm_body(FILE *f, char *const e[8], bool caller_supplied)
{
	char *hint = NULL;
	int r = -1;

	if (asprintf(&hint, "<p class=\"hint\">PAM service: %s%s</p>", e[3],
	             caller_supplied ? ". A program running as this account reported how it is being "
	                               "accessed: the computer did not check it."
	                             : "") < 0) {
		hint = NULL;
		goto out;
	}
	if (fprintf(f, "<h1>Check this sign-in before you continue</h1>\n"
	               "<p>A sign-in to a computer is waiting for NHS login. This is what that computer "
	               "says about it.</p>\n<dl class=\"summary\">\n") < 0 ||
	    summary_row(f, "Account", e[0], NULL, NULL) != 0 ||
	    summary_row(f, "Computer", e[1], NULL, NULL) != 0 ||
	    summary_row(f, "Access", e[2], NULL, hint) != 0 ||
	    summary_row(f, "Started", e[4], NULL, NULL) != 0 ||
	    summary_row(f, "Code", e[5], "usercode",
	                "<p class=\"hint\">Check it is the code on the computer's "
	                "screen.</p>") != 0)
		goto out;
	if (fprintf(
	        f,
	        "</dl>\n<div class=\"callout\">\n<h2><span class=\"visually-hidden\">Important: </span>"
	        "Stop if this is not you</h2>\n<p>Only continue if you are at this computer now and you "
	        "started this sign-in. If someone sent you this link or code, stop.</p>\n</div>\n"
	        "<form method=\"post\" action=\"/d/confirm\">\n"
	        "<input type=\"hidden\" name=\"flow\" value=\"%s\">\n"
	        "<input type=\"hidden\" name=\"token\" value=\"%s\">\n"
	        "<button type=\"submit\" name=\"answer\" value=\"continue\">Continue to NHS login</button>\n"
	        "<button type=\"submit\" class=\"secondary\" name=\"answer\" value=\"refuse\">This was not "
	        "me</button>\n</form>\n",
	        e[6], e[7]) < 0)
		goto out;
	r = 0;
out:
	free(hint);
	return r;
}

char *nl_page_confirm(const struct nl_confirm *c)
{
	const char *in[8] = {c->account, c->computer, c->access,  c->service,
	                     c->started, c->code,     c->flow_id, c->token};
	char *e[8] = {NULL}, *body = NULL, *page = NULL;
	size_t len = 0;
	FILE *f = NULL;
	int i;

	for (i = 0; i < 8; i++)
		if ((e[i] = nl_html_escape(in[i])) == NULL)
			goto out;
	if ((f = open_memstream(&body, &len)) == NULL)
		goto out;
	if (confirm_body(f, e, c->caller_supplied) != 0) {
		fclose(f);
		f = NULL;
		goto out;
	}
	if (fclose(f) != 0) {
		f = NULL;
		goto out;
	}
	f = NULL;
	page = layout("Check this sign-in before you continue", false, body);
out:
	for (i = 0; i < 8; i++)
		nl_free_secret(e[i]); /* the code and the token are secrets */
	if (body != NULL)
		nl_free_secret_buf(body, len + 1);
	return page;
}
