/* nhslogin-mock: the libmicrohttpd layer. Bounded bodies, parameters parsed once, one log line a
 * request (method, path, status: never a query string or a body), dispatch by path, faults first. */
#include "config.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mock.h"
#include "nl_err.h"
#include "nl_http.h"
#include "nl_json.h"
#include "nl_log.h"
#include "nl_time.h"
#include "nl_wipe.h"

#define MOCK_CONN_LIMIT   64
#define MOCK_CONN_TIMEOUT 15 /* seconds */

struct route {
	const char *path;
	enum mock_ep ep;
	int (*handler)(struct mock_req *r);
	bool control; /* the test control API: loopback only, never faulted */
};

static const struct route routes[] = {
    {"/.well-known/openid-configuration", MOCK_EP_DISCOVERY, mock_handle_discovery, false},
    {"/.well-known/jwks.json", MOCK_EP_JWKS, mock_handle_jwks, false},
    {"/authorize", MOCK_EP_AUTHORIZE, mock_handle_authorize, false},
    {"/authorize/decision", MOCK_EP_AUTHORIZE, mock_handle_decision, false},
    {"/token", MOCK_EP_TOKEN, mock_handle_token, false},
    {"/userinfo", MOCK_EP_USERINFO, mock_handle_userinfo, false},
    {"/device_authorization", MOCK_EP_DEVICE_AUTHORIZATION, mock_handle_device_authorization, false},
    {"/device", MOCK_EP_DEVICE_PAGE, mock_handle_device_page, false},
    {"/_mock/control", MOCK_EP_NONE, mock_handle_control, true},
    {"/_mock/stats", MOCK_EP_NONE, mock_handle_stats, true},
};

const char *mock_param(const struct mock_req *r, const char *name)
{
	for (size_t i = 0; i < r->n_params; i++)
		if (strcmp(r->params[i].name, name) == 0)
			return r->params[i].value;
	return NULL;
}

const char *mock_header(const struct mock_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

bool mock_req_from_loopback(const struct mock_req *r)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;

	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return true;
		return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
	}
	return false;
}

static void params_clear(struct mock_req *r)
{
	for (size_t i = 0; i < r->n_params; i++) {
		nl_free_secret(r->params[i].name);
		nl_free_secret(r->params[i].value);
	}
	r->n_params = 0;
}

static int param_add(struct mock_req *r, const char *name, size_t nlen, const char *value, size_t vlen)
{
	char *n, *v;

	if (r->n_params >= MOCK_MAX_PARAMS) {
		r->bad_params = true;
		return NL_ERR_LIMIT;
	}
	if ((n = strndup(name, nlen)) == NULL)
		return NL_ERR_NOMEM;
	if ((v = strndup(value, vlen)) == NULL) {
		free(n);
		return NL_ERR_NOMEM;
	}
	if (mock_param(r, n) != NULL)
		r->dup_param = true;
	r->params[r->n_params].name = n;
	r->params[r->n_params].value = v;
	r->n_params++;
	return 0;
}

