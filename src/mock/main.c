/* nhslogin-mock: options, the listening socket, start-up and clean shutdown. Prints its issuer URL
 * as the first line of stdout; logs one line a request to stderr. See src/mock/README.md. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mock.h"
#include "nl_err.h"
#include "nl_http.h"
#include "nl_log.h"

#define EXIT_USAGE 2

struct mock *mock_g;

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: nhslogin-mock [--listen HOST:PORT] [--issuer URL] [--auto-approve USER]\n"
	        "                     [--device-endpoint] [--device-interval SECONDS] [--state-dir DIR]\n"
	        "                     [--client CLIENT_ID:PUBKEY_PEM_PATH:REDIRECT_URI]... [--allow-remote]\n"
	        "                     [--debug]\n"
	        "A local NHS login OpenID provider for tests. Prints its issuer URL on the first line.\n");
}

static int parse_args(int argc, char **argv, struct mock_settings *s)
{
	enum { OPT_ISSUER = 256, OPT_INTERVAL, OPT_ALLOW_REMOTE, OPT_DEBUG, OPT_CLIENT };
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"issuer", required_argument, NULL, OPT_ISSUER},
	    {"auto-approve", required_argument, NULL, 'a'},
	    {"device-endpoint", no_argument, NULL, 'd'},
	    {"device-interval", required_argument, NULL, OPT_INTERVAL},
	    {"state-dir", required_argument, NULL, 's'},
	    {"client", required_argument, NULL, OPT_CLIENT},
	    {"allow-remote", no_argument, NULL, OPT_ALLOW_REMOTE},
	    {"debug", no_argument, NULL, OPT_DEBUG},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char *end;
	long v;
	int c;

	s->device_interval = 5;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			s->listen = optarg;
			break;
		case OPT_ISSUER:
			s->issuer = optarg;
			break;
		case 'a':
			s->auto_approve = optarg;
			break;
		case 'd':
			s->device_endpoint = true;
			break;
		case 's':
			s->state_dir = optarg;
			break;
		case OPT_ALLOW_REMOTE:
			s->allow_remote = true;
			break;
		case OPT_DEBUG:
			s->debug = true;
			break;
		case OPT_INTERVAL:
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || v < 1 || v > 60) {
				fprintf(stderr, "nhslogin-mock: --device-interval must be 1..60 seconds\n");
				return NL_ERR_CONFIG;
			}
			s->device_interval = (unsigned)v;
			break;
		case OPT_CLIENT:
			if (s->n_cli_clients >= MOCK_MAX_CLIENTS) {
				fprintf(stderr, "nhslogin-mock: too many --client options\n");
				return NL_ERR_CONFIG;
			}
			s->cli_clients[s->n_cli_clients++] = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return NL_ERR_CONFIG;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return NL_ERR_CONFIG;
	}
	if (s->listen == NULL)
		s->listen = "127.0.0.1:0";
	if (s->issuer != NULL &&
	    (strncmp(s->issuer, "http://", 7) != 0 && strncmp(s->issuer, "https://", 8) != 0)) {
		fprintf(stderr, "nhslogin-mock: --issuer must be an http(s) URL\n");
		return NL_ERR_CONFIG;
	}
	return 0;
}

static bool addr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr);
	return false;
}

/* Bind HOST:PORT ([v6]:PORT too); on success *fd listens and *port is the real port. */
static int listen_on(const char *spec, bool allow_remote, char *host, size_t hostlen, int *fd, unsigned *port,
                     char *err, size_t errlen)
{
	struct addrinfo hints = {0}, *ai = NULL;
	const char *colon, *p;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int s = -1, one = 1, r = NL_ERR_CONFIG, gai;

	if (spec[0] == '[') {
		const char *rb = strchr(spec, ']');
		if (rb == NULL || rb[1] != ':')
			goto bad;
		snprintf(host, hostlen, "%.*s", (int)(rb - spec - 1), spec + 1);
		p = rb + 2;
	} else {
		if ((colon = strrchr(spec, ':')) == NULL || colon == spec)
			goto bad;
		snprintf(host, hostlen, "%.*s", (int)(colon - spec), spec);
		p = colon + 1;
	}
	if (*p == '\0' || strspn(p, "0123456789") != strlen(p) || strtol(p, NULL, 10) > 65535)
		goto bad;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((gai = getaddrinfo(host, p, &hints, &ai)) != 0) {
		snprintf(err, errlen, "--listen %s: %s", spec, gai_strerror(gai));
		goto out;
	}
	if (!allow_remote && !addr_is_loopback(ai->ai_addr)) {
		snprintf(err, errlen, "--listen %s: not a loopback address (add --allow-remote to mean it)",
		         spec);
		goto out;
	}
	r = NL_ERR_IO;
	if ((s = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(s, ai->ai_addr, ai->ai_addrlen) != 0 || listen(s, 64) != 0 ||
	    getsockname(s, (struct sockaddr *)&ss, &sl) != 0) {
		snprintf(err, errlen, "--listen %s: %s", spec, strerror(errno));
		goto out;
	}
	*port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                       : ((struct sockaddr_in *)&ss)->sin_port);
	*fd = s;
	s = -1;
	r = 0;
	goto out;
bad:
	snprintf(err, errlen, "--listen %s: expected HOST:PORT", spec);
out:
	if (s >= 0)
		close(s);
	if (ai != NULL)
		freeaddrinfo(ai);
	return r;
}

