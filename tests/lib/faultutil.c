/* Helpers shared by the fault and local-security tests (see faultutil.h). */
#include "config.h"

#include "faultutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <curl/curl.h>

#include "harness.h"
#include "nl_err.h"
#include "nl_ipc.h"
#include "nl_json.h"
#include "nl_proto.h"

int fu_connect(const char *path)
{
	struct nl_proto_client c;
	return nl_proto_open(&c, path, 3000, NL_PROTO_PEER_ANY) == 0 ? c.fd : -1;
}

json_t *fu_call(int fd, const char *line, int timeout_ms)
{
	struct nl_proto_client c = {.fd = fd, .peer = (uid_t)-1};
	json_t *req = NULL, *m = NULL;

	/* nl_proto_call reads a refusal that is already waiting even if sending failed. */
	if (nl_json_parse(line, strlen(line), NL_IPC_MAX_LINE, 8, true, &req, NULL, 0) == 0 &&
	    nl_proto_call(&c, req, timeout_ms, &m) != 0)
		m = NULL;
	json_decref(req);
	return m;
}

json_t *fu_call_once(const char *path, const char *line, int timeout_ms)
{
	int fd = fu_connect(path);
	json_t *m;

	if (fd < 0)
		return NULL;
	m = fu_call(fd, line, timeout_ms);
	close(fd);
	return m;
}

const char *fu_str(const json_t *o, const char *key)
{
	const char *s = o != NULL ? nl_json_str(o, key) : NULL;
	return s != NULL ? s : "";
}

char *fu_read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t off = 0, cap = 4096;
	char *buf = NULL, *more;
	ssize_t n;

	if (fd < 0)
		return NULL;
	/* Read to EOF: files under /proc say they are empty. */
	for (;;) {
		if (buf == NULL || off + 1 >= cap) {
			if (buf != NULL)
				cap *= 2;
			if ((more = realloc(buf, cap)) == NULL) {
				free(buf);
				close(fd);
				return NULL;
			}
			buf = more;
		}
		if ((n = read(fd, buf + off, cap - 1 - off)) <= 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	buf[off] = '\0';
	if (len != NULL)
		*len = off;
	return buf;
}

int fu_count_lines(const char *path, const char *const *needles)
{
	char *text = fu_read_file(path, NULL), *save = NULL;
	int n = 0;

	if (text == NULL)
		return -1;
	for (char *line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		bool all = true;
		for (size_t i = 0; needles[i] != NULL && all; i++)
			all = strstr(line, needles[i]) != NULL;
		n += all;
	}
	free(text);
	return n;
}

bool fu_file_contains(const char *path, const char *needle)
{
	size_t len = 0;
	char *text = fu_read_file(path, &len);
	bool found;

	if (text == NULL)
		return false;
	found = memmem(text, len, needle, strlen(needle)) != NULL;
	free(text);
	return found;
}

long fu_rss_kb(pid_t pid)
{
	char path[64], *text, *p;
	long kb = -1;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((text = fu_read_file(path, NULL)) == NULL)
		return -1;
	if ((p = strstr(text, "VmRSS:")) != NULL)
		kb = strtol(p + 6, NULL, 10);
	free(text);
	return kb;
}

long fu_raise_nofile(long want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	if (rl.rlim_cur < (rlim_t)want) {
		rl.rlim_cur =
		    rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= (rlim_t)want ? (rlim_t)want : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			return -1;
	}
	return (long)rl.rlim_cur;
}

int fu_phone_authorize(const struct world *w, const char *user_code, const char *as_user,
                       char **authorize_url, char **callback_url)
{
	struct mockproc_resp a = {0}, b = {0}, c = {0};
	char url[512], body[4300], req[4096], *enc = NULL;
	CURL *cu = NULL;
	int r = NL_ERR_HTTP;

	*authorize_url = *callback_url = NULL;
	if (phone_confirm(w, user_code, "continue", NULL, &a) != 0 || a.status / 100 != 3 ||
	    a.location == NULL)
		goto out;
	if (mockproc_fetch("GET", a.location, NULL, NULL, NULL, &b) != 0 || b.status != 200 ||
	    html_hidden(b.body, "req", req, sizeof(req)) != 0)
		goto out;
	if ((cu = curl_easy_init()) == NULL || (enc = curl_easy_escape(cu, req, 0)) == NULL)
		goto out;
	snprintf(body, sizeof(body), "req=%s&user=%s", enc, as_user);
	snprintf(url, sizeof(url), "%s/authorize/decision", mockproc_issuer(w->mock));
	if (mockproc_fetch("POST", url, "application/x-www-form-urlencoded", body, NULL, &c) != 0 ||
	    c.status / 100 != 3 || c.location == NULL)
		goto out;
	r = NL_ERR_NOMEM;
	if ((*authorize_url = strdup(a.location)) == NULL || (*callback_url = strdup(c.location)) == NULL) {
		free(*authorize_url);
		*authorize_url = NULL;
		goto out;
	}
	r = 0;
out:
	curl_free(enc);
	if (cu != NULL)
		curl_easy_cleanup(cu);
	mockproc_resp_free(&a);
	mockproc_resp_free(&b);
	mockproc_resp_free(&c);
	return r;
}
