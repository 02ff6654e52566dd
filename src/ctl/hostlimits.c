/* Host limits for nhsloginctl check: login.defs, sshd_config (with Include) or `sshd -T`, and the
 * pam.d services that use pam_nhslogin.so. Every read is bounded; what is not understood is skipped,
 * as the programs themselves would skip or refuse it. */
#include "config.h"
#include "hostlimits.h"
#include "nl_err.h"
#include "nl_time.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SSHD_T_OUT_MAX  (64 * 1024)
#define PAMD_FILE_MAX   (64 * 1024)
#define PAMD_READS_MAX  2048 /* pam.d files read in one scan, includes counted each time */
#define PAM_TIMEOUT_MAX 3600 /* the module's own bound on timeout= */
#define NHSLOGIN_MODULE "pam_nhslogin.so"

/* ---- bounded reading ---- */

/* A regular file of at most max bytes, as a new NUL-terminated buffer. NL_ERR_NOT_FOUND when it
 * does not exist. Links are followed: these are the host's own files, only read. */
static int read_bounded(const char *path, size_t max, char **out, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd, r = NL_ERR_IO;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0)
		return errno == ENOENT || errno == ENOTDIR ? NL_ERR_NOT_FOUND : NL_ERR_IO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		goto out;
	r = NL_ERR_TOO_BIG;
	if (st.st_size < 0 || (size_t)st.st_size > max)
		goto out;
	r = NL_ERR_NOMEM;
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
		goto out;
	while (got < (size_t)st.st_size) {
		ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	buf = NULL;
	r = 0;
out:
	free(buf);
	close(fd);
	return r;
}

struct lines {
	const char *p, *end;
	unsigned no; /* the number of the line last returned */
};

/* The next line, without its newline (or CR LF), into buf; a line of size bytes or more is
 * skipped. false at the end. */
static bool next_line(struct lines *it, char *buf, size_t size)
{
	while (it->p < it->end) {
		const char *start = it->p, *nl = memchr(start, '\n', (size_t)(it->end - start));
		size_t n = (size_t)((nl != NULL ? nl : it->end) - start);

		it->p += n + (nl != NULL);
		it->no++;
		if (n >= size)
			continue;
		memcpy(buf, start, n);
		buf[n] = '\0';
		if (n > 0 && buf[n - 1] == '\r')
			buf[n - 1] = '\0';
		return true;
	}
	return false;
}

/* The next blank-separated word of *p into out ("..." without its quotes). false at the end of
 * the line or when the word does not fit. */
static bool next_word(const char **p, char *out, size_t size)
{
	const char *s = *p + strspn(*p, " \t"), *e;
	size_t n;

	if (*s == '\0')
		return false;
	if (*s == '"') {
		e = strchr(++s, '"');
		e = e != NULL ? e : s + strlen(s);
	} else {
		e = s + strcspn(s, " \t");
	}
	n = (size_t)(e - s);
	*p = *e == '"' ? e + 1 : e;
	if (n >= size)
		return false;
	memcpy(out, s, n);
	out[n] = '\0';
	return true;
}

/* A decimal number 0..INT_MAX, digits only. */
static int parse_uint(const char *s, unsigned *out)
{
	unsigned long v = 0;

	if (*s == '\0')
		return NL_ERR_INVALID;
	for (; *s != '\0'; s++) {
		if (!isdigit((unsigned char)*s) || (v = v * 10 + (unsigned long)(*s - '0')) > INT_MAX)
			return NL_ERR_INVALID;
	}
	*out = (unsigned)v;
	return 0;
}

static void limit_init(struct ctl_limit *lim, const char *path, unsigned secs)
{
	memset(lim, 0, sizeof(*lim));
	lim->secs = secs;
	snprintf(lim->file, sizeof(lim->file), "%s", path);
}

static void limit_found(struct ctl_limit *lim, unsigned secs, const char *file, unsigned line)
{
	lim->secs = secs;
	lim->found = true;
	lim->line = line;
	snprintf(lim->file, sizeof(lim->file), "%s", file);
}

/* ---- login.defs ---- */

