/* pam_nhslogin: the PAM entry points. The module is a dumb client of nhslogind: it starts a
 * flow, shows the URL, code and QR code, and long-polls until the daemon says how it ended.
 * PAM return codes are chosen here only, in pam_result(). */
#include "config.h"

#define PAM_SM_AUTH
#define PAM_SM_ACCOUNT
#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "module.h"
#include "nl_err.h"
#include "nl_reason.h"
#include "nl_time.h"
#include "nl_wipe.h"

#define CONNECT_TIMEOUT_MS 2000
#define START_TIMEOUT_MS   20000 /* the daemon may fetch discovery and JWKS first */
#define WAIT_SLICE_S       5     /* one long-poll; the daemon answers within ~1 s of the outcome */
#define COUNTDOWN_EVERY_S  60
/* The daemon ends the flow at its expiry (the module's timeout is part of the start request); the
 * module's own deadline is only a safety net this much later. */
#define EXPIRY_GRACE_MS 5000

/* How a sign-in ended, before it becomes a PAM code. */
enum outcome {
	OUT_UNAVAILABLE = 0, /* daemon down, misconfigured, provider unreachable: fall back */
	OUT_SUCCESS,
	OUT_DENIED,
	OUT_USER_UNKNOWN,
	OUT_NOT_APPLICABLE, /* no way to talk to the person and noninteractive=ignore */
	OUT_CANCELLED,      /* the person typed "c" at the prompt: stop asking on this connection */
};

static int pam_result(enum outcome o)
{
	switch (o) {
	case OUT_SUCCESS:
		return PAM_SUCCESS;
	case OUT_DENIED:
		return PAM_AUTH_ERR;
	case OUT_USER_UNKNOWN:
		return PAM_USER_UNKNOWN;
	case OUT_NOT_APPLICABLE:
		return PAM_IGNORE;
	case OUT_CANCELLED:
		/* sshd turns keyboard-interactive off for the connection on PAM_MAXTRIES instead of
		 * offering it again (which would show a fresh code at once); GDM returns to its greeter. */
		return PAM_MAXTRIES;
	case OUT_UNAVAILABLE:
		break;
	}
	return PAM_AUTHINFO_UNAVAIL;
}

struct signin {
	pam_handle_t *pamh;
	struct nl_pam_opts opts;
	struct nl_proto_client client;
	const char *user;
	char *device_code;  /* secret */
	char *text;         /* what the screen shows: URL, code, QR */
	int64_t expires_ms; /* when the daemon ends the flow (monotonic) */
	bool debug;
	bool number_match; /* the daemon will ask for the number the phone shows */
	bool want_number;  /* ...and it does now: the person has signed in at NHS login */
};

/* Debug lines (the debug argument): steps and outcomes, never a code, token or device_code. */
#define DBG(s, ...)                                                                                          \
	do {                                                                                                 \
		if ((s)->opts.cfg.pam_debug)                                                                 \
			pam_syslog((s)->pamh, LOG_DEBUG, __VA_ARGS__);                                       \
	} while (0)

static const char *item_str(pam_handle_t *pamh, int item)
{
	const void *v = NULL;
	if (pam_get_item(pamh, item, &v) != PAM_SUCCESS || v == NULL)
		return "";
	return v;
}

/* A flow the daemon ended without approval: the person reads the reason's terminal line, and the
 * reason says whether a stack may fall back (nl_reason.c holds both, for every reason word). */
static enum outcome denied(struct signin *s, const char *word)
{
	enum nl_reason reason;

	if (nl_reason_from_word(word, &reason)) {
		const struct nl_reason_row *row = nl_reason_row(reason);
		nl_conv_error(s->pamh, row->terminal);
		pam_syslog(s->pamh, LOG_NOTICE, "NHS login sign-in for %s failed: %s", s->user, row->word);
		return row->falls_back ? OUT_UNAVAILABLE : OUT_DENIED;
	}
	nl_conv_error(s->pamh, "NHS login: the sign-in did not succeed.");
	pam_syslog(s->pamh, LOG_NOTICE, "NHS login sign-in for %s failed: unknown reason", s->user);
	return OUT_DENIED;
}

