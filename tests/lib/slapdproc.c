/* Test helper: a throwaway slapd (slapd.conf, mdb loaded by slapadd, certificates by the openssl
 * command) in a temporary directory, started in the foreground as our child and stopped by pid. */
#include "config.h"

#include "slapdproc.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "mockproc.h"
#include "nl_err.h"
#include "nl_time.h"

#define MODULE_DIR     "/usr/lib/ldap"
#define SCHEMA_DIR     "/etc/ldap/schema"
#define RUN_TIMEOUT_MS 30000 /* slapadd, openssl */

struct slapdproc {
	char dir[256];
	char uri[64], ldaps_uri[64];
	char ca[300], other_ca[300];
	bool tls;
	pid_t pid; /* 0: not running */
};

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

bool slapdproc_available(bool tls, char *why, size_t whylen)
{
	static const char *const need[] = {SLAPDPROC_SLAPD,
	                                   SLAPDPROC_SLAPADD,
	                                   SCHEMA_DIR "/core.schema",
	                                   SCHEMA_DIR "/cosine.schema",
	                                   SCHEMA_DIR "/inetorgperson.schema",
	                                   SCHEMA_DIR "/nis.schema"};

	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (access(need[i], R_OK) != 0) {
			snprintf(why, whylen, "%s is not installed (apt-get install slapd)", need[i]);
			return false;
		}
	}
	if (access(MODULE_DIR "/back_mdb.so", R_OK) != 0 && access(MODULE_DIR "/back_mdb.la", R_OK) != 0) {
		snprintf(why, whylen, "slapd's mdb module is not in " MODULE_DIR);
		return false;
	}
	if (tls && system("openssl version >/dev/null 2>&1") != 0) {
		snprintf(why, whylen, "the openssl command is not installed");
		return false;
	}
	return true;
}

static int put_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *fp;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fp = fopen(path, "w")) == NULL)
		return NL_ERR_IO;
	ok = fputs(text, fp) >= 0;
	return fclose(fp) == 0 && ok ? 0 : NL_ERR_IO;
}

/* The last lines of dir/name, for a failure's reason. */
static void log_tail(const char *dir, const char *name, char *out, size_t len)
{
	char path[512], buf[4096];
	const char *start;
	size_t n = 0;
	FILE *fp;

	out[0] = '\0';
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fp = fopen(path, "r")) == NULL)
		return;
	if (fseek(fp, -(long)(sizeof(buf) - 1), SEEK_END) != 0)
		rewind(fp);
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	start = n > len - 1 ? buf + n - (len - 1) : buf;
	n = strlen(start);
	memcpy(out, start, n < len ? n : len - 1);
	out[n < len ? n : len - 1] = '\0';
	for (char *p = out; *p != '\0'; p++)
		if (*p == '\n')
			*p = ' ';
}

/* fork+exec argv in dir with stdout and stderr appended to dir/log; the child dies with us. */
static pid_t spawn(const char *dir, const char *const *argv, const char *log)
{
	char path[512];
	pid_t parent = getpid(), pid;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, log);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent || chdir(dir) != 0)
			_exit(127);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "slapdproc: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fd);
	return pid;
}

/* Wait for pid up to timeout_ms; true if reaped (status in *st). */
static bool wait_for(pid_t pid, int timeout_ms, int *st)
{
	int64_t deadline = nl_mono_ms() + timeout_ms;

	for (;;) {
		pid_t w = waitpid(pid, st, WNOHANG);

		if (w == pid || (w < 0 && errno != EINTR))
			return w == pid;
		if (nl_mono_ms() >= deadline)
			return false;
		sleep_ms(10);
	}
}

static void kill_and_reap(pid_t pid)
{
	int st;

	kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
}

/* Run a command to its end; 0 if it exited 0. */
static int run(const char *dir, const char *const *argv, char *why, size_t whylen)
{
	char tail[300];
	pid_t pid = spawn(dir, argv, "commands.log");
	int st = 0;

	if (pid < 0)
		return nl_errf(why, whylen, NL_ERR_IO, "cannot start %s", argv[0]);
	if (!wait_for(pid, RUN_TIMEOUT_MS * mockproc_timeout_scale(), &st)) {
		kill_and_reap(pid);
		return nl_errf(why, whylen, NL_ERR_TIMEOUT, "%s took too long", argv[0]);
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		log_tail(dir, "commands.log", tail, sizeof(tail));
		return nl_errf(why, whylen, NL_ERR_IO, "%s failed: %s", argv[0], tail);
	}
	return 0;
}