void ctl_login_defs_parse(const char *text, size_t len, struct ctl_limit *lim)
{
	struct lines it = {text, text + len, 0};
	char line[CTL_HOST_LINE_MAX], key[64], value[64];
	const char *p;
	unsigned secs;

	while (next_line(&it, line, sizeof(line))) {
		p = line;
		if (!next_word(&p, key, sizeof(key)) || strcmp(key, "LOGIN_TIMEOUT") != 0 ||
		    !next_word(&p, value, sizeof(value)) || parse_uint(value, &secs) != 0)
			continue;
		lim->secs = secs;
		lim->found = true;
		lim->line = it.no;
	}
}

int ctl_login_defs_read(const char *path, struct ctl_limit *lim)
{
	char *text = NULL;
	size_t len = 0;
	int r;

	limit_init(lim, path, CTL_LOGIN_TIMEOUT_DEFAULT);
	if ((r = read_bounded(path, CTL_HOST_FILE_MAX, &text, &len)) != 0)
		return r;
	ctl_login_defs_parse(text, len, lim);
	free(text);
	return 0;
}

/* ---- sshd ---- */

/* Seconds in one of sshd's time units (s, m, h, d, w in either case; none is seconds); 0 for
 * anything else. */
static unsigned long unit_seconds(char c)
{
	static const char units[] = "smhdw";
	static const unsigned long secs[] = {1, 60, 3600, 86400, 604800};
	const char *u = c != '\0' ? strchr(units, tolower((unsigned char)c)) : units;

	return u != NULL ? secs[u - units] : 0;
}

int ctl_sshd_time(const char *s, unsigned *secs)
{
	unsigned long total = 0;

	if (*s == '\0')
		return NL_ERR_INVALID;
	while (*s != '\0') {
		unsigned long n = 0, mult;
		if (!isdigit((unsigned char)*s))
			return NL_ERR_INVALID;
		for (; isdigit((unsigned char)*s); s++)
			if ((n = n * 10 + (unsigned long)(*s - '0')) > INT_MAX)
				return NL_ERR_INVALID;
		if ((mult = unit_seconds(*s)) == 0)
			return NL_ERR_INVALID;
		if (*s != '\0')
			s++;
		if (n > INT_MAX / mult || total > INT_MAX - n * mult)
			return NL_ERR_INVALID;
		total += n * mult;
	}
	*secs = (unsigned)total;
	return 0;
}

struct sshd_read {
	struct ctl_limit *lim;
	char sshdir[PATH_MAX]; /* where relative Include patterns start */
	unsigned files;        /* files read so far */
};

static int sshd_file(struct sshd_read *s, const char *path, unsigned depth);

/* An sshd_config line's keyword into key, and *p past it and its "=" or blanks. false for a blank
 * or comment line. */
static bool sshd_keyword(const char **p, char *key, size_t size)
{
	const char *s = *p + strspn(*p, " \t");
	size_t n = strcspn(s, " \t=");

	if (*s == '\0' || *s == '#' || n == 0 || n >= size)
		return false;
	memcpy(key, s, n);
	key[n] = '\0';
	s += n;
	s += strspn(s, " \t");
	if (*s == '=')
		s++;
	*p = s;
	return true;
}

static void sshd_include(struct sshd_read *s, const char *args, unsigned depth)
{
	char word[PATH_MAX], pattern[PATH_MAX];
	const char *p = args;
	glob_t g;

	while (!s->lim->found && next_word(&p, word, sizeof(word))) {
		int n = word[0] == '/' ? snprintf(pattern, sizeof(pattern), "%s", word)
		                       : snprintf(pattern, sizeof(pattern), "%s/%s", s->sshdir, word);
		if (n < 0 || (size_t)n >= sizeof(pattern))
			continue;
		memset(&g, 0, sizeof(g));
		if (glob(pattern, 0, NULL, &g) == 0)
			for (size_t i = 0; i < g.gl_pathc && !s->lim->found; i++)
				sshd_file(s, g.gl_pathv[i], depth + 1);
		globfree(&g);
	}
}

