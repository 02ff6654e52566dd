/* Test helper: a scripted HTTP(S) server on libmicrohttpd (127.0.0.1, port 0, a thread per
 * connection so a slow answer never holds up the others or the stop). */
#include "config.h"
#include "testsrv.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_BODY_KEPT    (64 * 1024)
#define MAX_HEADERS_KEPT 64
#define MAX_PATHS        64
#define SLICE_MS         10
/* A trickle or a delay never outlives this, even if a test forgets to stop the server. */
#define MAX_HOLD_MS 60000

struct hdr {
	char *name;
	char *value;
};

struct record {
	char *method;
	char *path;
	struct hdr headers[MAX_HEADERS_KEPT];
	size_t nheaders;
	char *body;
	size_t body_len;
};

struct testsrv {
	struct MHD_Daemon *d;
	struct testsrv_route *routes;
	size_t nroutes;
	unsigned short port;
	bool tls;
	int stopping; /* atomic */
	pthread_mutex_t lock;
	struct record last;
	struct {
		char *path;
		unsigned hits;
	} paths[MAX_PATHS];
	size_t npaths;
};

/* Per request: the upload collected so far. */
struct upload {
	char *buf;
	size_t len;
};

/* A streamed answer in progress (CHUNKED or TRICKLE). */
struct stream {
	struct testsrv *s;
	const struct testsrv_route *route;
	size_t pos;
	long held_ms;
};

static bool stopping(struct testsrv *s)
{
	return __atomic_load_n(&s->stopping, __ATOMIC_ACQUIRE) != 0;
}

/* Sleep ms in short slices; false if the server began to stop meanwhile. */
static bool nap(struct testsrv *s, long ms)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = SLICE_MS * 1000000L};
	long done;

	for (done = 0; done < ms; done += SLICE_MS) {
		if (stopping(s))
			return false;
		nanosleep(&ts, NULL);
	}
	return !stopping(s);
}

static void record_clear(struct record *r)
{
	size_t i;

	free(r->method);
	free(r->path);
	for (i = 0; i < r->nheaders; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->body);
	memset(r, 0, sizeof(*r));
}

static enum MHD_Result keep_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct record *r = cls;
	(void)kind;

	if (r->nheaders >= MAX_HEADERS_KEPT)
		return MHD_NO;
	r->headers[r->nheaders].name = strdup(key);
	r->headers[r->nheaders].value = strdup(value != NULL ? value : "");
	r->nheaders++;
	return MHD_YES;
}

static void count_hit(struct testsrv *s, const char *path)
{
	size_t i;

	for (i = 0; i < s->npaths; i++) {
		if (strcmp(s->paths[i].path, path) == 0) {
			s->paths[i].hits++;
			return;
		}
	}
	if (s->npaths < MAX_PATHS && (s->paths[s->npaths].path = strdup(path)) != NULL)
		s->paths[s->npaths++].hits = 1;
}

static void record_request(struct testsrv *s, struct MHD_Connection *c, const char *method, const char *url,
                           struct upload *up)
{
	pthread_mutex_lock(&s->lock);
	record_clear(&s->last);
	s->last.method = strdup(method);
	s->last.path = strdup(url);
	MHD_get_connection_values(c, MHD_HEADER_KIND, keep_header, &s->last);
	s->last.body = up->buf;
	s->last.body_len = up->len;
	up->buf = NULL;
	count_hit(s, url);
	pthread_mutex_unlock(&s->lock);
}

static const struct testsrv_route *find_route(struct testsrv *s, const char *method, const char *url)
{
	size_t i;

	for (i = 0; i < s->nroutes; i++) {
		const struct testsrv_route *r = &s->routes[i];
		if (strcmp(r->path, url) == 0 && (r->method == NULL || strcmp(r->method, method) == 0))
			return r;
	}
	return NULL;
}

