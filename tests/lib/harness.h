/* Test world for the PAM tests: a real nhslogin-mock, a real nhslogind with a generated config
 * and client key, the PAM services of tests/services under pam_wrapper, and a "phone" that walks
 * the bridge pages and the mock's sign-in over HTTP. Everything on loopback, in a temp dir,
 * stopped at the end. */
#ifndef NL_TEST_HARNESS_H
#define NL_TEST_HARNESS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "mockproc.h"

/* NL_TEST_ASAN: built with AddressSanitizer (gcc says so with __SANITIZE_ADDRESS__, clang with
 * __has_feature). */
#if defined(__SANITIZE_ADDRESS__)
#define NL_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NL_TEST_ASAN 1
#endif
#endif

struct world_opts {
	const char *mock_args[8];    /* extra nhslogin-mock arguments, NULL-terminated */
	const char *daemon_extra;    /* lines added to [daemon] */
	const char *identity_extra;  /* lines added to [identity] */
	const char *env_extra;       /* lines added to the environment file */
	const char *vtr;             /* default ["P9.Cp.Cd","P9.Cp.Ck","P9.Cm"] */
	const char *issuer_override; /* point the daemon at another issuer (e.g. a dead port) */
	const char *mock_users;      /* the mock's users.json (its --state-dir) instead of p9, p5, p0 */
	const char *redirect_uri;    /* registered and configured instead of BRIDGE/callback (a proxy's) */
	const char *bridge_extra;    /* lines added to [bridge] */
	const char *main_extra;      /* text added at the end of the main file (whole [sections]) */
};

struct world {
	char dir[256];
	char conf[PATH_MAX];
	char socket[108]; /* sun_path */
	char bridge[128]; /* http://127.0.0.1:PORT */
	struct mockproc *mock;
	pid_t daemon;
};

/* Start the mock and nhslogind (waits for the daemon's ready line, 10 s at most). */
int world_start(const struct world_opts *o, struct world **out);
/* Stop both and remove the temp dir. NULL is fine. */
void world_stop(struct world *w);
/* Write a file of the test's own (created or truncated, never through a symlink) with exactly mode:
 * 0 or NL_ERR_IO. */
int test_write_data(const char *path, mode_t mode, const void *data, size_t len);
int test_write_file(const char *path, mode_t mode, const char *text);
/* Start nhslogind --config conf --foreground (stderr appended to log; pam_wrapper not inherited;
 * killed if the test dies) and wait for its "ready" line (10 s at most, scaled). 0 with *pid, or
 * NL_ERR_TIMEOUT / NL_ERR_INVALID (the daemon was killed, *pid is -1). */
int harness_spawn_daemon(const char *conf, const char *log, pid_t *pid);
/* Send *pid sig and reap it (SIGKILL after 5 s); *pid becomes -1. Nothing if *pid <= 0. */
void harness_stop_pid(pid_t *pid, int sig);
/* Kill the daemon with sig and reap it. */
void world_kill_daemon(struct world *w, int sig);
/* Start the daemon again on the same config (after world_kill_daemon). */
int world_restart_daemon(struct world *w);
/* Make w the world the PAM services use (they all read one config path). The services are
 * tests/services/NAME.in: nl-login (defaults), nl-login2 (timeout=2), nl-short, nl-long, nl-prompt3,
 * nl-sshd, nl-sshd110, nl-nodaemon, nl-badarg, nl-nonint, nl-nonint-deny, nl-glass, nl-glass2 and
 * nl-items (pam_wrapper's pam_set_items first); each file says what it is for. */
int world_activate(struct world *w);

/* The phone: open /d, enter user_code, follow to the mock's /authorize, pick `as_user` on its
 * page (or decline), and follow the redirect back to the bridge callback. Returns 0 when every
 * hop answered as expected; *final_status gets the callback page's HTTP status. */
int phone_signin(const struct world *w, const char *user_code, const char *as_user, bool decline,
                 long *final_status);
/* The phone at the bridge: type `typed` (a code as a person might type it) into /d, and on the
 * confirmation page press answer ("continue": "Continue to NHS login"; "refuse": "This was not
 * me"), keeping the cookie the page set. *out gets the bridge's answer to the press (a 302 to NHS
 * login's /authorize for a continue that worked); *page, unless page is NULL, the confirmation
 * page (new string). 0 when both answered and the page was a confirmation page. */
/* value="..." of the hidden input `name` in an HTML page, into out (outlen bytes). */
int html_hidden(const char *html, const char *name, char *out, size_t outlen);
/* The approval reaches the waiter as the token cache writes the sign-in down: wait (5 s at most)
 * until user's sign-in is kept, so that the next start sees it. 0, or NL_ERR_TIMEOUT. */
int world_wait_kept(const struct world *w, const char *user);

int phone_confirm(const struct world *w, const char *typed, const char *answer, char **page,
                  struct mockproc_resp *out);
/* The phone's first hops only: open /d, enter user_code, sign in at the mock as `as_user`, and stop
 * before the bridge callback. *callback_url gets the URL NHS login sent the phone back to (new
 * string, free; it holds a code and a state). 0 when every hop answered as expected. */
int phone_to_callback(const struct world *w, const char *user_code, const char *as_user, char **callback_url);

/* Run PAM: libpamtest with a conversation that records every message and, when the code is
 * shown, runs the phone (as_user; NULL = no phone) in a thread. Returns pam_authenticate's code. */
struct pam_run {
	const char *service;
	const char *user;
	const char *as_user; /* phone signs in as this mock user; NULL: nobody answers */
	bool decline;
	bool mute;            /* the conversation cannot show text (fails every message) */
	char infos[16][4096]; /* PAM_TEXT_INFO messages seen (first 16) */
	int n_info;
	char errors[8][512];
	int n_error;
	char user_code[16]; /* the code shown, if any */
	int prompts;        /* PAM_PROMPT_* messages answered */
	/* A person's pace: the phone starts signing in phone_after_ms after the code is first shown;
	 * prompt k (k < n_answer_at) is answered with answers[k] ("" = Enter; NULL = Enter)
	 * answer_at_ms[k] after the code was first shown, without waiting for the phone. */
	int phone_after_ms;
	int answer_at_ms[4];
	const char *answers[4];
	int n_answer_at;
	int64_t shown_ms; /* when the code was first shown (nl_mono_ms), 0 if never */
	long phone_status;
	int phone_rc;
	/* Number matching: the number the phone's last page showed (0: none); a prompt that asks for
	 * it is answered with it plus number_offset (a wrong number when not 0). */
	unsigned phone_number;
	int number_offset;
	/* If set, the phone thread runs this instead of phone_signin (tests that misbehave as the
	 * phone); it sets run->phone_status and returns what becomes run->phone_rc. */
	int (*phone)(struct world *w, struct pam_run *run);
};
int pam_run_auth(struct world *w, struct pam_run *run);
/* Did the run show a text message (PAM_TEXT_INFO) / an error message containing needle? */
bool pam_run_saw_info(const struct pam_run *run, const char *needle);
bool pam_run_saw_error(const struct pam_run *run, const char *needle);

/* Call first in main(): check that pam_wrapper is loaded (make check loads it for the programs in
 * tests/services/services.am), and keep it from the programs this one starts. */
void harness_under_pam_wrapper(void);

#endif