static enum MHD_Result query_cb(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct mock_req *r = cls;
	(void)kind;
	if (key == NULL)
		return MHD_YES;
	if (value == NULL)
		value = "";
	if (param_add(r, key, strlen(key), value, strlen(value)) != 0)
		return MHD_NO;
	return MHD_YES;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode one form component in place ('+' is a space); NUL bytes are refused. */
static int form_decode(char *s, size_t len, size_t *outlen)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		if (s[i] == '+') {
			s[o++] = ' ';
		} else if (s[i] == '%') {
			int hi, lo;
			if (i + 2 >= len || (hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0)
				return NL_ERR_INVALID;
			if (hi == 0 && lo == 0)
				return NL_ERR_INVALID;
			s[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			s[o++] = s[i];
		}
	}
	*outlen = o;
	return 0;
}

int mock_req_parse_form(struct mock_req *r)
{
	const char *ct = mock_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
	char *p, *end;

	if (ct == NULL || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0 ||
	    (ct[33] != '\0' && ct[33] != ';'))
		return NL_ERR_INVALID;
	if (r->body == NULL)
		return 0;
	p = r->body;
	end = r->body + r->body_len;
	while (p < end) {
		char *amp = memchr(p, '&', (size_t)(end - p));
		char *stop = amp != NULL ? amp : end;
		char *eq = memchr(p, '=', (size_t)(stop - p));
		size_t nlen, vlen = 0;
		if (stop != p) {
			char *val = eq != NULL ? eq + 1 : stop;
			if (form_decode(p, (size_t)((eq != NULL ? eq : stop) - p), &nlen) != 0 ||
			    form_decode(val, (size_t)(stop - val), &vlen) != 0) {
				r->bad_params = true;
				return NL_ERR_INVALID;
			}
			if (param_add(r, p, nlen, val, vlen) != 0)
				return NL_ERR_INVALID;
		}
		p = stop + 1;
	}
	return 0;
}

/* ---- replies ---- */

int mock_reply(struct mock_req *r, unsigned status, const char *ctype, const char *body, size_t len,
               const char *const *headers)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (resp == NULL)
		return MHD_NO;
	if (ctype != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	for (size_t i = 0; headers != NULL && headers[i] != NULL; i += 2)
		MHD_add_response_header(resp, headers[i], headers[i + 1]);
	ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	r->status = (int)status;
	return ret;
}

int mock_reply_json(struct mock_req *r, unsigned status, json_t *obj, const char *cache_control)
{
	const char *hdrs[] = {MHD_HTTP_HEADER_CACHE_CONTROL,
	                      cache_control != NULL ? cache_control : "no-store", MHD_HTTP_HEADER_PRAGMA,
	                      "no-cache", NULL};
	char *text = obj != NULL ? nl_json_dump(obj) : NULL;
	int ret;

	if (text == NULL)
		return mock_reply(r, 500, "text/plain", "internal error\n", 15, NULL);
	if (cache_control != NULL)
		hdrs[2] = NULL;
	ret = mock_reply(r, status, "application/json", text, strlen(text), hdrs);
	nl_free_secret(text);
	return ret;
}

int mock_reply_html(struct mock_req *r, unsigned status, const char *title, const char *body_html)
{
	static const char *const hdrs[] = {
	    MHD_HTTP_HEADER_CACHE_CONTROL, "no-store", "Content-Security-Policy",
	    /* form-action also governs the redirect after the user-picking form, back to a client's
	     * redirect_uri: https, or plain http on loopback (the only kinds clients may register) */
	    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https: http://127.0.0.1:* "
	    "http://localhost:*",
	    "X-Frame-Options", "DENY", NULL};
	char *t = mock_html_escape(title), *page = NULL;
	int len, ret;

	if (t == NULL)
		return mock_reply(r, 500, "text/plain", "internal error\n", 15, NULL);
	len = asprintf(&page,
	               "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	               "<meta name=\"viewport\" content=\"width=device-width\"><title>%s</title></head>\n"
	               "<body style=\"font-family:sans-serif;max-width:40em;margin:1em auto\">"
	               "<p><b>NHS login (mock)</b></p>\n<h1>%s</h1>\n%s\n</body></html>\n",
	               t, t, body_html);
	free(t);
	if (len < 0)
		return mock_reply(r, 500, "text/plain", "internal error\n", 15, NULL);
	ret = mock_reply(r, status, "text/html; charset=utf-8", page, (size_t)len, hdrs);
	free(page);
	return ret;
}

int mock_reply_redirect(struct mock_req *r, const char *location)
{
	const char *hdrs[] = {MHD_HTTP_HEADER_LOCATION, location, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store",
	                      NULL};
	return mock_reply(r, 302, "text/plain", "", 0, hdrs);
}

/* A body made as it is sent (faults): see mock_reply_stream. */
struct stream {
	size_t total; /* 0: trickle */
	int64_t start_ms;
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	static const char head[] = "{\"access_token\":\"", tail[] = "\"}";
	struct stream *s = cls;
	size_t n, i;

	if (s->total == 0) {
		struct timespec ts = {MOCK_TRICKLE_MS / 1000, (MOCK_TRICKLE_MS % 1000) * 1000000L};
		if (max == 0 || nl_mono_ms() - s->start_ms > MOCK_TRICKLE_LIMIT_MS)
			return MHD_CONTENT_READER_END_OF_STREAM;
		nanosleep(&ts, NULL);
		buf[0] = ' '; /* JSON whitespace: a document that never gets to its first token */
		return 1;
	}
	if (pos >= s->total)
		return MHD_CONTENT_READER_END_OF_STREAM;
	n = s->total - (size_t)pos < max ? s->total - (size_t)pos : max;
	for (i = 0; i < n; i++) {
		size_t at = (size_t)pos + i;
		if (at < sizeof(head) - 1)
			buf[i] = head[at];
		else if (at >= s->total - (sizeof(tail) - 1))
			buf[i] = tail[at - (s->total - (sizeof(tail) - 1))];
		else
			buf[i] = 'a';
	}
	return (ssize_t)n;
}

int mock_reply_stream(struct mock_req *r, size_t total)
{
	struct stream *s = calloc(1, sizeof(*s));
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (s == NULL)
		return MHD_NO;
	s->total = total;
	s->start_ms = nl_mono_ms();
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, total == 0 ? 64 : 64 * 1024, stream_read,
	                                         s, free);
	if (resp == NULL) {
		free(s);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ret = MHD_queue_response(r->conn, 200, resp);
	MHD_destroy_response(resp);
	r->status = 200;
	return ret;
}

int mock_reply_oauth_error(struct mock_req *r, unsigned status, const char *error, const char *desc)
{
	json_t *o = json_pack("{s:s,s:s}", "error", error, "error_description", desc);
	int ret = mock_reply_json(r, status, o, NULL);
	json_decref(o);
	return ret;
}

char *mock_html_escape(const char *s)
{
	size_t n = 0;
	char *out, *o;

	for (const char *p = s; *p != '\0'; p++)
		n += (*p == '<' || *p == '>' || *p == '&' || *p == '"' || *p == '\'') ? 6 : 1;
	if ((out = malloc(n + 1)) == NULL)
		return NULL;
	for (o = out; *s != '\0'; s++) {
		switch (*s) {
		case '<':
			o += sprintf(o, "&lt;");
			break;
		case '>':
			o += sprintf(o, "&gt;");
			break;
		case '&':
			o += sprintf(o, "&amp;");
			break;
		case '"':
			o += sprintf(o, "&quot;");
			break;
		case '\'':
			o += sprintf(o, "&#39;");
			break;
		default:
			*o++ = *s;
		}
	}
	*o = '\0';
	return out;
}

char *mock_url_with_params(const char *uri, const char *const *kv, size_t n_kv)
{
	char *form = NULL, *out = NULL;

	for (size_t i = 0; i + 1 < n_kv; i += 2) {
		if (kv[i + 1] == NULL)
			continue;
		if (nl_form_add(&form, kv[i], kv[i + 1]) != 0) {
			nl_free_secret(form);
			return NULL;
		}
	}
	if (asprintf(&out, "%s%s%s", uri, form == NULL ? "" : (strchr(uri, '?') != NULL ? "&" : "?"),
	             form == NULL ? "" : form) < 0)
		out = NULL;
	nl_free_secret(form);
	return out;
}

/* ---- dispatch ---- */

static const struct route *find_route(const char *path)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(routes[i].path, path) == 0)
			return &routes[i];
	return NULL;
}