/* A port that was free a moment ago on 127.0.0.1 (bound to port 0, read back, closed). */
static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* A CA, another CA, and a server certificate for 127.0.0.1 and localhost signed by the first. */
static int make_certs(struct slapdproc *sp, char *why, size_t whylen)
{
	static const char ext[] = "[srv]\n"
	                          "basicConstraints = CA:FALSE\n"
	                          "keyUsage = digitalSignature, keyEncipherment\n"
	                          "extendedKeyUsage = serverAuth\n"
	                          "subjectAltName = IP:127.0.0.1, DNS:localhost\n";
	const char *const ca[] = {"openssl",
	                          "req",
	                          "-x509",
	                          "-newkey",
	                          "ec",
	                          "-pkeyopt",
	                          "ec_paramgen_curve:prime256v1",
	                          "-nodes",
	                          "-keyout",
	                          "ca.key",
	                          "-out",
	                          "ca.pem",
	                          "-days",
	                          "2",
	                          "-subj",
	                          "/CN=nhslogin test CA",
	                          NULL};
	const char *const other[] = {"openssl",
	                             "req",
	                             "-x509",
	                             "-newkey",
	                             "ec",
	                             "-pkeyopt",
	                             "ec_paramgen_curve:prime256v1",
	                             "-nodes",
	                             "-keyout",
	                             "other-ca.key",
	                             "-out",
	                             "other-ca.pem",
	                             "-days",
	                             "2",
	                             "-subj",
	                             "/CN=nhslogin other CA",
	                             NULL};
	const char *const csr[] = {
	    "openssl",       "req",     "-newkey",    "ec",   "-pkeyopt",   "ec_paramgen_curve:prime256v1",
	    "-nodes",        "-keyout", "server.key", "-out", "server.csr", "-subj",
	    "/CN=127.0.0.1", NULL};
	const char *const sign[] = {"openssl", "x509",        "-req",   "-in",    "server.csr",
	                            "-CA",     "ca.pem",      "-CAkey", "ca.key", "-CAcreateserial",
	                            "-out",    "server.pem",  "-days",  "2",      "-extfile",
	                            "ext.cnf", "-extensions", "srv",    NULL};
	int r;

	if (put_file(sp->dir, "ext.cnf", ext) != 0)
		return nl_errf(why, whylen, NL_ERR_IO, "cannot write ext.cnf");
	if ((r = run(sp->dir, ca, why, whylen)) != 0 || (r = run(sp->dir, other, why, whylen)) != 0 ||
	    (r = run(sp->dir, csr, why, whylen)) != 0 || (r = run(sp->dir, sign, why, whylen)) != 0)
		return r;
	snprintf(sp->ca, sizeof(sp->ca), "%s/ca.pem", sp->dir);
	snprintf(sp->other_ca, sizeof(sp->other_ca), "%s/other-ca.pem", sp->dir);
	return 0;
}

static int write_conf(const struct slapdproc *sp)
{
	char conf[4096];
	int n;

	n = snprintf(conf, sizeof(conf),
	             "include " SCHEMA_DIR "/core.schema\n"
	             "include " SCHEMA_DIR "/cosine.schema\n"
	             "include " SCHEMA_DIR "/inetorgperson.schema\n"
	             "include " SCHEMA_DIR "/nis.schema\n"
	             "pidfile %s/slapd.pid\n"
	             "argsfile %s/slapd.args\n"
	             "modulepath " MODULE_DIR "\n"
	             "moduleload back_mdb\n"
	             "%s%s%s%s%s%s%s"
	             "database mdb\n"
	             "maxsize 10485760\n"
	             "suffix \"" SLAPDPROC_SUFFIX "\"\n"
	             "rootdn \"" SLAPDPROC_BIND_DN "\"\n"
	             "rootpw " SLAPDPROC_BIND_PASSWORD "\n"
	             "directory %s/db\n",
	             sp->dir, sp->dir, sp->tls ? "TLSCACertificateFile " : "", sp->tls ? sp->ca : "",
	             sp->tls ? "\nTLSCertificateFile " : "", sp->tls ? sp->dir : "",
	             sp->tls ? "/server.pem\nTLSCertificateKeyFile " : "", sp->tls ? sp->dir : "",
	             sp->tls ? "/server.key\n" : "", sp->dir);
	if (n < 0 || (size_t)n >= sizeof(conf))
		return NL_ERR_TOO_BIG;
	return put_file(sp->dir, "slapd.conf", conf);
}

static int load_entries(const struct slapdproc *sp, const char *ldif, char *why, size_t whylen)
{
	static const char suffix[] = "dn: " SLAPDPROC_SUFFIX "\n"
	                             "objectClass: dcObject\n"
	                             "objectClass: organization\n"
	                             "o: Example\n"
	                             "dc: example\n\n";
	const char *const argv[] = {SLAPDPROC_SLAPADD, "-q", "-f", "slapd.conf", "-l", "data.ldif", NULL};
	char *all = NULL, db[300];
	int r;

	snprintf(db, sizeof(db), "%s/db", sp->dir);
	if (mkdir(db, 0700) != 0)
		return nl_errf(why, whylen, NL_ERR_IO, "mkdir %s: %s", db, strerror(errno));
	if (asprintf(&all, "%s%s", suffix, ldif != NULL ? ldif : "") < 0)
		return NL_ERR_NOMEM;
	r = put_file(sp->dir, "data.ldif", all);
	free(all);
	if (r != 0)
		return nl_errf(why, whylen, r, "cannot write data.ldif");
	return run(sp->dir, argv, why, whylen);
}

