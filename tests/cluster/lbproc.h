/* Test helper: a real nginx (Debian's /usr/sbin/nginx) in front of nhslogind, started from a
 * site configuration (a server block, as an operator puts in /etc/nginx/conf.d) inside a minimal
 * main configuration of our own whose pid, logs and temp files live in a temp dir. In the
 * foreground, stopped by pid; bounded waits. */
#ifndef NL_TEST_LBPROC_H
#define NL_TEST_LBPROC_H

#include <stdbool.h>
#include <sys/types.h>

struct lbproc {
	char dir[256];       /* the temp dir: nginx.conf, site.conf, error.log, access.log */
	unsigned short port; /* the port the site listens on (for the readiness check) */
	pid_t pid;
};

/* The nginx binary, or NULL when it is not installed (the caller skips with the reason). */
const char *lbproc_nginx(void);
/* Start nginx with site (the text of a server block, included inside http {}) in a new temp dir;
 * port is the one site listens on: start returns once it accepts connections (5 s at most,
 * scaled by NL_TEST_TIMEOUT_SCALE). 0, or -1 with a line on stderr (error.log's tail). */
int lbproc_start(const char *site, unsigned short port, struct lbproc *out);
/* Stop nginx (SIGTERM, then SIGKILL after 5 s) and remove the temp dir. Safe on a zeroed one. */
void lbproc_stop(struct lbproc *lb);
/* The size of a log file in the dir ("access.log"), -1 if there is none. */
long lbproc_log_size(const struct lbproc *lb, const char *name);

/* The README's text between two lines (both excluded), each line with its 4-space code indent
 * removed: a new string, or NULL if the README (in $NL_TOP_SRCDIR) has no such block. */
char *lbproc_readme_block(const char *after, const char *until);
/* Replace every occurrence of from in *s with to (*s becomes a new string); false if from is not
 * there. */
bool lbproc_replace(char **s, const char *from, const char *to);

#endif