static enum outcome unavailable(struct signin *s, const char *why)
{
	pam_syslog(s->pamh, LOG_ERR, "nhslogind: %s", why);
	nl_conv_error(s->pamh, "NHS login is not available on this computer right now. "
	                       "Use your break-glass login, or ask IT.");
	return OUT_UNAVAILABLE;
}

/* An approval counts only for the user this module was asked about. */
static enum outcome approved(struct signin *s, const json_t *reply)
{
	const char *who = json_string_value(json_object_get(reply, "user"));
	if (who == NULL || strcmp(who, s->user) != 0) {
		pam_syslog(s->pamh, LOG_ERR, "nhslogind approved another user than %s; refused", s->user);
		return OUT_DENIED;
	}
	pam_syslog(s->pamh, LOG_INFO, "NHS login sign-in for %s approved%s", s->user,
	           json_is_true(json_object_get(reply, "reused")) ? " (recent sign-in reused)" : "");
	nl_conv_info(s->pamh, "NHS login: signed in.");
	return OUT_SUCCESS;
}

static int call(struct signin *s, json_t *req, int timeout_ms, json_t **reply)
{
	int r = nl_proto_call(&s->client, req, timeout_ms, reply);
	json_decref(req);
	return r;
}

/* "5 minutes", "1 minute 50 seconds", "45 seconds": how long the code lasts, in words. */
static void duration(long secs, char *buf, size_t len)
{
	long m = secs / 60, sec = secs % 60;

	if (m == 0)
		snprintf(buf, len, "%ld second%s", sec, sec == 1 ? "" : "s");
	else if (sec == 0)
		snprintf(buf, len, "%ld minute%s", m, m == 1 ? "" : "s");
	else
		snprintf(buf, len, "%ld minute%s %ld second%s", m, m == 1 ? "" : "s", sec,
		         sec == 1 ? "" : "s");
}

/* The text on the screen: where to go and the code, each at the end of its own line so they are
 * easy to read and copy, the QR code of the complete URL (it carries the code), and how long the
 * code lasts. Short enough with a QR code to fit an 80x24 console. */
