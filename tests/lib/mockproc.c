/* Test helper: nhslogin-mock as a child process (start, read the issuer line with a deadline, stop
 * with SIGTERM then SIGKILL), plain libcurl exchanges that keep redirects, and client keys. */
#include "config.h"

#include "mockproc.h"
#include "harness.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nl_err.h"
#include "nl_jose.h"
#include "nl_json.h"
#include "nl_time.h"

#define MAX_ARGS 64
#define MAX_BODY (4 * 1024 * 1024)

int mockproc_timeout_scale(void)
{
	const char *e = getenv("NL_TEST_TIMEOUT_SCALE");
	int k = e != NULL ? atoi(e) : 1;
	return k < 1 ? 1 : k > 50 ? 50 : k;
}

struct mockproc {
	pid_t pid;
	char issuer[256];
};

static char *mock_path(void)
{
	const char *top = getenv("NL_TOP_BUILDDIR");
	char *p = NULL;

	if (asprintf(&p, "%s/nhslogin-mock", top != NULL && top[0] != '\0' ? top : ".") < 0)
		return NULL;
	return p;
}

/* fork+exec with stdout to out_fd (or /dev/null if -1). */
static pid_t spawn(const char *const *args, bool add_listen, int out_fd)
{
	const char *argv[MAX_ARGS + 4];
	char *path = mock_path();
	size_t n = 0;
	pid_t parent = getpid(), pid;

	if (path == NULL)
		return -1;
	argv[n++] = path;
	if (add_listen) {
		argv[n++] = "--listen";
		argv[n++] = "127.0.0.1:0";
	}
	for (size_t i = 0; args != NULL && args[i] != NULL && n < MAX_ARGS; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	pid = fork();
	if (pid == 0) {
		int devnull;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if (out_fd < 0 && (devnull = open("/dev/null", O_WRONLY)) >= 0)
			out_fd = devnull;
		if (out_fd >= 0 && out_fd != STDOUT_FILENO)
			dup2(out_fd, STDOUT_FILENO);
		execv(path, (char *const *)argv);
		fprintf(stderr, "mockproc: cannot run %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	free(path);
	return pid;
}

bool mockproc_wait_pid(pid_t pid, int timeout_ms, int *st)
{
	int64_t deadline = nl_mono_ms() + timeout_ms;

	for (;;) {
		pid_t w = waitpid(pid, st, WNOHANG);
		if (w == pid || (w < 0 && errno != EINTR))
			return w == pid;
		if (nl_mono_ms() >= deadline)
			return false;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

static void kill_and_reap(pid_t pid)
{
	int st;
	kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
}

/* Read one line from fd before the deadline. 0, NL_ERR_TIMEOUT or NL_ERR_CLOSED. */
static int read_line(int fd, char *buf, size_t size, int timeout_ms)
{
	int64_t deadline = nl_mono_ms() + timeout_ms;
	size_t len = 0;

	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int64_t left = deadline - nl_mono_ms();
		ssize_t n;
		if (left <= 0)
			return NL_ERR_TIMEOUT;
		if (poll(&p, 1, (int)left) < 0) {
			if (errno == EINTR)
				continue;
			return NL_ERR_IO;
		}
		if (p.revents == 0)
			continue;
		n = read(fd, buf + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return NL_ERR_CLOSED;
		len += (size_t)n;
		buf[len] = '\0';
		char *nl = strchr(buf, '\n');
		if (nl != NULL) {
			*nl = '\0';
			return 0;
		}
		if (len >= size - 1)
			return NL_ERR_TOO_BIG;
	}
}

int mockproc_start(const char *const *args, struct mockproc **out)
{
	struct mockproc *mp = calloc(1, sizeof(*mp));
	int fds[2] = {-1, -1}, r = NL_ERR_INTERNAL, st;

	*out = NULL;
	if (mp == NULL)
		return NL_ERR_NOMEM;
	if (pipe2(fds, O_CLOEXEC) != 0) {
		r = NL_ERR_IO;
		goto out;
	}
	mp->pid = spawn(args, true, fds[1]);
	close(fds[1]);
	fds[1] = -1;
	if (mp->pid < 0) {
		r = NL_ERR_IO;
		goto out;
	}
	r = read_line(fds[0], mp->issuer, sizeof(mp->issuer),
	              MOCKPROC_START_TIMEOUT_MS * mockproc_timeout_scale());
	if (r == 0 && strncmp(mp->issuer, "http://", 7) != 0)
		r = NL_ERR_INVALID;
	if (r != 0) {
		if (!mockproc_wait_pid(mp->pid, 100, &st))
			kill_and_reap(mp->pid);
		if (r == NL_ERR_TOO_BIG || r == NL_ERR_IO)
			r = NL_ERR_INVALID;
		goto out;
	}
	*out = mp;
	mp = NULL;
out:
	if (fds[0] >= 0)
		close(fds[0]);
	free(mp);
	return r;
}

const char *mockproc_issuer(const struct mockproc *mp)
{
	return mp->issuer;
}

pid_t mockproc_pid(const struct mockproc *mp)
{
	return mp->pid;
}

int mockproc_stop(struct mockproc *mp)
{
	int st = 0, ret = -1;

	if (mp == NULL)
		return -1;
	kill(mp->pid, SIGTERM);
	if (mockproc_wait_pid(mp->pid, MOCKPROC_STOP_TIMEOUT_MS, &st))
		ret = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	else
		kill_and_reap(mp->pid);
	free(mp);
	return ret;
}

int mockproc_run(const char *const *args, int timeout_ms, int *exit_status)
{
	pid_t pid = spawn(args, false, -1);
	int st = 0;

	if (pid < 0)
		return NL_ERR_IO;
	if (!mockproc_wait_pid(pid, timeout_ms, &st)) {
		kill_and_reap(pid);
		return NL_ERR_TIMEOUT;
	}
	*exit_status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return 0;
}

/* ---- HTTP ---- */

struct sink {
	struct mockproc_resp *resp;
	bool too_big;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct sink *s = userp;
	size_t n = size * nmemb;
	char *nb;

	if (s->resp->body_len + n > MAX_BODY) {
		s->too_big = true;
		return 0;
	}
	if ((nb = realloc(s->resp->body, s->resp->body_len + n + 1)) == NULL)
		return 0;
	memcpy(nb + s->resp->body_len, data, n);
	s->resp->body = nb;
	s->resp->body_len += n;
	nb[s->resp->body_len] = '\0';
	return n;
}

static char *header_value(const char *line, size_t len, const char *name)
{
	size_t nl = strlen(name);

	if (len <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return NULL;
	line += nl + 1;
	len -= nl + 1;
	while (len > 0 && (*line == ' ' || *line == '\t'))
		line++, len--;
	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
		len--;
	return strndup(line, len);
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
	struct sink *s = userp;
	size_t n = size * nmemb;
	char *v;

	if ((v = header_value(data, n, "Location")) != NULL) {
		free(s->resp->location);
		s->resp->location = v;
	} else if ((v = header_value(data, n, "WWW-Authenticate")) != NULL) {
		free(s->resp->www_authenticate);
		s->resp->www_authenticate = v;
	} else if ((v = header_value(data, n, "Content-Type")) != NULL) {
		free(s->resp->content_type);
		s->resp->content_type = v;
	}
	return n;
}

/* ---- browsers: cookie jars ---- */

struct mockproc_jar {
	CURLSH *sh;
	pthread_mutex_t mu[CURL_LOCK_DATA_LAST];
};

static void jar_lock(CURL *c, curl_lock_data data, curl_lock_access access, void *userp)
{
	struct mockproc_jar *j = userp;

	(void)c, (void)access;
	pthread_mutex_lock(&j->mu[data]);
}

static void jar_unlock(CURL *c, curl_lock_data data, void *userp)
{
	struct mockproc_jar *j = userp;

	(void)c;
	pthread_mutex_unlock(&j->mu[data]);
}

struct mockproc_jar *mockproc_jar_new(void)
{
	struct mockproc_jar *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&j->mu[i], NULL);
	if ((j->sh = curl_share_init()) == NULL ||
	    curl_share_setopt(j->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE) != CURLSHE_OK ||
	    curl_share_setopt(j->sh, CURLSHOPT_LOCKFUNC, jar_lock) != CURLSHE_OK ||
	    curl_share_setopt(j->sh, CURLSHOPT_UNLOCKFUNC, jar_unlock) != CURLSHE_OK ||
	    curl_share_setopt(j->sh, CURLSHOPT_USERDATA, j) != CURLSHE_OK) {
		mockproc_jar_free(j);
		return NULL;
	}
	return j;
}

void mockproc_jar_free(struct mockproc_jar *j)
{
	if (j == NULL)
		return;
	if (j->sh != NULL)
		curl_share_cleanup(j->sh);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&j->mu[i]);
	free(j);
}

static struct mockproc_jar *phone_jar;
static pthread_once_t phone_once = PTHREAD_ONCE_INIT;

static void phone_jar_make(void)
{
	phone_jar = mockproc_jar_new();
}

int mockproc_fetch(const char *method, const char *url, const char *ctype, const char *body,
                   const char *bearer, struct mockproc_resp *resp)
{
	pthread_once(&phone_once, phone_jar_make);
	if (phone_jar == NULL)
		return NL_ERR_NOMEM;
	return mockproc_fetch_in(phone_jar, method, url, ctype, body, bearer, resp);
}

static struct {
	char cainfo[512], local_ip[64], header[512];
} phone_net;

void mockproc_phone_configure(const char *cainfo, const char *local_ip, const char *header)
{
	snprintf(phone_net.cainfo, sizeof(phone_net.cainfo), "%s", cainfo != NULL ? cainfo : "");
	snprintf(phone_net.local_ip, sizeof(phone_net.local_ip), "%s", local_ip != NULL ? local_ip : "");
	snprintf(phone_net.header, sizeof(phone_net.header), "%s", header != NULL ? header : "");
}

int mockproc_fetch_in(struct mockproc_jar *jar, const char *method, const char *url, const char *ctype,
                      const char *body, const char *bearer, struct mockproc_resp *resp)
{
	struct sink s = {.resp = resp};
	struct curl_slist *hdrs = NULL;
	char line[4096];
	CURL *c;
	CURLcode cc;
	int r = NL_ERR_NETWORK;

	memset(resp, 0, sizeof(*resp));
	if ((c = curl_easy_init()) == NULL)
		return NL_ERR_NOMEM;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, phone_net.cainfo[0] != '\0' ? "http,https" : "http");
	if (phone_net.cainfo[0] != '\0')
		curl_easy_setopt(c, CURLOPT_CAINFO, phone_net.cainfo);
	if (phone_net.local_ip[0] != '\0')
		curl_easy_setopt(c, CURLOPT_INTERFACE, phone_net.local_ip);
	if (phone_net.header[0] != '\0')
		hdrs = curl_slist_append(hdrs, phone_net.header);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &s);
	if (jar != NULL) {
		curl_easy_setopt(c, CURLOPT_SHARE, jar->sh);
		curl_easy_setopt(c, CURLOPT_COOKIEFILE, ""); /* the cookie engine, in memory */
	}
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body != NULL ? body : "");
		if (ctype != NULL) {
			snprintf(line, sizeof(line), "Content-Type: %s", ctype);
			hdrs = curl_slist_append(hdrs, line);
		}
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	}
	if (bearer != NULL) {
		snprintf(line, sizeof(line), "Authorization: Bearer %s", bearer);
		hdrs = curl_slist_append(hdrs, line);
	}
	if (hdrs != NULL)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	cc = curl_easy_perform(c);
	if (cc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
		r = 0;
	} else if (s.too_big) {
		r = NL_ERR_TOO_BIG;
	} else if (cc == CURLE_OPERATION_TIMEDOUT) {
		r = NL_ERR_TIMEOUT;
	}
	if (resp->body == NULL && r == 0)
		resp->body = strdup("");
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	if (r != 0)
		mockproc_resp_free(resp);
	return r;
}

