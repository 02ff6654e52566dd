/* Test world for the PAM tests: mock + daemon + config + phone, the module under pam_wrapper. */
#include "config.h"

#include "harness.h"
#include "ports.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpamtest.h>
#include <security/pam_appl.h>

#include "nl_err.h"
#include "nl_time.h"

/* A bound on a hung start, not a speed check: a start takes about 0.2 s here, but a loaded CI host
 * once went past 10 s (the first world of a program failed to start). */
#define DAEMON_READY_TIMEOUT_MS 30000

int test_write_data(const char *path, mode_t mode, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);

	if (fd < 0)
		return NL_ERR_IO;
	if (write(fd, data, len) != (ssize_t)len || fchmod(fd, mode) != 0) {
		close(fd);
		return NL_ERR_IO;
	}
	return close(fd) == 0 ? 0 : NL_ERR_IO;
}

int test_write_file(const char *path, mode_t mode, const char *text)
{
	return test_write_data(path, mode, text, strlen(text));
}

static const char *builddir(void)
{
	const char *top = getenv("NL_TOP_BUILDDIR");
	return top != NULL && top[0] != '\0' ? top : ".";
}

/* The last `max` bytes of the file at path, on stderr (the test's log): what a process that
 * failed to start said before it was killed, which its temp dir will not keep. */
static void print_tail(const char *path, long max)
{
	char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return;
	if (max > (long)sizeof(buf) - 1)
		max = (long)sizeof(buf) - 1;
	if (fseek(f, -max, SEEK_END) != 0)
		rewind(f);
	n = fread(buf, 1, (size_t)max, f);
	fclose(f);
	buf[n] = '\0';
	fprintf(stderr, "%s%s", buf, n > 0 && buf[n - 1] != '\n' ? "\n" : "");
}

