/* What the benchmarks share (bench_util.h). */
#include "config.h"
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

double bench_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double bench_pct(double *v, size_t n, double p)
{
	size_t i;
	qsort(v, n, sizeof(*v), cmp_double);
	i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

long bench_proc_kib(pid_t pid, const char *field)
{
	char path[64], line[256];
	long v = -1;
	FILE *f;
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, strlen(field)) == 0 && line[strlen(field)] == ':')
			v = atol(line + strlen(field) + 1);
	fclose(f);
	return v;
}

/* A valid NHS number (modulus 11) from a 9-digit stem; 0 if the stem has none. */
static int nhs_number(long stem, char out[11])
{
	int sum = 0, check;
	snprintf(out, 11, "%09ld", stem % 1000000000L);
	for (int i = 0; i < 9; i++)
		sum += (out[i] - '0') * (10 - i);
	check = 11 - sum % 11;
	if (check == 11)
		check = 0;
	if (check == 10)
		return 0;
	out[9] = (char)('0' + check);
	out[10] = '\0';
	return 1;
}

int bench_write_users(const char *statedir, const char *mapfile, int n_users)
{
	char path[PATH_MAX], nhs[11];
	FILE *u, *m;
	long stem = 968600000;
	snprintf(path, sizeof(path), "%s/users.json", statedir);
	if ((u = fopen(path, "w")) == NULL)
		return -1;
	if ((m = fopen(mapfile, "w")) == NULL) {
		fclose(u);
		return -1;
	}
	fprintf(u, "[");
	for (int i = 0; i < n_users; i++) {
		while (!nhs_number(stem, nhs))
			stem++;
		stem++;
		fprintf(u, "%s{\"username\":\"u%02d\",\"identity_level\":\"P9\",\"nhs_number\":\"%s\"}",
		        i ? "," : "", i, nhs);
		fprintf(m, "u%02d %s\n", i, nhs);
	}
	fprintf(u, "]\n");
	fchmod(fileno(u), 0644);
	fchmod(fileno(m), 0644);
	int ru = fclose(u), rm = fclose(m);
	return ru == 0 && rm == 0 ? 0 : -1;
}

struct body {
	char buf[32768];
	size_t len;
};

static size_t on_body(char *p, size_t sz, size_t nm, void *arg)
{
	struct body *b = arg;
	size_t n = sz * nm, room = sizeof(b->buf) - 1 - b->len;
	memcpy(b->buf + b->len, p, n < room ? n : room);
	b->len += n < room ? n : room;
	b->buf[b->len] = '\0';
	return n;
}

/* One request on the thread's handle (connections kept alive); *loc gets the redirect target. */
static long fetch(CURL *cu, const char *url, const char *post, struct body *b, char *loc, size_t loclen)
{
	long status = 0;
	char *redir = NULL;
	b->len = 0;
	b->buf[0] = '\0';
	curl_easy_setopt(cu, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(cu, CURLOPT_URL, url);
	if (post != NULL)
		curl_easy_setopt(cu, CURLOPT_POSTFIELDS, post);
	else
		curl_easy_setopt(cu, CURLOPT_HTTPGET, 1L);
	if (curl_easy_perform(cu) != CURLE_OK)
		return -1;
	curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &status);
	if (loc != NULL) {
		loc[0] = '\0';
		if (curl_easy_getinfo(cu, CURLINFO_REDIRECT_URL, &redir) == CURLE_OK && redir != NULL)
			snprintf(loc, loclen, "%s", redir);
	}
	return status;
}

/* value="..." of the hidden input name in html into out. */
static int hidden_value(const char *html, const char *name, char *out, size_t len)
{
	char pat[64];
	const char *p, *q;

	snprintf(pat, sizeof(pat), "name=\"%s\" value=\"", name);
	if ((p = strstr(html, pat)) == NULL)
		return -1;
	p += strlen(pat);
	if ((q = strchr(p, '"')) == NULL || (size_t)(q - p) >= len)
		return -1;
	memcpy(out, p, (size_t)(q - p));
	out[q - p] = '\0';
	return 0;
}

int bench_phone_signin(CURL *cu, const char *bridge, const char *issuer, const char *user_code,
                       const char *user, double *t_callback)
{
	struct body b;
	char url[512], loc[4096], post[4300], typed[16], flow[64], token[64];
	const char *p, *q;
	char *enc;
	size_t t = 0;

	for (p = user_code; *p != '\0' && t < sizeof(typed) - 1; p++)
		if (*p != '-')
			typed[t++] = *p;
	typed[t] = '\0';
	snprintf(url, sizeof(url), "%s/d", bridge);
	snprintf(post, sizeof(post), "code=%s", typed);
	if (fetch(cu, url, post, &b, NULL, 0) != 200 ||
	    hidden_value(b.buf, "flow", flow, sizeof(flow)) != 0 ||
	    hidden_value(b.buf, "token", token, sizeof(token)) != 0)
		return -1;
	snprintf(url, sizeof(url), "%s/d/confirm", bridge);
	snprintf(post, sizeof(post), "flow=%s&token=%s&answer=continue", flow, token);
	if (fetch(cu, url, post, &b, loc, sizeof(loc)) / 100 != 3 || loc[0] == '\0')
		return -1;
	if (fetch(cu, loc, NULL, &b, NULL, 0) != 200 || (p = strstr(b.buf, "name=\"req\" value=\"")) == NULL)
		return -1;
	p += strlen("name=\"req\" value=\"");
	if ((q = strchr(p, '"')) == NULL || (size_t)(q - p) >= 4096)
		return -1;
	enc = curl_easy_escape(cu, p, (int)(q - p));
	snprintf(post, sizeof(post), "req=%s&user=%s", enc != NULL ? enc : "", user);
	curl_free(enc);
	snprintf(url, sizeof(url), "%s/authorize/decision", issuer);
	if (fetch(cu, url, post, &b, loc, sizeof(loc)) / 100 != 3 || loc[0] == '\0')
		return -1;
	if (t_callback != NULL)
		*t_callback = bench_now_ms();
	return fetch(cu, loc, NULL, &b, NULL, 0) == 200 ? 0 : -1;
}

CURL *bench_phone_new(const char *cainfo)
{
	CURL *cu = curl_easy_init();

	if (cu == NULL)
		return NULL;
	if (cainfo != NULL)
		curl_easy_setopt(cu, CURLOPT_CAINFO, cainfo);
	curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(cu, CURLOPT_COOKIEFILE, ""); /* a browser: the bridge's cookie comes back */
	curl_easy_setopt(cu, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
	return cu;
}