/* Until a TCP connection to port succeeds, or slapd exits, or the deadline. */
static int wait_ready(struct slapdproc *sp, int port, char *why, size_t whylen)
{
	int64_t deadline = nl_mono_ms() + SLAPDPROC_START_TIMEOUT_MS * mockproc_timeout_scale();
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	char tail[400];
	int st;

	for (;;) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool up = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

		if (fd >= 0)
			close(fd);
		if (up)
			return 0;
		if (waitpid(sp->pid, &st, WNOHANG) == sp->pid) {
			sp->pid = 0;
			log_tail(sp->dir, "slapd.log", tail, sizeof(tail));
			return nl_errf(why, whylen, NL_ERR_CLOSED, "slapd exited at start: %s", tail);
		}
		if (nl_mono_ms() >= deadline)
			return nl_errf(why, whylen, NL_ERR_TIMEOUT, "slapd did not answer within %d ms",
			               SLAPDPROC_START_TIMEOUT_MS * mockproc_timeout_scale());
		sleep_ms(20);
	}
}

static int launch(struct slapdproc *sp, char *why, size_t whylen)
{
	int port = free_port(), sport = sp->tls ? free_port() : 0;
	char urls[160];
	const char *argv[] = {SLAPDPROC_SLAPD, "-f", "slapd.conf", "-h", urls, "-d", "0", NULL};

	if (port <= 0 || sport < 0)
		return nl_errf(why, whylen, NL_ERR_IO, "no free port");
	snprintf(sp->uri, sizeof(sp->uri), "ldap://127.0.0.1:%d", port);
	if (sp->tls)
		snprintf(sp->ldaps_uri, sizeof(sp->ldaps_uri), "ldaps://127.0.0.1:%d", sport);
	snprintf(urls, sizeof(urls), "%s/%s%s%s", sp->uri, sp->tls ? " " : "", sp->tls ? sp->ldaps_uri : "",
	         sp->tls ? "/" : "");
	if ((sp->pid = spawn(sp->dir, argv, "slapd.log")) < 0) {
		sp->pid = 0;
		return nl_errf(why, whylen, NL_ERR_IO, "cannot start slapd");
	}
	return wait_ready(sp, port, why, whylen);
}

int slapdproc_start(const struct slapdproc_opts *o, struct slapdproc **out, char *why, size_t whylen)
{
	const char *tmp = getenv("TMPDIR");
	struct slapdproc *sp = calloc(1, sizeof(*sp));
	int r = NL_ERR_INTERNAL;

	*out = NULL;
	if (sp == NULL)
		return NL_ERR_NOMEM;
	sp->tls = o != NULL && o->tls;
	snprintf(sp->dir, sizeof(sp->dir), "%s/nl-slapd-XXXXXX",
	         tmp != NULL && tmp[0] == '/' && strlen(tmp) < 128 ? tmp : "/tmp");
	if (mkdtemp(sp->dir) == NULL) {
		r = nl_errf(why, whylen, NL_ERR_IO, "mkdtemp: %s", strerror(errno));
		sp->dir[0] = '\0';
		goto out;
	}
	if ((sp->tls && (r = make_certs(sp, why, whylen)) != 0) || (r = write_conf(sp)) != 0 ||
	    (r = load_entries(sp, o != NULL ? o->ldif : NULL, why, whylen)) != 0 ||
	    (r = launch(sp, why, whylen)) != 0)
		goto out;
	*out = sp;
	sp = NULL;
out:
	slapdproc_free(sp);
	return r;
}

const char *slapdproc_uri(const struct slapdproc *sp)
{
	return sp->uri;
}

const char *slapdproc_ldaps_uri(const struct slapdproc *sp)
{
	return sp->tls ? sp->ldaps_uri : NULL;
}

const char *slapdproc_ca_file(const struct slapdproc *sp)
{
	return sp->tls ? sp->ca : NULL;
}

const char *slapdproc_other_ca_file(const struct slapdproc *sp)
{
	return sp->tls ? sp->other_ca : NULL;
}

const char *slapdproc_dir(const struct slapdproc *sp)
{
	return sp->dir;
}

pid_t slapdproc_pid(const struct slapdproc *sp)
{
	return sp->pid;
}

void slapdproc_stop(struct slapdproc *sp)
{
	int st;

	if (sp == NULL || sp->pid <= 0)
		return;
	kill(sp->pid, SIGTERM);
	if (!wait_for(sp->pid, SLAPDPROC_STOP_TIMEOUT_MS, &st))
		kill_and_reap(sp->pid);
	sp->pid = 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void slapdproc_free(struct slapdproc *sp)
{
	if (sp == NULL)
		return;
	slapdproc_stop(sp);
	if (sp->dir[0] != '\0')
		nftw(sp->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(sp);
}
