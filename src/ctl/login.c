/* nhsloginctl login USER: a test sign-in from the terminal through the daemon's socket, as the PAM
 * module does it: start, show the address, code and QR code, long-poll with a countdown, print the
 * outcome. Ctrl-C ends the process, and closing the socket cancels the flow in the daemon. */
#include "config.h"
#include "ctl.h"
#include "nl_text.h"
#include "nl_qr.h"
#include "nl_err.h"
#include "nl_json.h"
#include "nl_reason.h"
#include "nl_time.h"
#include "nl_wipe.h"

#include <langinfo.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WAIT_STEP_S   1 /* one wait a second keeps the countdown moving */
#define GRACE_MS      10000
#define MAX_EXPIRES_S 3600

static void on_interrupt(int sig)
{
	static const char msg[] = "\nSign-in cancelled.\n";
	ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);

	(void)sig;
	(void)n;
	_exit(CTL_EXIT_PROBLEM); /* the socket closes with us: nhslogind cancels the flow */
}

static void catch_interrupts(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_interrupt;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* Draw the QR code unless --qr none; true when one was drawn. */
static bool show_qr(const struct ctl_opts *o, const char *text)
{
	enum nl_qr_style style = NL_QR_ASCII;
	const char *cs = nl_langinfo(CODESET);
	char *qr = NULL;

	if (o->qr != NULL && strcmp(o->qr, "none") == 0)
		return false;
	if ((o->qr != NULL && strcmp(o->qr, "utf8") == 0) ||
	    (o->qr == NULL && cs != NULL && strcmp(cs, "UTF-8") == 0))
		style = NL_QR_UTF8;
	if (nl_qr_render(text, style, &qr) != 0)
		return false;
	printf("\n%s", qr);
	free(qr);
	return true;
}

static void show_code(const struct ctl_opts *o, const char *user, const json_t *m)
{
	const char *uri = nl_json_str(m, "verification_uri"), *code = nl_json_str(m, "user_code");
	const char *full = nl_json_str(m, "verification_uri_complete");

	if (o->json) {
		ctl_print_json(stdout, m);
		return;
	}
	printf("Test sign-in for %s through nhslogind.\n\n", user);
	printf("On your phone, open  %s\n", uri);
	printf("and enter the code   %s\n", code);
	if (nl_text_printable(full) && show_qr(o, full))
		printf("(or scan the QR code above)\n");
	printf("\n");
	fflush(stdout);
}

static void countdown(const struct ctl_opts *o, long long left, bool *shown)
{
	if (o->json)
		return;
	if (isatty(STDOUT_FILENO)) {
		printf("\rWaiting for sign-in ... %lld:%02lld left (Ctrl-C cancels) ", left / 60, left % 60);
	} else if (!*shown) {
		printf("Waiting for sign-in (%lld:%02lld left) ...\n", left / 60, left % 60);
	}
	*shown = true;
	fflush(stdout);
}

/* What the admin can do about a denial (nl_reason.c's table); "" for an unknown word. */
static const char *hint(const char *reason)
{
	enum nl_reason r;

	return nl_reason_from_word(reason, &r) ? nl_reason_row(r)->admin : "";
}

/* Print a final reply and give the exit code it means. */
static int outcome(const struct ctl_opts *o, const char *user, const json_t *m)
{
	const char *reason = nl_json_str(m, "reason"), *msg = nl_json_str(m, "message");
	bool approved = nl_proto_status(m) == NL_STATUS_APPROVED;

	if (o->json) {
		ctl_print_json(stdout, m);
		return approved ? CTL_EXIT_OK : CTL_EXIT_PROBLEM;
	}
	if (isatty(STDOUT_FILENO))
		putchar('\n');
	if (approved) {
		printf("Signed in: NHS login approved the sign-in for %s%s.\n", user,
		       json_is_true(json_object_get(m, "reused")) ? " (a recent sign-in was reused)" : "");
		return CTL_EXIT_OK;
	}
	if (!json_is_true(json_object_get(m, "ok")))
		reason = nl_json_str(m, "error");
	printf("Not signed in (%s): %s\n", reason != NULL ? reason : "error",
	       msg != NULL ? msg : "no reason given");
	if (hint(reason)[0] != '\0')
		printf("%s\n", hint(reason));
	return CTL_EXIT_PROBLEM;
}

/* Long-poll until the flow ends (or its expiry plus a grace period passes). */
static int wait_loop(const struct ctl_opts *o, struct nl_proto_client *c, const char *user,
                     const char *device_code, long long expires_in)
{
	int64_t deadline = nl_mono_ms() + expires_in * 1000 + GRACE_MS;
	json_t *m = NULL;
	bool shown = false;
	int r, rc = CTL_EXIT_USAGE;

	countdown(o, expires_in, &shown);
	while (nl_mono_ms() < deadline) {
		if ((r = nl_proto_wait(c, device_code, WAIT_STEP_S, &m)) == NL_ERR_NOMEM) {
			fprintf(stderr, "nhsloginctl: cannot build the wait request\n");
			goto out;
		}
		if (r != 0) {
			fprintf(stderr, "\nnhsloginctl: nhslogind went away: %s\n", nl_strerror(r));
			rc = CTL_EXIT_UNREACHABLE;
			goto out;
		}
		if (nl_proto_status(m) != NL_STATUS_PENDING) {
			rc = outcome(o, user, m);
			goto out;
		}
		countdown(o, nl_json_int(m, "expires_in", &expires_in) == 0 ? expires_in : 0, &shown);
		json_decref(m);
		m = NULL;
	}
	fprintf(stderr, "\nnhsloginctl: no outcome from nhslogind before the code expired\n");
	rc = CTL_EXIT_PROBLEM;
out:
	json_decref(m);
	return rc;
}

/* Start the flow; on a pending reply the device code (a secret) is copied out for the waits. */
static int start(const struct ctl_opts *o, struct nl_proto_client *c, const char *user, char **device_code,
                 long long *expires_in)
{
	const char *tty = isatty(STDIN_FILENO) ? ttyname(STDIN_FILENO) : NULL;
	json_t *req = json_pack("{ssssssss*}", "op", nl_op_word(NL_OP_START), "user", user, "service",
	                        "nhsloginctl", "tty", tty);
	json_t *m = NULL;
	const char *dc;
	int r, rc = CTL_EXIT_PROBLEM;

	*device_code = NULL;
	if (req == NULL) {
		fprintf(stderr, "nhsloginctl: cannot build the start request\n");
		return CTL_EXIT_USAGE;
	}
	if ((r = nl_proto_call(c, req, CTL_CALL_TIMEOUT_MS, &m)) != 0) {
		fprintf(stderr, "nhsloginctl: nhslogind did not answer: %s\n", nl_strerror(r));
		rc = CTL_EXIT_UNREACHABLE;
		goto out;
	}
	if (nl_proto_status(m) != NL_STATUS_PENDING) {
		rc = outcome(o, user, m);
		goto out;
	}
	dc = nl_json_str(m, "device_code");
	if (dc == NULL || !nl_text_printable(nl_json_str(m, "user_code")) ||
	    !nl_text_printable(nl_json_str(m, "verification_uri")) ||
	    nl_json_int(m, "expires_in", expires_in) != 0 || *expires_in < 1 || *expires_in > MAX_EXPIRES_S) {
		fprintf(stderr, "nhsloginctl: nhslogind's start reply is incomplete\n");
		rc = CTL_EXIT_USAGE;
		goto out;
	}
	if ((*device_code = strdup(dc)) == NULL) {
		rc = CTL_EXIT_USAGE;
		goto out;
	}
	show_code(o, user, m);
	rc = -1; /* pending: go on waiting */
out:
	json_decref(m);
	json_decref(req);
	return rc;
}

int ctl_login(const struct ctl_opts *o, const char *user)
{
	struct nl_proto_client c = {.fd = -1};
	char *device_code = NULL;
	long long expires_in = 0;
	int rc = CTL_EXIT_USAGE;

	if (user == NULL || user[0] == '\0' || strlen(user) > 64) {
		fprintf(stderr, "nhsloginctl: login needs a local user name (1..64 bytes)\n");
		goto out;
	}
	if ((rc = ctl_connect(o, &c)) != CTL_EXIT_OK)
		goto out;
	catch_interrupts();
	if ((rc = start(o, &c, user, &device_code, &expires_in)) >= 0)
		goto out;
	rc = wait_loop(o, &c, user, device_code, expires_in);
out:
	nl_free_secret(device_code);
	nl_proto_close(&c);
	return rc;
}
