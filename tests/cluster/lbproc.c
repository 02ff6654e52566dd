/* A real nginx for the tests (lbproc.h). */
#include "config.h"
#include "lbproc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mockproc.h"
#include "nl_time.h"

#define NGINX_BIN   "/usr/sbin/nginx"
#define LB_READY_MS 30000 /* a hang bound */
#define LB_STOP_MS  5000

const char *lbproc_nginx(void)
{
	return access(NGINX_BIN, X_OK) == 0 ? NGINX_BIN : NULL;
}

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (f == NULL)
		return -1;
	ok = fputs(text, f) >= 0;
	return fclose(f) == 0 && ok ? 0 : -1;
}

static bool accepts(unsigned short port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return false;
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static void show_error_log(const struct lbproc *lb)
{
	char path[300], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/error.log", lb->dir);
	if ((f = fopen(path, "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		fprintf(stderr, "# nginx: %s", line);
	fclose(f);
}

int lbproc_start(const char *site, unsigned short port, struct lbproc *out)
{
	char path[300], *main_conf = NULL, conf[300], errlog[300];
	const char *bin = lbproc_nginx();
	int64_t deadline;

	memset(out, 0, sizeof(*out));
	out->pid = -1;
	out->port = port;
	if (bin == NULL)
		return -1;
	snprintf(out->dir, sizeof(out->dir), "/tmp/nl-lb.XXXXXX");
	if (mkdtemp(out->dir) == NULL || chmod(out->dir, 0755) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/tmp", out->dir);
	/* as root the workers are nobody's: they write request bodies and proxied answers here */
	if (mkdir(path, 0777) != 0 || chmod(path, 0777) != 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/site.conf", out->dir);
	if (write_text(path, site) != 0)
		goto fail;
	if (asprintf(&main_conf,
	             "%s"
	             "worker_processes 1;\n"
	             "daemon off;\n"
	             "pid %s/nginx.pid;\n"
	             "error_log %s/error.log info;\n"
	             "events { worker_connections 256; }\n"
	             "http {\n"
	             "    access_log %s/access.log;\n"
	             "    client_body_temp_path %s/tmp/body;\n"
	             "    proxy_temp_path %s/tmp/proxy;\n"
	             "    fastcgi_temp_path %s/tmp/fastcgi;\n"
	             "    uwsgi_temp_path %s/tmp/uwsgi;\n"
	             "    scgi_temp_path %s/tmp/scgi;\n"
	             "    include %s/site.conf;\n"
	             "}\n",
	             geteuid() == 0 ? "user nobody nogroup;\n" : "", out->dir, out->dir, out->dir, out->dir,
	             out->dir, out->dir, out->dir, out->dir, out->dir) < 0) {
		main_conf = NULL;
		goto fail;
	}
	snprintf(conf, sizeof(conf), "%s/nginx.conf", out->dir);
	if (write_text(conf, main_conf) != 0)
		goto fail;
	snprintf(errlog, sizeof(errlog), "%s/error.log", out->dir);
	out->pid = fork();
	if (out->pid < 0)
		goto fail;
	if (out->pid == 0) {
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
		}
		/* -e: nginx's own first error lines go to our log, not /var/log/nginx */
		execl(bin, bin, "-e", errlog, "-p", out->dir, "-c", conf, (char *)NULL);
		_exit(127);
	}
	deadline = nl_mono_ms() + (int64_t)LB_READY_MS * mockproc_timeout_scale();
	while (nl_mono_ms() < deadline) {
		if (accepts(port)) {
			free(main_conf);
			return 0;
		}
		if (waitpid(out->pid, NULL, WNOHANG) == out->pid) {
			out->pid = -1;
			break;
		}
		usleep(20000);
	}
	fprintf(stderr, "# nginx did not start on port %u\n", port);
	show_error_log(out);
fail:
	free(main_conf);
	lbproc_stop(out);
	return -1;
}

void lbproc_stop(struct lbproc *lb)
{
	char cmd[400];

	int st;

	if (lb->pid > 0) {
		kill(lb->pid, SIGTERM);
		if (!mockproc_wait_pid(lb->pid, LB_STOP_MS, &st)) {
			kill(lb->pid, SIGKILL);
			waitpid(lb->pid, NULL, 0);
		}
		lb->pid = -1;
	}
	if (strncmp(lb->dir, "/tmp/nl-lb.", 11) == 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", lb->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "# could not remove %s\n", lb->dir);
	}
	lb->dir[0] = '\0';
}

long lbproc_log_size(const struct lbproc *lb, const char *name)
{
	char path[300];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", lb->dir, name);
	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

char *lbproc_readme_block(const char *after, const char *until)
{
	char path[PATH_MAX], line[512];
	const char *src = getenv("NL_TOP_SRCDIR");
	char *buf = NULL;
	size_t len = 0;
	FILE *f, *out;
	bool in = false;

	snprintf(path, sizeof(path), "%s/README.md", src != NULL ? src : ".");
	if ((f = fopen(path, "r")) == NULL || (out = open_memstream(&buf, &len)) == NULL) {
		if (f != NULL)
			fclose(f);
		return NULL;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (!in) {
			in = strcmp(line, after) == 0;
			continue;
		}
		if (strcmp(line, until) == 0)
			break;
		fputs(strncmp(line, "    ", 4) == 0 ? line + 4 : line, out);
	}
	fclose(f);
	fclose(out);
	if (!in || len == 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

bool lbproc_replace(char **s, const char *from, const char *to)
{
	char *at, *n = NULL;
	size_t done = 0;
	bool any = false;

	while ((at = strstr(*s + done, from)) != NULL) {
		size_t pre = (size_t)(at - *s);
		if (asprintf(&n, "%.*s%s%s", (int)pre, *s, to, at + strlen(from)) < 0)
			return false;
		free(*s);
		*s = n;
		done = pre + strlen(to);
		any = true;
	}
	return any;
}