void mockproc_resp_free(struct mockproc_resp *resp)
{
	free(resp->location);
	free(resp->www_authenticate);
	free(resp->content_type);
	free(resp->body);
	memset(resp, 0, sizeof(*resp));
}

int mockproc_control(const struct mockproc *mp, const char *json, long *status)
{
	struct mockproc_resp resp;
	char url[512];
	int r;

	snprintf(url, sizeof(url), "%s/_mock/control", mp->issuer);
	if ((r = mockproc_fetch("POST", url, "application/json", json, NULL, &resp)) != 0)
		return r;
	*status = resp.status;
	mockproc_resp_free(&resp);
	return 0;
}

int mockproc_stat(const struct mockproc *mp, const char *endpoint, long *count)
{
	struct mockproc_resp resp;
	json_t *o = NULL;
	long long v = 0;
	char url[512];
	int r;

	snprintf(url, sizeof(url), "%s/_mock/stats", mp->issuer);
	if ((r = mockproc_fetch("GET", url, NULL, NULL, NULL, &resp)) != 0)
		return r;
	r = NL_ERR_HTTP;
	if (resp.status == 200 &&
	    nl_json_parse(resp.body, resp.body_len, NL_JSON_MAX_SIZE, 4, true, &o, NULL, 0) == 0 &&
	    (r = nl_json_int(o, endpoint, &v)) == 0)
		*count = (long)v;
	json_decref(o);
	mockproc_resp_free(&resp);
	return r;
}