static int dispatch(struct mock *m, struct mock_req *r)
{
	const struct route *rt = find_route(r->path);
	enum mock_fault_reply fr = MOCK_FR_NONE;
	long delay_ms = 0;
	char *loc = NULL;
	int ret;

	if (rt == NULL)
		return mock_reply(r, 404, "text/plain", "not found\n", 10, NULL);
	if (rt->control && !mock_req_from_loopback(r))
		return mock_reply(r, 403, "text/plain", "forbidden\n", 10, NULL);
	if (r->too_big)
		return mock_reply_oauth_error(r, 413, "invalid_request", "request body too large");
	if (!rt->control) {
		pthread_mutex_lock(&m->lock);
		m->stats[rt->ep]++;
		fr = mock_fault_before(m, rt->ep, &delay_ms);
		pthread_mutex_unlock(&m->lock);
		if (delay_ms > 0) {
			struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
			nanosleep(&ts, NULL);
		}
		switch (fr) {
		case MOCK_FR_NONE:
			break;
		case MOCK_FR_500:
			return mock_reply_oauth_error(r, 500, "server_error", "injected fault: status_500");
		case MOCK_FR_HUGE:
			return mock_reply_stream(r, MOCK_HUGE_BODY);
		case MOCK_FR_NEVER_ENDS:
			return mock_reply_stream(r, 0);
		case MOCK_FR_REDIRECT:
			if (asprintf(&loc, "%s%s", m->issuer, r->path) < 0)
				return mock_reply(r, 500, "text/plain", "internal error\n", 15, NULL);
			ret = mock_reply_redirect(r, loc);
			free(loc);
			return ret;
		}
	}
	if (strcmp(r->method, "GET") == 0 &&
	    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_cb, r) < 0)
		return mock_reply(r, 500, "text/plain", "internal error\n", 15, NULL);
	pthread_mutex_lock(&m->lock);
	mock_store_purge(m, nl_now());
	ret = rt->handler(r);
	pthread_mutex_unlock(&m->lock);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
	struct mock *m = cls;
	struct mock_req *r = *con_cls;
	(void)version;

	if (r == NULL) {
		const char *cl =
		    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if ((r = calloc(1, sizeof(*r))) == NULL)
			return MHD_NO;
		r->conn = conn;
		r->method = method;
		r->path = url;
		*con_cls = r;
		if (cl != NULL && strtoull(cl, NULL, 10) > MOCK_MAX_BODY) {
			r->too_big = true;
			return mock_reply_oauth_error(r, 413, "invalid_request", "request body too large") ==
			               MHD_YES
			           ? MHD_YES
			           : MHD_NO;
		}
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (r->too_big || r->status != 0)
			return MHD_YES;
		if (n > MOCK_MAX_BODY - r->body_len) {
			r->too_big = true;
			nl_free_secret_buf(r->body, r->body_len + 1);
			r->body = NULL;
			r->body_len = 0;
			return MHD_YES;
		}
		char *nb = malloc(r->body_len + n + 1);
		if (nb == NULL)
			return MHD_NO;
		if (r->body != NULL)
			memcpy(nb, r->body, r->body_len);
		memcpy(nb + r->body_len, upload_data, n);
		nb[r->body_len + n] = '\0';
		nl_free_secret_buf(r->body, r->body_len + 1);
		r->body = nb;
		r->body_len += n;
		return MHD_YES;
	}
	if (r->status != 0)
		return MHD_YES; /* already answered (too big) */
	return dispatch(m, r) == MHD_YES ? MHD_YES : MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct mock_req *r = *con_cls;
	(void)cls;
	(void)conn;
	if (r == NULL)
		return;
	nl_info("%s %s %d%s", r->method, r->path, r->status,
	        toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed)");
	params_clear(r);
	nl_free_secret_buf(r->body, r->body_len + 1);
	free(r);
	*con_cls = NULL;
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	nl_debug("microhttpd: %s", line);
}

int mock_http_start(struct mock *m, int listen_fd, void **daemon_out)
{
	struct MHD_Daemon *d;

	d = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG, 0, NULL,
	    NULL, on_request, m, MHD_OPTION_LISTEN_SOCKET, listen_fd, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)MOCK_CONN_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)MOCK_CONN_TIMEOUT,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024), MHD_OPTION_NOTIFY_COMPLETED,
	    on_completed, m, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, m, MHD_OPTION_END);
	if (d == NULL)
		return NL_ERR_INTERNAL;
	*daemon_out = d;
	return 0;
}

void mock_http_stop(void *daemon)
{
	if (daemon != NULL)
		MHD_stop_daemon(daemon);
}