static int compose_text(struct signin *s, const json_t *reply, long expires_in)
{
	const char *uri = json_string_value(json_object_get(reply, "verification_uri"));
	const char *full = json_string_value(json_object_get(reply, "verification_uri_complete"));
	const char *code = json_string_value(json_object_get(reply, "user_code"));
	char *qr = NULL, *shown[2] = {NULL, NULL}, lasts[48];
	int n;

	if (uri == NULL || code == NULL)
		return NL_ERR_INVALID;
	/* What goes on the terminal as text is printable ASCII: a control character (C0, DEL) or any
	 * other byte (a UTF-8 C1 control such as CSI, a right-to-left override) becomes '?'. The daemon
	 * refuses such strings from a provider; this guards the terminal against any daemon. */
	if ((shown[0] = strdup(uri)) == NULL || (shown[1] = strdup(code)) == NULL) {
		free(shown[0]);
		return NL_ERR_NOMEM;
	}
	for (int i = 0; i < 2; i++)
		for (char *p = shown[i]; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
				*p = '?';
	if (!s->opts.cfg.pam_noqr && nl_qr_render(full != NULL ? full : uri, s->opts.qr_style, &qr) != 0)
		qr = NULL;
	duration(expires_in, lasts, sizeof(lasts));
	n = asprintf(&s->text,
	             "NHS login: on your phone, open %s\n"
	             "and enter the code  %s\n"
	             "%s%s"
	             "%s %s.",
	             shown[0], shown[1], qr != NULL ? "or scan this QR code with your phone's camera:\n" : "",
	             qr != NULL ? qr : "",
	             s->opts.cfg.pam_enter_prompt ? "The code expires in"
	                                          : "Waiting for you to sign in. The code expires in",
	             lasts);
	free(qr);
	free(shown[0]);
	free(shown[1]);
	if (n < 0) {
		s->text = NULL;
		return NL_ERR_NOMEM;
	}
	return 0;
}

static enum outcome start_flow(struct signin *s, json_t **reply)
{
	char why[256];
	json_t *req;
	const char *err;
	int r;

	/* timeout: the daemon makes the code last no longer than this module will wait, so that the
	 * lifetime shown, the countdown and the expiry it logs are the same. */
	req = json_pack("{s:s,s:s,s:s,s:s,s:s,s:i}", "op", nl_op_word(NL_OP_START), "user", s->user,
	                "service", item_str(s->pamh, PAM_SERVICE), "rhost", item_str(s->pamh, PAM_RHOST),
	                "tty", item_str(s->pamh, PAM_TTY), "timeout", (int)s->opts.cfg.pam_timeout);
	if (req == NULL)
		return unavailable(s, "out of memory");
	if ((r = call(s, req, START_TIMEOUT_MS, reply)) != 0) {
		snprintf(why, sizeof(why), "start: %s", nl_strerror(r));
		return unavailable(s, why);
	}
	if (json_is_true(json_object_get(*reply, "ok"))) {
		DBG(s, "start: flow %s status %s", json_string_value(json_object_get(*reply, "flow")) ?: "-",
		    json_string_value(json_object_get(*reply, "status")) ?: "-");
		return OUT_SUCCESS; /* the caller looks at status */
	}
	err = json_string_value(json_object_get(*reply, "error"));
	if (nl_proto_error(*reply) == NL_EWORD_LIMIT) {
		pam_syslog(s->pamh, LOG_WARNING, "nhslogind refused a new sign-in for %s: limit", s->user);
		nl_conv_error(s->pamh,
		              "NHS login: too many sign-ins are in progress. Please try again shortly, "
		              "or use your break-glass login.");
		/* A count limit is the daemon's capacity, not a verdict on the person: someone else
		 * holding sign-ins open from the same host must not shut the break-glass door too. */
		return OUT_UNAVAILABLE;
	}
	snprintf(why, sizeof(why), "start refused: %s: %s", err != NULL ? err : "?",
	         json_string_value(json_object_get(*reply, "message")) ?: "");
	return unavailable(s, why);
}

/* How the flow stands, from the reply to a wait or a number (r: how the call went; reply is
 * consumed). Returns OUT_SUCCESS with *pending set while the flow is still open (s->want_number
 * set once the daemon wants the phone's number). */
static enum outcome exchange(struct signin *s, int r, json_t *reply, bool *pending, long *left)
{
	const char *status, *err;
	enum nl_status st;
	enum outcome o;

	*pending = false;
	if (r == NL_ERR_NOMEM)
		return unavailable(s, "out of memory");
	if (r != 0) {
		char why[160];
		snprintf(why, sizeof(why),
		         "wait: %s (the connection to nhslogind was lost during the sign-in)",
		         nl_strerror(r));
		pam_syslog(s->pamh, LOG_ERR, "nhslogind: %s", why);
		nl_conv_error(s->pamh,
		              "NHS login stopped on this computer while you were signing in (it may be "
		              "restarting). Start the login again in a minute, or use your break-glass "
		              "login.");
		return OUT_UNAVAILABLE;
	}
	status = json_string_value(json_object_get(reply, "status"));
	err = json_string_value(json_object_get(reply, "error"));
	DBG(s, "wait: %s", status != NULL ? status : err != NULL ? err : "error");
	st = nl_proto_status(reply);
	if (nl_proto_error(reply) == NL_EWORD_NOT_FOUND && nl_mono_ms() >= s->expires_ms) {
		/* Past its expiry the daemon forgets an ended flow a minute later: it expired. */
		o = denied(s, "expired");
	} else if (st == NL_STATUS_NONE) {
		o = unavailable(s, "wait: the daemon answered with an error");
	} else if (st == NL_STATUS_PENDING || st == NL_STATUS_NUMBER) {
		json_int_t e = json_integer_value(json_object_get(reply, "expires_in"));
		*pending = true;
		*left = e > 0 ? (long)e : 0;
		s->want_number = st == NL_STATUS_NUMBER;
		o = OUT_SUCCESS;
	} else if (st == NL_STATUS_APPROVED) {
		o = approved(s, reply);
	} else {
		o = denied(s, json_string_value(json_object_get(reply, "reason")));
	}
	json_decref(reply);
	return o;
}

/* One long-poll. */
static enum outcome wait_once(struct signin *s, int slice, bool *pending, long *left)
{
	json_t *reply = NULL;
	int r = nl_proto_wait(&s->client, s->device_code, slice, &reply);

	return exchange(s, r, reply, pending, left);
}

/* The number typed at the terminal; the daemon answers with the outcome. */
static enum outcome send_number(struct signin *s, const char *typed)
{
	json_t *reply = NULL, *req = json_pack("{s:s,s:s,s:s}", "op", nl_op_word(NL_OP_NUMBER), "device_code",
	                                       s->device_code, "number", typed);
	int r = req != NULL ? call(s, req, 5000, &reply) : NL_ERR_NOMEM;
	bool pending = false;
	long left = 0;
	enum outcome o = exchange(s, r, reply, &pending, &left);

	return o == OUT_SUCCESS && pending ? unavailable(s, "number: the daemon did not decide") : o;
}

/* Digits only, 1..3 of them (what a two-digit number typed with a slip can be). */
static bool number_like(const char *a)
{
	size_t n = a != NULL ? strspn(a, "0123456789") : 0;
	return n > 0 && n <= 3 && a[n] == '\0';
}

/* Wait mode: the person has signed in on the phone; ask for the number it shows. */
static enum outcome ask_number(struct signin *s)
{
	char *answer = NULL;
	enum outcome o;

	if (nl_conv_prompt(s->pamh, "NHS login: you have signed in on your phone.",
	                   "Type the number shown on your phone: ", true, &answer) != 0)
		return unavailable(s, "the conversation failed while asking for the number");
	o = send_number(s, answer != NULL ? answer : "");
	nl_free_secret(answer);
	return o;
}

static void send_cancel(struct signin *s)
{
	json_t *reply = NULL,
	       *req = json_pack("{s:s,s:s}", "op", nl_op_word(NL_OP_CANCEL), "device_code", s->device_code);
	if (req != NULL && call(s, req, 2000, &reply) == 0)
		json_decref(reply);
}

/* The person gets a line every minute; the wait itself returns as soon as the flow ends. The
 * daemon ends it at its expiry; deadline_ms (a little later) only guards against a daemon that
 * does not. */
static enum outcome wait_loop(struct signin *s, int64_t deadline_ms)
{
	int64_t next_note = nl_mono_ms() + COUNTDOWN_EVERY_S * 1000;
	bool pending = true;
	long left = 0;
	enum outcome o;

	while (pending) {
		int64_t now = nl_mono_ms();
		if (now >= deadline_ms) {
			send_cancel(s);
			return denied(s, "expired");
		}
		int slice = (int)((deadline_ms - now + 999) / 1000);
		if (slice > WAIT_SLICE_S)
			slice = WAIT_SLICE_S;
		if ((o = wait_once(s, slice, &pending, &left)) != OUT_SUCCESS || !pending)
			return o;
		if (s->want_number)
			return ask_number(s);
		if (nl_mono_ms() >= next_note && left > 0) {
			char line[96];
			snprintf(line, sizeof(line), "Waiting for NHS login sign-in ... %ld:%02ld left",
			         left / 60, left % 60);
			nl_conv_info(s->pamh, line);
			next_note += COUNTDOWN_EVERY_S * 1000;
		}
	}
	return OUT_DENIED;
}

/* For conversations that show text only with a prompt (OpenSSH keyboard-interactive, GDM): the
 * person presses Enter once signed in; "c" cancels. However long they take, the daemon keeps the
 * flow (and an approval that came meanwhile) until its expiry, and says how it ended. */
/* The prompt's question: with number matching, the number replaces "press Enter". */
static const char *prompt_question(const struct signin *s)
{
	if (s->want_number)
		return "Type the number shown on your phone (c to cancel): ";
	return s->number_match
	           ? "When you have signed in, type the number shown on your phone (c to cancel): "
	           : "Press Enter when you have signed in on your phone (c to cancel): ";
}

/* For conversations that show text only with a prompt (OpenSSH keyboard-interactive, GDM): the
 * person presses Enter (or types the phone's number) once signed in; "c" cancels. However long
 * they take, the daemon keeps the flow (and an approval that came meanwhile) until its expiry, and
 * says how it ended. */
static enum outcome prompt_loop(struct signin *s, int64_t deadline_ms)
{
	const char *text = s->text;
	char again[160];
	bool pending = true;
	long left = 0;
	enum outcome o;

	for (int round = 0; round < 100; round++) {
		char *answer = NULL;
		if (nl_conv_prompt(s->pamh, text, prompt_question(s), true, &answer) != 0)
			return unavailable(s, "the conversation failed while waiting");
		if (answer != NULL && (answer[0] == 'c' || answer[0] == 'C')) {
			nl_free_secret(answer);
			send_cancel(s);
			denied(s, "cancelled");
			return OUT_CANCELLED;
		}
		/* A short wait: the approval usually arrived before Enter was pressed. */
		if ((o = wait_once(s, 2, &pending, &left)) != OUT_SUCCESS || !pending) {
			nl_free_secret(answer);
			return o;
		}
		if (s->want_number && number_like(answer)) {
			o = send_number(s, answer);
			nl_free_secret(answer);
			return o;
		}
		nl_free_secret(answer);
		if (nl_mono_ms() >= deadline_ms)
			break;
		if (s->want_number)
			snprintf(again, sizeof(again),
			         "NHS login: you have signed in on your phone (%ld:%02ld left).", left / 60,
			         left % 60);
		else
			snprintf(
			    again, sizeof(again),
			    "NHS login: not signed in yet (%ld:%02ld left). Finish signing in on your phone, "
			    "then %s.",
			    left / 60, left % 60,
			    s->number_match ? "type the number it shows" : "press Enter");
		text = again;
	}
	send_cancel(s);
	return denied(s, "expired");
}

static enum outcome run(struct signin *s)
{
	json_t *reply = NULL;
	enum nl_status status;
	enum outcome o;
	json_int_t expires_in;
	int64_t deadline;

	if ((o = start_flow(s, &reply)) != OUT_SUCCESS)
		goto out;
	status = nl_proto_status(reply);
	if (status == NL_STATUS_APPROVED) {
		o = approved(s, reply);
		goto out;
	}
	if (status == NL_STATUS_DENIED) { /* refused at once: [policy] */
		o = denied(s, json_string_value(json_object_get(reply, "reason")));
		goto out;
	}
	const char *dc = json_string_value(json_object_get(reply, "device_code"));
	s->number_match = json_is_true(json_object_get(reply, "number_matching"));
	expires_in = json_integer_value(json_object_get(reply, "expires_in"));
	if (s->opts.cfg.pam_timeout > 0 && (json_int_t)s->opts.cfg.pam_timeout < expires_in)
		expires_in = s->opts.cfg.pam_timeout;
	if (status != NL_STATUS_PENDING || dc == NULL || expires_in <= 0 ||
	    compose_text(s, reply, (long)expires_in) != 0) {
		o = unavailable(s, "start: the daemon's reply was incomplete");
		goto out;
	}
	if ((s->device_code = strdup(dc)) == NULL) {
		o = unavailable(s, "out of memory");
		goto out;
	}
	s->expires_ms = nl_mono_ms() + (int64_t)expires_in * 1000;
	deadline = s->expires_ms + EXPIRY_GRACE_MS;
	if (s->opts.cfg.pam_enter_prompt) {
		o = prompt_loop(s, deadline);
	} else if (nl_conv_info(s->pamh, s->text) != 0) {
		/* Nobody can see the code: give up at once, cancelling the flow by closing. */
		pam_syslog(s->pamh, LOG_NOTICE, "no conversation can show the NHS login code for %s",
		           s->user);
		o = s->opts.cfg.pam_noninteractive == NL_NONINTERACTIVE_DENY ? OUT_DENIED
		                                                             : OUT_NOT_APPLICABLE;
	} else {
		o = wait_loop(s, deadline);
	}
out:
	json_decref(reply);
	return o;
}

PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct signin *s;
	char err[512];
	enum outcome o = OUT_UNAVAILABLE;
	int r;

	(void)flags;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return PAM_BUF_ERR;
	s->pamh = pamh;
	s->client.fd = -1;
	if (nl_pam_opts_parse(argc, argv, &s->opts, err, sizeof(err)) != 0) {
		pam_syslog(pamh, LOG_ERR, "configuration: %s", err);
		nl_conv_error(pamh, "NHS login is not set up correctly on this computer. Please contact IT.");
		goto out;
	}
	if ((r = pam_get_user(pamh, &s->user, NULL)) != PAM_SUCCESS || s->user == NULL ||
	    s->user[0] == '\0') {
		o = OUT_USER_UNKNOWN;
		goto out;
	}
	if (s->opts.cfg.pam_strict && getpwnam(s->user) == NULL) {
		pam_syslog(pamh, LOG_NOTICE, "unknown user %s (strict)", s->user);
		o = OUT_USER_UNKNOWN;
		goto out;
	}
	if (!nl_conv_available(pamh)) {
		pam_syslog(pamh, LOG_NOTICE, "no conversation for %s: NHS login needs someone to read a code",
		           s->user);
		o = s->opts.cfg.pam_noninteractive == NL_NONINTERACTIVE_DENY ? OUT_DENIED
		                                                             : OUT_NOT_APPLICABLE;
		goto out;
	}
	DBG(s, "user %s, socket %s, timeout %u, qr %s, enter_prompt %s", s->user, s->opts.cfg.socket_path,
	    s->opts.cfg.pam_timeout, s->opts.cfg.pam_noqr ? "off" : "on",
	    s->opts.cfg.pam_enter_prompt ? "yes" : "no");
	r = nl_proto_open(&s->client, s->opts.cfg.socket_path, CONNECT_TIMEOUT_MS, NL_PROTO_PEER_DAEMON);
	if (r != 0) {
		if (r == NL_ERR_PERM)
			snprintf(
			    err, sizeof(err),
			    "%s is served by uid %ld, not root: refused (is the socket's directory writable "
			    "by others?)",
			    s->opts.cfg.socket_path, (long)s->client.peer);
		else
			snprintf(err, sizeof(err), "cannot connect to %s: %s", s->opts.cfg.socket_path,
			         nl_strerror(r));
		o = unavailable(s, err);
		goto out;
	}
	o = run(s);
out:
	nl_proto_close(&s->client); /* closing cancels a flow still in progress */
	nl_free_secret(s->device_code);
	free(s->text);
	nl_pam_opts_free(&s->opts);
	nl_wipe(s, sizeof(*s));
	free(s);
	return pam_result(o);
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh;
	(void)flags;
	(void)argc;
	(void)argv;
	/* No credentials of our own to establish: the session's are the account's. */
	return PAM_SUCCESS;
}

PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh;
	(void)flags;
	(void)argc;
	(void)argv;
	/* Account policy (expiry, access) stays with pam_unix/pam_access: not for this module. */
	return PAM_IGNORE;
}