/* issuer, its endpoints and the trustmark <issuer>/trustmark/<host>. */
static int make_urls(struct mock *m, const char *host, unsigned port)
{
	const char *auth, *end;
	size_t hl;

	if (m->set.issuer != NULL) {
		size_t n = strlen(m->set.issuer);
		while (n > 0 && m->set.issuer[n - 1] == '/')
			n--;
		m->issuer = strndup(m->set.issuer, n);
	} else if (asprintf(&m->issuer, strchr(host, ':') != NULL ? "http://[%s]:%u" : "http://%s:%u", host,
	                    port) < 0) {
		m->issuer = NULL;
	}
	if (m->issuer == NULL)
		return NL_ERR_NOMEM;
	auth = strstr(m->issuer, "://") + 3;
	end = auth[0] == '[' ? strchr(auth, ']') : NULL;
	end = end != NULL ? end + 1 : auth + strcspn(auth, ":/");
	hl = (size_t)(end - auth);
	if (asprintf(&m->vtm, "%s/trustmark/%.*s", m->issuer, (int)hl, auth) < 0 ||
	    asprintf(&m->token_endpoint, "%s/token", m->issuer) < 0 ||
	    asprintf(&m->device_endpoint, "%s/device_authorization", m->issuer) < 0)
		return NL_ERR_NOMEM;
	return 0;
}

static void mock_free(struct mock *m)
{
	mock_store_free(m);
	mock_keys_free(m);
	mock_faults_free(m);
	mock_free_state(m);
	free(m->issuer);
	free(m->vtm);
	free(m->token_endpoint);
	free(m->device_endpoint);
	pthread_mutex_destroy(&m->lock);
}

int main(int argc, char **argv)
{
	static struct mock m;
	char err[512] = "", host[256];
	unsigned port = 0;
	int fd = -1, sig = 0, status = EXIT_USAGE;
	void *daemon = NULL;
	sigset_t set;

	pthread_mutex_init(&m.lock, NULL);
	mock_g = &m;
	if (parse_args(argc, argv, &m.set) != 0)
		goto out;
	nl_log_open("nhslogin-mock", NL_LOG_STDERR, m.set.debug);
	if (mock_load_state(&m, err, sizeof(err)) != 0 || mock_keys_init(&m, err, sizeof(err)) != 0 ||
	    listen_on(m.set.listen, m.set.allow_remote, host, sizeof(host), &fd, &port, err, sizeof(err)) !=
	        0 ||
	    make_urls(&m, host, port) != 0) {
		fprintf(stderr, "nhslogin-mock: %s\n", err[0] != '\0' ? err : "out of memory");
		goto out;
	}
	status = EXIT_FAILURE;
	/* Threads inherit this mask; the main thread takes the signals with sigwait. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	nl_http_global_init();
	if (mock_http_start(&m, fd, &daemon) != 0) {
		fprintf(stderr, "nhslogin-mock: cannot start the HTTP server\n");
		goto out;
	}
	fd = -1; /* the HTTP server owns and closes it now */
	printf("%s\n", m.issuer);
	fflush(stdout);
	nl_notice("listening on %s (%zu users, %zu clients%s%s)", m.issuer, m.n_users, m.n_clients,
	          m.auto_user != NULL ? ", auto-approve " : "",
	          m.auto_user != NULL ? m.auto_user->username : "");
	while (sigwait(&set, &sig) != 0 || (sig != SIGINT && sig != SIGTERM))
		;
	nl_notice("stopping on signal %d", sig);
	status = EXIT_SUCCESS;
out:
	mock_http_stop(daemon);
	if (fd >= 0)
		close(fd);
	mock_free(&m);
	return status;
}