static void sshd_grace(struct sshd_read *s, const char *args, const char *path, unsigned line)
{
	char value[64];
	unsigned secs;

	/* sshd refuses to start on a bad value; the next one is what a fixed file would give. */
	if (next_word(&args, value, sizeof(value)) && ctl_sshd_time(value, &secs) == 0)
		limit_found(s->lim, secs, path, line);
}

/* One sshd_config file, until LoginGraceTime is found; a Match block ends what applies globally. */
static int sshd_file(struct sshd_read *s, const char *path, unsigned depth)
{
	char line[CTL_HOST_LINE_MAX], key[64], *text = NULL;
	const char *p;
	size_t len = 0;
	int r;

	if (depth > CTL_SSHD_MAX_DEPTH || s->files >= CTL_SSHD_MAX_FILES)
		return 0;
	s->files++;
	if ((r = read_bounded(path, CTL_HOST_FILE_MAX, &text, &len)) != 0)
		return r;
	struct lines it = {text, text + len, 0};
	while (!s->lim->found && next_line(&it, line, sizeof(line))) {
		p = line;
		if (!sshd_keyword(&p, key, sizeof(key)))
			continue;
		if (strcasecmp(key, "Match") == 0)
			break;
		if (strcasecmp(key, "Include") == 0)
			sshd_include(s, p, depth);
		else if (strcasecmp(key, "LoginGraceTime") == 0)
			sshd_grace(s, p, path, it.no);
	}
	free(text);
	return 0;
}