static size_t body_len(const struct testsrv_route *r)
{
	if (r->body == NULL)
		return 0;
	return r->body_len ? r->body_len : strlen(r->body);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *st = cls;
	size_t n;
	(void)pos;

	if (st->route->kind == TESTSRV_TRICKLE) {
		if (st->held_ms >= MAX_HOLD_MS || !nap(st->s, st->route->delay_ms))
			return MHD_CONTENT_READER_END_WITH_ERROR;
		st->held_ms += st->route->delay_ms > 0 ? st->route->delay_ms : SLICE_MS;
		buf[0] = 'x';
		return 1;
	}
	if (stopping(st->s))
		return MHD_CONTENT_READER_END_WITH_ERROR;
	n = body_len(st->route) - st->pos;
	if (n == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (n > max)
		n = max;
	memcpy(buf, st->route->body + st->pos, n);
	st->pos += n;
	return (ssize_t)n;
}

/* Add "Name: value\n" lines to a response. */
static void add_headers(struct MHD_Response *resp, const char *lines)
{
	char *copy, *line, *save = NULL;

	if (lines == NULL || (copy = strdup(lines)) == NULL)
		return;
	for (line = strtok_r(copy, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		char *colon = strchr(line, ':');
		char *value;
		if (colon == NULL)
			continue;
		*colon = '\0';
		for (value = colon + 1; *value == ' '; value++)
			;
		MHD_add_response_header(resp, line, value);
	}
	free(copy);
}

static struct MHD_Response *make_response(struct testsrv *s, const struct testsrv_route *r)
{
	struct MHD_Response *resp = NULL;
	struct stream *st;

	if (r->kind == TESTSRV_DELAY && !nap(s, r->delay_ms < MAX_HOLD_MS ? r->delay_ms : MAX_HOLD_MS))
		return NULL;
	if (r->kind == TESTSRV_CHUNKED || r->kind == TESTSRV_TRICKLE) {
		if ((st = calloc(1, sizeof(*st))) == NULL)
			return NULL;
		st->s = s;
		st->route = r;
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, stream_read, st, free);
		if (resp == NULL)
			free(st);
	} else {
		resp = MHD_create_response_from_buffer(body_len(r), (void *)(r->body != NULL ? r->body : ""),
		                                       MHD_RESPMEM_PERSISTENT);
	}
	if (resp == NULL)
		return NULL;
	if (r->content_type != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
	add_headers(resp, r->headers);
	return resp;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size,
                              void **req_cls)
{
	struct testsrv *s = cls;
	struct upload *up = *req_cls;
	const struct testsrv_route *r;
	struct MHD_Response *resp;
	unsigned status;
	enum MHD_Result ret;
	(void)version;

	if (up == NULL) {
		if ((up = calloc(1, sizeof(*up))) == NULL)
			return MHD_NO;
		*req_cls = up;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		if (up->len + n <= MAX_BODY_KEPT) {
			char *nb = realloc(up->buf, up->len + n + 1);
			if (nb == NULL)
				return MHD_NO;
			memcpy(nb + up->len, upload_data, n);
			up->buf = nb;
			up->len += n;
			up->buf[up->len] = '\0';
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	record_request(s, c, method, url, up);
	r = find_route(s, method, url);
	if (r == NULL) {
		static const struct testsrv_route not_found = {
		    .path = "", .status = 404, .body = "not found"};
		r = &not_found;
	}
	if ((resp = make_response(s, r)) == NULL)
		return MHD_NO;
	status = r->status ? r->status : MHD_HTTP_OK;
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **req_cls, enum MHD_RequestTerminationCode t)
{
	struct upload *up = *req_cls;
	(void)cls;
	(void)c;
	(void)t;

	if (up != NULL) {
		free(up->buf);
		free(up);
		*req_cls = NULL;
	}
}

static bool copy_routes(struct testsrv *s, const struct testsrv_route *routes, size_t n)
{
	if (n == 0)
		return true;
	if ((s->routes = calloc(n, sizeof(*routes))) == NULL)
		return false;
	memcpy(s->routes, routes, n * sizeof(*routes));
	s->nroutes = n;
	return true;
}

struct testsrv *testsrv_start(const struct testsrv_route *routes, size_t n, const char *cert_pem,
                              const char *key_pem)
{
	struct testsrv *s = calloc(1, sizeof(*s));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;
	const union MHD_DaemonInfo *info;

	if (s == NULL)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	if (!copy_routes(s, routes, n))
		goto fail;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->tls = cert_pem != NULL && key_pem != NULL;
	if (s->tls)
		flags |= MHD_USE_TLS;
	s->d = MHD_start_daemon(flags, 0, NULL, NULL, answer, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	                        MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_CONNECTION_TIMEOUT,
	                        (unsigned int)30, s->tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, key_pem,
	                        MHD_OPTION_HTTPS_MEM_CERT, cert_pem, MHD_OPTION_END);
	if (s->d == NULL)
		goto fail;
	if ((info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT)) == NULL || info->port == 0)
		goto fail;
	s->port = info->port;
	return s;
fail:
	testsrv_stop(s);
	return NULL;
}

void testsrv_stop(struct testsrv *s)
{
	size_t i;

	if (s == NULL)
		return;
	__atomic_store_n(&s->stopping, 1, __ATOMIC_RELEASE);
	if (s->d != NULL)
		MHD_stop_daemon(s->d);
	record_clear(&s->last);
	for (i = 0; i < s->npaths; i++)
		free(s->paths[i].path);
	free(s->routes);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

unsigned short testsrv_port(const struct testsrv *s)
{
	return s->port;
}

char *testsrv_url(const struct testsrv *s, const char *path)
{
	char *url = NULL;

	if (asprintf(&url, "%s://127.0.0.1:%u%s", s->tls ? "https" : "http", (unsigned)s->port, path) < 0)
		return NULL;
	return url;
}

unsigned testsrv_hits(struct testsrv *s, const char *path)
{
	unsigned hits = 0;
	size_t i;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->npaths; i++)
		if (strcmp(s->paths[i].path, path) == 0)
			hits = s->paths[i].hits;
	pthread_mutex_unlock(&s->lock);
	return hits;
}

static bool copy_out(const char *v, char *buf, size_t len)
{
	if (v == NULL || len == 0)
		return false;
	snprintf(buf, len, "%s", v);
	return true;
}

bool testsrv_last_method(struct testsrv *s, char *buf, size_t len)
{
	bool ok;

	pthread_mutex_lock(&s->lock);
	ok = copy_out(s->last.method, buf, len);
	pthread_mutex_unlock(&s->lock);
	return ok;
}

bool testsrv_last_path(struct testsrv *s, char *buf, size_t len)
{
	bool ok;

	pthread_mutex_lock(&s->lock);
	ok = copy_out(s->last.path, buf, len);
	pthread_mutex_unlock(&s->lock);
	return ok;
}

bool testsrv_last_header(struct testsrv *s, const char *name, char *buf, size_t len)
{
	bool ok = false;
	size_t i;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->last.nheaders && !ok; i++)
		if (strcasecmp(s->last.headers[i].name, name) == 0)
			ok = copy_out(s->last.headers[i].value, buf, len);
	pthread_mutex_unlock(&s->lock);
	return ok;
}

bool testsrv_last_body(struct testsrv *s, char *buf, size_t len)
{
	bool ok;

	pthread_mutex_lock(&s->lock);
	ok = s->last.method != NULL && copy_out(s->last.body != NULL ? s->last.body : "", buf, len);
	pthread_mutex_unlock(&s->lock);
	return ok;
}

bool testsrv_tls_supported(void)
{
	return MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES;
}

/* ---- a self-signed certificate for the TLS tests ---- */

static int add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

static char *bio_string(BIO *b)
{
	char *data = NULL;
	long n = BIO_get_mem_data(b, &data);
	char *out;

	if (n <= 0 || (out = malloc((size_t)n + 1)) == NULL)
		return NULL;
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	return out;
}

int testsrv_selfsigned(const char *ip, char **cert_pem, char **key_pem)
{
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
	char san[64];
	X509_NAME *name;
	int r = -1;

	*cert_pem = *key_pem = NULL;
	if (pkey == NULL || x == NULL || cb == NULL || kb == NULL)
		goto out;
	snprintf(san, sizeof(san), "IP:%s", ip);
	name = X509_get_subject_name(x);
	if (X509_set_version(x, 2) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL)) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -300) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 3600) == NULL || X509_set_pubkey(x, pkey) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)ip, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, name) != 1)
		goto out;
	if (add_ext(x, NID_basic_constraints, "critical,CA:TRUE") != 0 ||
	    add_ext(x, NID_key_usage, "critical,digitalSignature,keyCertSign") != 0 ||
	    add_ext(x, NID_subject_alt_name, san) != 0 || add_ext(x, NID_subject_key_identifier, "hash") != 0)
		goto out;
	if (X509_sign(x, pkey, EVP_sha256()) <= 0 || PEM_write_bio_X509(cb, x) != 1 ||
	    PEM_write_bio_PrivateKey(kb, pkey, NULL, NULL, 0, NULL, NULL) != 1)
		goto out;
	if ((*cert_pem = bio_string(cb)) == NULL || (*key_pem = bio_string(kb)) == NULL)
		goto out;
	r = 0;
out:
	if (r != 0) {
		free(*cert_pem);
		free(*key_pem);
		*cert_pem = *key_pem = NULL;
	}
	BIO_free(cb);
	BIO_free(kb);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return r;
}