int harness_spawn_daemon(const char *conf, const char *log, pid_t *pid)
{
	char path[PATH_MAX + 32], buf[512];
	int pipefd[2];
	pid_t parent = getpid();
	int64_t deadline;
	size_t len = 0;
	bool exited = false;

	*pid = -1;
	snprintf(path, sizeof(path), "%s/nhslogind", builddir());
	if (pipe2(pipefd, O_CLOEXEC) != 0)
		return NL_ERR_IO;
	*pid = fork();
	if (*pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return NL_ERR_IO;
	}
	if (*pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		dup2(pipefd[1], STDOUT_FILENO);
		int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (lfd >= 0)
			dup2(lfd, STDERR_FILENO);
		/* The daemon must not inherit pam_wrapper. */
		unsetenv("LD_PRELOAD");
		unsetenv("PAM_WRAPPER");
		execl(path, path, "--config", conf, "--foreground", (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	deadline = nl_mono_ms() + (int64_t)DAEMON_READY_TIMEOUT_MS * mockproc_timeout_scale();
	while (len < sizeof(buf) - 1) {
		int left = (int)(deadline - nl_mono_ms());
		struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
		if (left <= 0 || poll(&p, 1, left) <= 0)
			break;
		ssize_t n = read(pipefd[0], buf + len, sizeof(buf) - 1 - len);
		if (n <= 0) {
			exited = true; /* it closed stdout: it is stopping (some tests want that) */
			break;
		}
		len += (size_t)n;
		buf[len] = '\0';
		if (strchr(buf, '\n') != NULL) {
			close(pipefd[0]);
			return strstr(buf, "ready") != NULL ? 0 : NL_ERR_INVALID;
		}
	}
	close(pipefd[0]);
	if (exited)
		fprintf(stderr, "harness: nhslogind exited without saying ready; the end of %s:\n", log);
	else
		fprintf(stderr, "harness: nhslogind did not say ready within %d ms; the end of %s:\n",
		        DAEMON_READY_TIMEOUT_MS * mockproc_timeout_scale(), log);
	print_tail(log, 2048);
	kill(*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	*pid = -1;
	return exited ? NL_ERR_CLOSED : NL_ERR_TIMEOUT;
}

/* Start nhslogind and wait for its "ready" line on stdout. */
static int start_daemon(struct world *w)
{
	char log[PATH_MAX + 16];

	snprintf(log, sizeof(log), "%s/daemon.log", w->dir);
	return harness_spawn_daemon(w->conf, log, &w->daemon);
}

static int write_config(struct world *w, const struct world_opts *o, const char *keydir, int bport)
{
	char path[PATH_MAX + 64], *text = NULL, redirect[300];
	int r;

	if (o->redirect_uri != NULL)
		snprintf(redirect, sizeof(redirect), "%s", o->redirect_uri);
	else
		snprintf(redirect, sizeof(redirect), "http://127.0.0.1:%d/callback", bport);

	snprintf(path, sizeof(path), "%s/environments", w->dir);
	if (mkdir(path, 0755) != 0)
		return NL_ERR_IO;
	if (asprintf(&text,
	             "environment = local\nenvironments_dir = %s/environments\n"
	             "[daemon]\nsocket = %s\nstate_dir = %s/state\ncache_dir = %s/cache\n%s\n"
	             "[bridge]\nlisten = 127.0.0.1:%d\n%s\n"
	             "[identity]\nclaim = nhs_number\nmap_file = %s/nhslogin.map\nmin_level = P9\n%s\n%s\n",
	             w->dir, w->socket, w->dir, w->dir, o->daemon_extra ? o->daemon_extra : "", bport,
	             o->bridge_extra ? o->bridge_extra : "", w->dir,
	             o->identity_extra ? o->identity_extra : "", o->main_extra ? o->main_extra : "") < 0)
		return NL_ERR_NOMEM;
	r = test_write_file(w->conf, 0644, text);
	free(text);
	if (r != 0)
		return r;
	snprintf(path, sizeof(path), "%s/environments/local.conf", w->dir);
	if (asprintf(&text,
	             "issuer = %s\nclient_id = nhslogin-test\nclient_key = %s/client.key.pem\n"
	             "redirect_uri = %s\nscope = openid profile\nvtr = %s\n"
	             "allowed_algs = RS512\n%s\n",
	             o->issuer_override ? o->issuer_override : mockproc_issuer(w->mock), keydir, redirect,
	             o->vtr ? o->vtr : "[\"P9.Cp.Cd\",\"P9.Cp.Ck\",\"P9.Cm\"]",
	             o->env_extra ? o->env_extra : "") < 0)
		return NL_ERR_NOMEM;
	r = test_write_file(path, 0644, text);
	free(text);
	if (r != 0)
		return r;
	/* p9 and p5 are the mock's built-in P9 and P5 users. */
	snprintf(path, sizeof(path), "%s/nhslogin.map", w->dir);
	return test_write_file(path, 0644, "clinician 9686368973\nnurse 9686368906\n");
}

int world_start(const struct world_opts *o, struct world **out)
{
	static const struct world_opts none;
	struct world *w = calloc(1, sizeof(*w));
	char client[512], *pub = NULL, *key = NULL, mockdir[300], path_users[320];
	const char *args[16];
	cjose_jwk_t *jwk = NULL;
	size_t n = 0;
	int bport, r = NL_ERR_INTERNAL;
	int64_t t0 = nl_mono_ms(), t_mock = t0, t_daemon = t0;

	if (o == NULL)
		o = &none;
	if (w == NULL)
		return NL_ERR_NOMEM;
	w->daemon = -1;
	snprintf(w->dir, sizeof(w->dir), "/tmp/nl-pamtest.XXXXXX");
	if (mkdtemp(w->dir) == NULL || chmod(w->dir, 0755) != 0)
		goto out;
	snprintf(w->conf, sizeof(w->conf), "%s/nhslogin.conf", w->dir);
	if (strlen(w->dir) > 64)
		goto out;
	snprintf(w->socket, sizeof(w->socket), "%.64s/run/nhslogind.sock", w->dir);
	if ((r = mockproc_client_key(w->dir, "client", &jwk, &pub, &key)) != 0)
		goto out;
	if ((bport = test_free_port()) <= 0)
		goto out;
	snprintf(w->bridge, sizeof(w->bridge), "http://127.0.0.1:%d", bport);
	if (o->redirect_uri != NULL)
		snprintf(client, sizeof(client), "nhslogin-test:%s:%s", pub, o->redirect_uri);
	else
		snprintf(client, sizeof(client), "nhslogin-test:%s:%s/callback", pub, w->bridge);
	args[n++] = "--client";
	args[n++] = client;
	if (o->mock_users != NULL) {
		snprintf(mockdir, sizeof(mockdir), "%s/mock", w->dir);
		snprintf(path_users, sizeof(path_users), "%s/users.json", mockdir);
		r = NL_ERR_IO;
		if (mkdir(mockdir, 0755) != 0 || test_write_file(path_users, 0644, o->mock_users) != 0)
			goto out;
		args[n++] = "--state-dir";
		args[n++] = mockdir;
	}
	for (size_t i = 0; i < 8 && o->mock_args[i] != NULL; i++)
		args[n++] = o->mock_args[i];
	args[n] = NULL;
	t_mock = nl_mono_ms();
	if ((r = mockproc_start(args, &w->mock)) != 0) {
		fprintf(stderr, "harness: nhslogin-mock did not start: %s after %lld ms\n", nl_strerror(r),
		        (long long)(nl_mono_ms() - t_mock));
		goto out;
	}
	if ((r = write_config(w, o, w->dir, bport)) != 0)
		goto out;
	t_daemon = nl_mono_ms();
	if ((r = start_daemon(w)) != 0)
		goto out;
	if (nl_mono_ms() - t0 > 5000) /* slow, not failed: said so a failure elsewhere can be read */
		fprintf(stderr,
		        "harness: a world took %lld ms to start (key %lld, mock %lld, nhslogind %lld)\n",
		        (long long)(nl_mono_ms() - t0), (long long)(t_mock - t0),
		        (long long)(t_daemon - t_mock), (long long)(nl_mono_ms() - t_daemon));
	*out = w;
	w = NULL;
out:
	if (jwk != NULL)
		cjose_jwk_release(jwk);
	free(pub);
	free(key);
	if (w != NULL)
		world_stop(w);
	return r;
}

void harness_stop_pid(pid_t *pid, int sig)
{
	int st;

	if (*pid <= 0)
		return;
	kill(*pid, sig);
	if (!mockproc_wait_pid(*pid, 5000, &st)) {
		kill(*pid, SIGKILL);
		waitpid(*pid, NULL, 0);
	}
	*pid = -1;
}

void world_kill_daemon(struct world *w, int sig)
{
	if (w != NULL)
		harness_stop_pid(&w->daemon, sig);
}

int world_restart_daemon(struct world *w)
{
	return start_daemon(w);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void world_stop(struct world *w)
{
	if (w == NULL)
		return;
	world_kill_daemon(w, SIGTERM);
	if (w->mock != NULL)
		mockproc_stop(w->mock);
	if (w->dir[0] != '\0' && getenv("NL_KEEP_TEST_DIR") == NULL)
		nftw(w->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(w);
}

/* Every service in this program's service directory (tests/services) names the config
 * PAM_WRAPPER_SERVICE_DIR/nhslogin.conf: a copy of w's. */
int world_activate(struct world *w)
{
	const char *dir = getenv("PAM_WRAPPER_SERVICE_DIR");
	char path[PATH_MAX + 32], buf[8192];
	ssize_t n;
	int fd;

	if (dir == NULL)
		return NL_ERR_CONFIG;
	if ((fd = open(w->conf, O_RDONLY | O_CLOEXEC)) < 0)
		return NL_ERR_IO;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return NL_ERR_IO;
	buf[n] = '\0';
	snprintf(path, sizeof(path), "%s/nhslogin.conf", dir);
	/* A new file, ours: one another user's run left here is not ours, and the module would refuse it. */
	unlink(path);
	return test_write_file(path, 0644, buf);
}

int html_hidden(const char *html, const char *name, char *out, size_t outlen)
{
	char pat[64];
	const char *p, *q;
	snprintf(pat, sizeof(pat), "name=\"%s\" value=\"", name);
	if ((p = strstr(html, pat)) == NULL)
		return NL_ERR_NOT_FOUND;
	p += strlen(pat);
	if ((q = strchr(p, '"')) == NULL || (size_t)(q - p) >= outlen)
		return NL_ERR_INVALID;
	memcpy(out, p, (size_t)(q - p));
	out[q - p] = '\0';
	return 0;
}

/* One request of the phone. A failure says which hop, what happened and after how long, on
 * stderr (the test's log), so that a failing run tells where the sign-in stopped. The query is not
 * printed: it holds the code or NHS login's state. */
static int phone_fetch(const char *hop, const char *method, const char *url, const char *ctype,
                       const char *body, struct mockproc_resp *resp)
{
	int64_t t0 = nl_mono_ms();
	int r = mockproc_fetch(method, url, ctype, body, NULL, resp);

	if (r != 0)
		fprintf(stderr, "# phone: %s: %s %.*s failed after %lld ms: %s\n", hop, method,
		        (int)strcspn(url, "?"), url, (long long)(nl_mono_ms() - t0), nl_strerror(r));
	return r;
}

int phone_confirm(const struct world *w, const char *typed, const char *answer, char **page,
                  struct mockproc_resp *out)
{
	struct mockproc_resp p = {0};
	char url[256], body[512], flow[64], token[64];
	int r;

	memset(out, 0, sizeof(*out));
	if (page != NULL)
		*page = NULL;
	snprintf(url, sizeof(url), "%s/d", w->bridge);
	snprintf(body, sizeof(body), "code=%s", typed);
	if ((r = phone_fetch("the code page", "POST", url, "application/x-www-form-urlencoded", body, &p)) !=
	    0)
		return r;
	r = NL_ERR_HTTP;
	if (p.status != 200 || html_hidden(p.body, "flow", flow, sizeof(flow)) != 0 ||
	    html_hidden(p.body, "token", token, sizeof(token)) != 0)
		goto out;
	snprintf(url, sizeof(url), "%s/d/confirm", w->bridge);
	snprintf(body, sizeof(body), "flow=%s&token=%s&answer=%s", flow, token, answer);
	if ((r = phone_fetch("the confirmation", "POST", url, "application/x-www-form-urlencoded", body,
	                     out)) != 0)
		goto out;
	if (page != NULL) {
		*page = p.body;
		p.body = NULL;
	}
out:
	mockproc_resp_free(&p);
	return r;
}

/* Hops 1-3 of the phone: the bridge's /d and its confirmation page, the mock's /authorize and
 * (unless it redirected at once) its user page. *back gets the callback URL (new string). */
static int phone_hops(const struct world *w, const char *user_code, const char *as_user, bool decline,
                      char **back_out)
{
	struct mockproc_resp a = {0}, b = {0}, c = {0};
	char url[256], body[4200], req[4096];
	const char *back;
	int r = NL_ERR_HTTP;

	/* 1. The verification page with the code typed in lower case and without the dash. */
	char typed[16];
	size_t t = 0;
	for (const char *p = user_code; *p != '\0' && t < sizeof(typed) - 1; p++)
		if (*p != '-')
			typed[t++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	typed[t] = '\0';
	if (phone_confirm(w, typed, "continue", NULL, &a) != 0 || a.status / 100 != 3 || a.location == NULL)
		goto out;
	/* 2. NHS login's /authorize shows the user picker. */
	if (phone_fetch("NHS login's authorize", "GET", a.location, NULL, NULL, &b) != 0)
		goto out;
	back = b.location;
	if (b.status == 200) {
		/* 3. Pick the user (or decline) on the mock's page. */
		if (html_hidden(b.body, "req", req, sizeof(req)) != 0)
			goto out;
		char *enc = NULL;
		CURL *cu = curl_easy_init();
		if (cu != NULL)
			enc = curl_easy_escape(cu, req, 0);
		snprintf(body, sizeof(body), "req=%s&%s", enc ? enc : "", decline ? "decline=1" : "user=");
		if (!decline)
			strncat(body, as_user, sizeof(body) - strlen(body) - 1);
		curl_free(enc);
		curl_easy_cleanup(cu);
		char *base = strdup(mockproc_issuer(w->mock));
		snprintf(url, sizeof(url), "%s/authorize/decision", base);
		free(base);
		if (phone_fetch("NHS login's user page", "POST", url, "application/x-www-form-urlencoded",
		                body, &c) != 0)
			goto out;
		back = c.location;
		/* 3b. A person below the requested level meets NHS login's identity check (step-up);
		 * the mock's page can only stop, which returns to the service as access_denied. */
		if (c.status == 200 && strstr(c.body, "name=\"stepup_stop\"") != NULL &&
		    html_hidden(c.body, "req", req, sizeof(req)) == 0) {
			CURL *cs = curl_easy_init();
			char *e2 = cs != NULL ? curl_easy_escape(cs, req, 0) : NULL;
			snprintf(body, sizeof(body), "req=%s&stepup_stop=1", e2 ? e2 : "");
			curl_free(e2);
			curl_easy_cleanup(cs);
			mockproc_resp_free(&c);
			if (phone_fetch("NHS login's identity check", "POST", url,
			                "application/x-www-form-urlencoded", body, &c) != 0)
				goto out;
			back = c.location;
		}
	}
	if (back == NULL)
		goto out;
	if ((*back_out = strdup(back)) == NULL) {
		r = NL_ERR_NOMEM;
		goto out;
	}
	r = 0;
out:
	mockproc_resp_free(&a);
	mockproc_resp_free(&b);
	mockproc_resp_free(&c);
	return r;
}

int phone_to_callback(const struct world *w, const char *user_code, const char *as_user, char **callback_url)
{
	return phone_hops(w, user_code, as_user, false, callback_url);
}

/* The phone's whole sign-in; *number gets the number the last page asks the person to type at
 * the computer (number matching), or 0. */
static int phone_signin_number(const struct world *w, const char *user_code, const char *as_user,
                               bool decline, long *final_status, unsigned *number)
{
	static const char ask[] = "type this number at the computer: ";
	struct mockproc_resp d = {0};
	char *back = NULL;
	const char *p;
	int r;

	*number = 0;
	if ((r = phone_hops(w, user_code, as_user, decline, &back)) != 0)
		return r;
	/* 4. Back to the bridge's callback, which finishes the flow. */
	r = NL_ERR_HTTP;
	if ((r = phone_fetch("the callback", "GET", back, NULL, NULL, &d)) == 0) {
		*final_status = d.status;
		if (d.body != NULL && (p = strstr(d.body, ask)) != NULL)
			*number = (unsigned)strtoul(p + sizeof(ask) - 1, NULL, 10);
		r = 0;
	}
	free(back);
	mockproc_resp_free(&d);
	return r;
}

int phone_signin(const struct world *w, const char *user_code, const char *as_user, bool decline,
                 long *final_status)
{
	unsigned number;
	return phone_signin_number(w, user_code, as_user, decline, final_status, &number);
}

struct phone_job {
	struct world *w;
	struct pam_run *run;
	pthread_t thread;
	bool started;
};

static void *phone_thread(void *arg)
{
	struct phone_job *j = arg;
	if (j->run->phone_after_ms > 0)
		usleep((useconds_t)j->run->phone_after_ms * 1000);
	if (j->run->phone != NULL)
		j->run->phone_rc = j->run->phone(j->w, j->run);
	else
		j->run->phone_rc =
		    phone_signin_number(j->w, j->run->user_code, j->run->as_user, j->run->decline,
		                        &j->run->phone_status, &j->run->phone_number);
	return NULL;
}

struct conv_ctx {
	struct phone_job job;
};

static void note_code(struct conv_ctx *ctx, const char *msg)
{
	const char *p = strstr(msg, "enter the code  ");
	struct pam_run *run = ctx->job.run;
	if (p == NULL || run->user_code[0] != '\0')
		return;
	p += strlen("enter the code  ");
	snprintf(run->user_code, sizeof(run->user_code), "%.9s", p);
	run->shown_ms = nl_mono_ms();
	if (run->as_user != NULL || run->decline || run->phone != NULL) {
		if (pthread_create(&ctx->job.thread, NULL, phone_thread, &ctx->job) == 0)
			ctx->job.started = true;
	}
}

static int test_conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	struct conv_ctx *ctx = data;
	struct pam_run *run = ctx->job.run;
	struct pam_response *r = calloc((size_t)n, sizeof(*r));

	if (r == NULL)
		return PAM_BUF_ERR;
	if (run->mute) {
		free(r);
		return PAM_CONV_ERR;
	}
	for (int i = 0; i < n; i++) {
		switch (msg[i]->msg_style) {
		case PAM_TEXT_INFO:
			if (run->n_info < 16)
				snprintf(run->infos[run->n_info++], sizeof(run->infos[0]), "%s", msg[i]->msg);
			note_code(ctx, msg[i]->msg);
			break;
		case PAM_ERROR_MSG:
			if (run->n_error < 8)
				snprintf(run->errors[run->n_error++], sizeof(run->errors[0]), "%s",
				         msg[i]->msg);
			break;
		default:
			/* A prompt (enter_prompt mode): answer at the person's time, or once the phone is
			 * done. */
			if (run->prompts < run->n_answer_at) {
				int k = run->prompts++;
				int64_t at = run->shown_ms + run->answer_at_ms[k], now = nl_mono_ms();
				if (run->shown_ms > 0 && at > now)
					usleep((useconds_t)(at - now) * 1000);
				r[i].resp = strdup(run->answers[k] != NULL ? run->answers[k] : "");
				break;
			}
			run->prompts++;
			if (ctx->job.started) {
				pthread_join(ctx->job.thread, NULL);
				ctx->job.started = false;
			}
			if (run->phone_number > 0 && strstr(msg[i]->msg, "number") != NULL) {
				/* number matching: the person types what the phone's page shows */
				char typed[16];
				snprintf(typed, sizeof(typed), "%u", run->phone_number + run->number_offset);
				r[i].resp = strdup(typed);
				break;
			}
			r[i].resp = strdup("");
			break;
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}

bool pam_run_saw_info(const struct pam_run *run, const char *needle)
{
	for (int i = 0; i < run->n_info; i++)
		if (strstr(run->infos[i], needle) != NULL)
			return true;
	return false;
}

bool pam_run_saw_error(const struct pam_run *run, const char *needle)
{
	for (int i = 0; i < run->n_error; i++)
		if (strstr(run->errors[i], needle) != NULL)
			return true;
	return false;
}

int pam_run_auth(struct world *w, struct pam_run *run)
{
	struct conv_ctx ctx = {.job = {.w = w, .run = run}};
	struct pam_testcase tests[] = {pam_test(PAMTEST_AUTHENTICATE, PAM_SUCCESS)};
	enum pamtest_err perr;

	/* libpamtest's run_pamtest_conv macro has a misplaced parenthesis; call what it means. */
	perr = _pamtest_conv(run->service, run->user, test_conv, &ctx, tests, 1, NULL);
	if (ctx.job.started)
		pthread_join(ctx.job.thread, NULL);
	if (perr != PAMTEST_ERR_OK && perr != PAMTEST_ERR_CASE)
		return -1000 - (int)perr;
	return tests[0].op_rv;
}

/* pam_wrapper is in place before main() (make check: AM_TESTS_ENVIRONMENT, tests/services); the
 * daemon and the mock this program starts must not inherit it. */
void harness_under_pam_wrapper(void)
{
	if (dlsym(RTLD_DEFAULT, "pam_wrapper_enabled") == NULL || getenv("PAM_WRAPPER_SERVICE_DIR") == NULL) {
		printf("Bail out! pam_wrapper is not loaded: run this test with make check TESTS=...\n");
		exit(99);
	}
	unsetenv("LD_PRELOAD");
}

#if defined(NL_TEST_ASAN)
/* Sanitizer builds only (gcc or clang): pam_wrapper loads its copy of libpam with RTLD_DEEPBIND,
 * which the AddressSanitizer runtime refuses (AM_TESTS_ENVIRONMENT also asks pam_wrapper not to).
 * The test program's own dlopen() comes first in symbol lookup (before the libasan library, and
 * before the weak interceptor clang links in), so it drops that one flag and hands the call on. */
void *dlopen(const char *file, int mode)
{
	static void *(*next)(const char *, int);
	if (next == NULL)
		*(void **)&next = dlsym(RTLD_NEXT, "dlopen");
	return next != NULL ? next(file, mode & ~RTLD_DEEPBIND) : NULL;
}
#endif

int world_wait_kept(const struct world *w, const char *user)
{
	char path[PATH_MAX + 64];
	struct stat st;

	snprintf(path, sizeof(path), "%s/state/%s", w->dir, user);
	for (int i = 0; i < 500 && stat(path, &st) != 0; i++)
		usleep(10 * 1000);
	return stat(path, &st) == 0 ? 0 : NL_ERR_TIMEOUT;
}