int ctl_sshd_config_read(const char *path, struct ctl_limit *lim)
{
	struct sshd_read s = {.lim = lim};
	const char *slash = strrchr(path, '/');

	limit_init(lim, path, CTL_LOGIN_GRACE_DEFAULT);
	if (slash == NULL)
		snprintf(s.sshdir, sizeof(s.sshdir), ".");
	else
		snprintf(s.sshdir, sizeof(s.sshdir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	return sshd_file(&s, path, 0);
}

int ctl_sshd_T_parse(const char *text, size_t len, unsigned *secs)
{
	struct lines it = {text, text + len, 0};
	char line[CTL_HOST_LINE_MAX], key[64], value[64];
	const char *p;

	while (next_line(&it, line, sizeof(line))) {
		p = line;
		if (next_word(&p, key, sizeof(key)) && strcasecmp(key, "logingracetime") == 0 &&
		    next_word(&p, value, sizeof(value)) && ctl_sshd_time(value, secs) == 0)
			return 0;
	}
	return NL_ERR_NOT_FOUND;
}

static const char *find_sshd(void)
{
	static const char *const paths[] = {"/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

/* sshd -T with stdin and stderr on /dev/null; *out_fd reads its stdout. */
static pid_t spawn_sshd_T(const char *sshd, int *out_fd)
{
	int p[2], null;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	if ((pid = fork()) < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(p[1], STDOUT_FILENO) < 0 ||
		    dup2(null, STDERR_FILENO) < 0)
			_exit(127);
		execl(sshd, sshd, "-T", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	*out_fd = p[0];
	return pid;
}

/* All of fd (less than cap bytes) into buf before the deadline. */
static int read_until_eof(int fd, char *buf, size_t cap, size_t *len, int64_t deadline)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	*len = 0;
	for (;;) {
		int left = (int)(deadline - nl_mono_ms()), pr;
		ssize_t k;
		if (left <= 0 || (pr = poll(&pfd, 1, left)) == 0)
			return NL_ERR_TIMEOUT;
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0 || ((k = read(fd, buf + *len, cap - 1 - *len)) < 0 && errno != EINTR))
			return NL_ERR_IO;
		if (k == 0)
			break;
		if (k > 0 && (*len += (size_t)k) >= cap - 1)
			return NL_ERR_TOO_BIG;
	}
	buf[*len] = '\0';
	return 0;
}

/* Wait for pid until the deadline (or not at all when kill_now), then kill it. 0 if it exited 0. */
static int reap(pid_t pid, int64_t deadline, bool kill_now)
{
	int st = 0;

	while (!kill_now) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : NL_ERR_UNAVAILABLE;
		if ((w < 0 && errno != EINTR) || nl_mono_ms() >= deadline)
			break;
		poll(NULL, 0, 5);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return NL_ERR_TIMEOUT;
}

int ctl_sshd_T_read(int timeout_ms, struct ctl_limit *lim)
{
	const char *sshd = find_sshd();
	int64_t deadline = nl_mono_ms() + timeout_ms;
	size_t len = 0;
	unsigned secs = 0;
	char *out;
	int fd = -1, r, rr;
	pid_t pid;

	if (sshd == NULL)
		return NL_ERR_NOT_FOUND;
	if ((out = malloc(SSHD_T_OUT_MAX)) == NULL)
		return NL_ERR_NOMEM;
	if ((pid = spawn_sshd_T(sshd, &fd)) < 0) {
		free(out);
		return NL_ERR_IO;
	}
	r = read_until_eof(fd, out, SSHD_T_OUT_MAX, &len, deadline);
	close(fd);
	rr = reap(pid, deadline, r != 0);
	if (r == 0 && (r = rr) == 0 && (r = ctl_sshd_T_parse(out, len, &secs)) == 0) {
		limit_found(lim, secs, "sshd -T", 0);
	}
	free(out);
	return r;
}

/* ---- pam.d ---- */

/* The next word of a pam.d line; a [...] group is one word, brackets kept. A word too long for
 * out comes back empty (and so matches nothing). */
static bool pam_word(const char **p, char *out, size_t size)
{
	const char *s = *p + strspn(*p, " \t"), *e;
	size_t n;

	if (*s == '\0')
		return false;
	if (*s == '[') {
		e = strchr(s, ']');
		e = e != NULL ? e + 1 : s + strlen(s);
	} else {
		e = s + strcspn(s, " \t");
	}
	n = (size_t)(e - s);
	*p = e;
	if (n >= size)
		n = 0;
	memcpy(out, s, n);
	out[n] = '\0';
	return true;
}

static bool is_nhslogin(const char *module)
{
	const char *base = strrchr(module, '/');
	return strcmp(base != NULL ? base + 1 : module, NHSLOGIN_MODULE) == 0;
}

static void set_target(struct ctl_pam_line *out, const char *name)
{
	if (name[0] != '\0' && strlen(name) < sizeof(out->target)) {
		out->kind = CTL_PAM_INCLUDE;
		snprintf(out->target, sizeof(out->target), "%s", name);
	}
}

/* timeout= as the module takes it (0..3600; the last one wins); -1 when there is none. */
static int line_timeout(const char *args)
{
	char arg[64];
	unsigned v;
	int t = -1;

	while (pam_word(&args, arg, sizeof(arg)))
		if (strncmp(arg, "timeout=", 8) == 0 && parse_uint(arg + 8, &v) == 0 && v <= PAM_TIMEOUT_MAX)
			t = (int)v;
	return t;
}

void ctl_pam_parse_line(const char *line, struct ctl_pam_line *out)
{
	char buf[CTL_HOST_LINE_MAX], type[32], control[512], module[512];
	const char *p = buf;

	memset(out, 0, sizeof(*out));
	out->timeout = -1;
	snprintf(buf, sizeof(buf), "%s", line);
	buf[strcspn(buf, "#")] = '\0'; /* as libpam: a comment runs from # to the end of the line */
	if (!pam_word(&p, type, sizeof(type)))
		return;
	if (strcmp(type, "@include") == 0) {
		if (pam_word(&p, module, sizeof(module)))
			set_target(out, module);
		return;
	}
	if (strcasecmp(type + (type[0] == '-'), "auth") != 0 || !pam_word(&p, control, sizeof(control)) ||
	    !pam_word(&p, module, sizeof(module)))
		return;
	if (strcmp(control, "include") == 0 || strcmp(control, "substack") == 0) {
		set_target(out, module);
	} else if (is_nhslogin(module)) {
		out->kind = CTL_PAM_MODULE;
		out->timeout = line_timeout(p);
	}
}

bool ctl_pamd_is_fragment(const char *name)
{
	static const char *const shared[] = {"password-auth", "smartcard-auth", "fingerprint-auth",
	                                     "postlogin", "config-util"};

	if (strncmp(name, "common-", 7) == 0 || strncmp(name, "system-", 7) == 0)
		return true;
	for (size_t i = 0; i < sizeof(shared) / sizeof(shared[0]); i++)
		if (strcmp(name, shared[i]) == 0)
			return true;
	return false;
}

struct pamd_scan {
	const char *dir;
	const char *service;
	struct ctl_pam_use *uses;
	size_t max, n;
	unsigned reads;
};

/* The next logical pam.d line: one ending in a backslash goes on in the next, as libpam joins
 * them. *first is the number of its first line. A joined line too long comes back empty. */
static bool next_pam_line(struct lines *it, char *buf, size_t size, unsigned *first)
{
	char part[CTL_HOST_LINE_MAX];
	size_t n = 0;
	bool any = false, fits = true;

	while (next_line(it, part, sizeof(part))) {
		size_t k = strlen(part);
		bool more = k > 0 && part[k - 1] == '\\';
		if (!any)
			*first = it->no;
		any = true;
		if (more)
			part[k - 1] = ' ';
		if (fits && n + k < size) {
			memcpy(buf + n, part, k);
			n += k;
		} else {
			fits = false;
		}
		if (!more)
			break;
	}
	buf[fits ? n : 0] = '\0';
	return any;
}

static void add_use(struct pamd_scan *s, const char *file, unsigned line, int timeout)
{
	struct ctl_pam_use *u;

	if (s->n >= s->max)
		return;
	u = &s->uses[s->n++];
	snprintf(u->service, sizeof(u->service), "%s", s->service);
	snprintf(u->file, sizeof(u->file), "%s", file);
	u->line = line;
	u->timeout = timeout;
}

static void pamd_file(struct pamd_scan *s, const char *path, unsigned depth)
{
	char line[CTL_HOST_LINE_MAX], sub[PATH_MAX], *text = NULL;
	struct ctl_pam_line pl;
	unsigned first = 0;
	size_t len = 0;

	if (depth > CTL_PAMD_MAX_DEPTH || s->reads >= PAMD_READS_MAX)
		return;
	s->reads++;
	if (read_bounded(path, PAMD_FILE_MAX, &text, &len) != 0)
		return;
	struct lines it = {text, text + len, 0};
	while (next_pam_line(&it, line, sizeof(line), &first)) {
		ctl_pam_parse_line(line, &pl);
		if (pl.kind == CTL_PAM_MODULE) {
			add_use(s, path, first, pl.timeout);
		} else if (pl.kind == CTL_PAM_INCLUDE) {
			int n = pl.target[0] == '/' ? snprintf(sub, sizeof(sub), "%s", pl.target)
			                            : snprintf(sub, sizeof(sub), "%s/%s", s->dir, pl.target);
			if (n > 0 && (size_t)n < sizeof(sub))
				pamd_file(s, sub, depth + 1);
		}
	}
	free(text);
}

static int is_service_entry(const struct dirent *d)
{
	const char *n = d->d_name;
	return n[0] != '\0' && strpbrk(n, ".~") == NULL &&
	       strlen(n) < sizeof(((struct ctl_pam_use *)0)->service) && !ctl_pamd_is_fragment(n);
}

int ctl_pamd_scan(const char *dir, struct ctl_pam_use *uses, size_t max, size_t *n)
{
	struct pamd_scan s = {.dir = dir, .uses = uses, .max = max};
	struct dirent **names = NULL;
	char path[PATH_MAX];
	int count;

	*n = 0;
	if ((count = scandir(dir, &names, is_service_entry, alphasort)) < 0)
		return errno == ENOENT || errno == ENOTDIR ? NL_ERR_NOT_FOUND : NL_ERR_IO;
	for (int i = 0; i < count; i++) {
		int k = snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		if (i < CTL_PAMD_MAX_FILES && k > 0 && (size_t)k < sizeof(path)) {
			s.service = names[i]->d_name;
			pamd_file(&s, path, 0);
		}
		free(names[i]);
	}
	free(names);
	*n = s.n;
	return 0;
}