/* ---- keys ---- */

static char *bio_text(BIO *b, size_t *len)
{
	char *data = NULL;
	long n = BIO_get_mem_data(b, &data);
	/* not strndup: the BIO's bytes have no NUL, and ASan's strict_string_checks reads past them */
	char *out = n > 0 ? malloc((size_t)n + 1) : NULL;

	if (out != NULL) {
		memcpy(out, data, (size_t)n);
		out[n] = '\0';
	}
	*len = out != NULL ? (size_t)n : 0;
	return out;
}

int mockproc_client_key(const char *dir, const char *name, cjose_jwk_t **key, char **pub_path,
                        char **key_path)
{
	EVP_PKEY *pk = EVP_RSA_gen(2048);
	BIO *bpub = BIO_new(BIO_s_mem()), *bpriv = BIO_new(BIO_s_secmem());
	char *pub = NULL, *priv = NULL, *pp = NULL, *kp = NULL;
	size_t publen = 0, privlen = 0;
	cjose_jwk_t *jwk = NULL;
	int r = NL_ERR_INTERNAL;

	if (pk == NULL || bpub == NULL || bpriv == NULL || PEM_write_bio_PUBKEY(bpub, pk) != 1 ||
	    PEM_write_bio_PrivateKey(bpriv, pk, NULL, NULL, 0, NULL, NULL) != 1 ||
	    (pub = bio_text(bpub, &publen)) == NULL || (priv = bio_text(bpriv, &privlen)) == NULL)
		goto out;
	if (asprintf(&pp, "%s/%s.pub.pem", dir, name) < 0 || asprintf(&kp, "%s/%s.key.pem", dir, name) < 0) {
		pp = kp = NULL;
		r = NL_ERR_NOMEM;
		goto out;
	}
	if ((r = test_write_data(pp, 0644, pub, publen)) != 0 ||
	    (r = test_write_data(kp, 0600, priv, privlen)) != 0 ||
	    (r = nl_jwk_from_pem(priv, privlen, &jwk)) != 0)
		goto out;
	*key = jwk;
	*pub_path = pp;
	*key_path = kp;
	jwk = NULL;
	pp = kp = NULL;
	r = 0;
out:
	if (jwk != NULL)
		cjose_jwk_release(jwk);
	free(pp);
	free(kp);
	free(pub);
	if (priv != NULL)
		OPENSSL_cleanse(priv, privlen);
	free(priv);
	BIO_free(bpub);
	BIO_free(bpriv);
	EVP_PKEY_free(pk);
	return r;
}

char *mockproc_query_param(const char *url, const char *name)
{
	const char *q = strchr(url, '?');
	size_t n = strlen(name);

	for (const char *p = q; p != NULL && *p != '\0'; p = strchr(p + 1, '&')) {
		const char *s = p + 1, *v;
		size_t len, o = 0;
		char *out;

		if (strncmp(s, name, n) != 0 || s[n] != '=')
			continue;
		v = s + n + 1;
		len = strcspn(v, "&#");
		if ((out = malloc(len + 1)) == NULL)
			return NULL;
		for (size_t i = 0; i < len; i++) {
			if (v[i] == '%' && i + 2 < len) {
				char hex[3] = {v[i + 1], v[i + 2], 0};
				out[o++] = (char)strtol(hex, NULL, 16);
				i += 2;
			} else {
				out[o++] = v[i] == '+' ? ' ' : v[i];
			}
		}
		out[o] = '\0';
		return out;
	}
	return NULL;
}
