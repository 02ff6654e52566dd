/* Configuration: good files load with the expected values and defaults; every kind of mistake
 * is refused with FILE:LINE; unsafe files are refused; the shipped files parse. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nl_config.h"
#include "nl_err.h"
#include "nl_policy.h"
#include "skip.h"

#ifndef NL_TEST_SRCDIR
#define NL_TEST_SRCDIR "."
#endif

/* A scratch directory: DIR/nhslogin.conf, DIR/environments/test.conf, DIR/keys/client.pem. */
struct fx {
	char dir[PATH_MAX / 2];
	char main[PATH_MAX];
	char err[1024];
	struct nl_config cfg;
};

static const char *const GOOD_MAIN = "environment = test\n"
                                     "[identity]\n"
                                     "map_file = users.map\n";
static const char *const GOOD_ENV = "issuer = https://auth.sandpit.signin.nhs.uk\n"
                                    "client_id = test-client\n"
                                    "client_key = ../keys/client.pem\n"
                                    "redirect_uri = https://signin.example.org/callback\n";

static const char *srcdir(void)
{
	const char *s = getenv("NL_TOP_SRCDIR");
	return s != NULL ? s : NL_TEST_SRCDIR;
}

static void put(const struct fx *f, const char *name, const char *text, size_t len, mode_t mode)
{
	char path[PATH_MAX * 2];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	/* fchmod, not the umask or the checkout's modes: git keeps only +x. */
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void puts_file(const struct fx *f, const char *name, const char *text, mode_t mode)
{
	put(f, name, text, strlen(text), mode);
}

/* Read a file of the source tree into a new string. */
static char *slurp(const char *rel)
{
	char path[PATH_MAX];
	char *buf;
	FILE *fp;
	long n;

	snprintf(path, sizeof(path), "%s/%s", srcdir(), rel);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	assert_true(n >= 0);
	rewind(fp);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

/* A new string: text with every occurrence of from replaced by to. */
static char *replace_all(const char *text, const char *from, const char *to)
{
	size_t cap = strlen(text) * 2 + 1024, o = 0;
	char *out = malloc(cap);
	const char *p = text, *hit;

	assert_non_null(out);
	while ((hit = strstr(p, from)) != NULL) {
		assert_true(o + (size_t)(hit - p) + strlen(to) < cap);
		memcpy(out + o, p, (size_t)(hit - p));
		o += (size_t)(hit - p);
		memcpy(out + o, to, strlen(to));
		o += strlen(to);
		p = hit + strlen(from);
	}
	assert_true(o + strlen(p) < cap);
	strcpy(out + o, p);
	return out;
}

/* A new string: text with the '#' dropped from every line "#key ..." (documented defaults). */
static char *uncomment_keys(const char *text)
{
	char *out = strdup(text);
	size_t o = 0;

	assert_non_null(out);
	for (size_t i = 0; text[i] != '\0'; i++) {
		if (text[i] == '#' && (i == 0 || text[i - 1] == '\n') && text[i + 1] >= 'a' &&
		    text[i + 1] <= 'z')
			continue;
		out[o++] = text[i];
	}
	out[o] = '\0';
	return out;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");
	char sub[PATH_MAX + 32];

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/nl-config-XXXXXX", tmp != NULL && tmp[0] == '/' ? tmp : "/tmp");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(sub, sizeof(sub), "%s/environments", f->dir);
	if (mkdir(sub, 0755) != 0)
		return -1;
	snprintf(sub, sizeof(sub), "%s/keys", f->dir);
	if (mkdir(sub, 0700) != 0)
		return -1;
	snprintf(f->main, sizeof(f->main), "%s/nhslogin.conf", f->dir);
	nl_config_init(&f->cfg);
	*state = f;
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	nl_config_free(&f->cfg);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Write main and env (0644) and a 0600 key, then load. */
static int load(struct fx *f, const char *main_text, const char *env_text, unsigned flags)
{
	puts_file(f, "nhslogin.conf", main_text, 0644);
	if (env_text != NULL)
		puts_file(f, "environments/test.conf", env_text, 0644);
	puts_file(f, "keys/client.pem", "-----BEGIN PRIVATE KEY-----\n", 0600);
	f->err[0] = '\0';
	return nl_config_load(f->main, &f->cfg, flags, f->err, sizeof(f->err));
}

/* The load fails with a message that names file:line (or just the file) and the reason. */
static void assert_fails(struct fx *f, const char *main_text, const char *env_text, const char *where,
                         const char *reason)
{
	int r = load(f, main_text, env_text, 0);

	print_message("# %s\n", f->err);
	assert_true(r < 0);
	assert_non_null(strstr(f->err, where));
	assert_non_null(strstr(f->err, reason));
}

static void test_config_good_files_load_with_expected_values(void **state)
{
	struct fx *f = *state;
	char *m = slurp("tests/unit/data/config/good/nhslogin.conf");
	char *e = slurp("tests/unit/data/config/good/environments/test.conf");
	char real[PATH_MAX], want[PATH_MAX * 2];

	assert_int_equal(load(f, m, e, 0), 0);
	assert_non_null(realpath(f->dir, real));
	snprintf(want, sizeof(want), "%s/run/nhslogind.sock", real);
	assert_string_equal(f->cfg.socket_path, want);
	snprintf(want, sizeof(want), "%s/environments/../keys/client.pem", real);
	assert_string_equal(f->cfg.env.client_key, want);
	snprintf(want, sizeof(want), "%s/environments/test.conf", real);
	assert_string_equal(f->cfg.env.path, want);
	assert_string_equal(f->cfg.environment, "test");
	assert_string_equal(f->cfg.env.name, "test");
	assert_string_equal(f->cfg.socket_group, "nhslogin");
	assert_int_equal(f->cfg.flow_ttl, 120);
	assert_int_equal(f->cfg.max_flows, 50);
	assert_int_equal(f->cfg.wait_max, 10);
	assert_true(f->cfg.debug);
	assert_string_equal(f->cfg.listen, "[::1]:8443");
	assert_string_equal(f->cfg.public_url, "https://signin.example.org");
	assert_int_equal(f->cfg.code_attempts, 5);
	assert_int_equal(f->cfg.claim, NL_CLAIM_EMAIL);
	assert_int_equal(f->cfg.rule, NL_MAP_EMAIL_LOCAL);
	assert_string_equal(f->cfg.email_domain, "example.org");
	assert_int_equal(f->cfg.min_level, 5);
	assert_int_equal(f->cfg.reuse_window, 600);
	assert_true(f->cfg.userinfo);
	assert_int_equal(f->cfg.pam_timeout, 120);
	assert_true(f->cfg.pam_noqr);
	assert_int_equal(f->cfg.pam_noninteractive, NL_NONINTERACTIVE_DENY);
	assert_string_equal(f->cfg.env.issuer, "https://auth.sandpit.signin.nhs.uk");
	assert_string_equal(f->cfg.env.client_id, "test-client");
	assert_string_equal(f->cfg.env.scope, "openid profile email");
	assert_string_equal(f->cfg.env.vtr, "[\"P5.Cp.Cd\",\"P9.Cp.Cd\"]");
	assert_string_equal(f->cfg.env.redirect_uri, "https://signin.example.org/callback");
	assert_int_equal(f->cfg.env.n_allowed_algs, 2);
	assert_string_equal(f->cfg.env.allowed_algs[0], "RS512");
	assert_string_equal(f->cfg.env.allowed_algs[1], "PS512");
	/* keys the files leave alone keep their defaults */
	assert_int_equal(f->cfg.max_flows_per_user, 3);
	assert_int_equal(f->cfg.http_timeout, 10);
	assert_false(f->cfg.pam_debug);
	assert_null(f->cfg.env.ca_file);
	assert_int_equal(f->cfg.env.flow, NL_FLOW_BRIDGE);
	free(m);
	free(e);
}

static void test_config_minimal_files_get_defaults(void **state)
{
	struct fx *f = *state;
	char real[PATH_MAX], want[PATH_MAX * 2];

	assert_int_equal(load(f, GOOD_MAIN, GOOD_ENV, 0), 0);
	assert_non_null(realpath(f->dir, real));
	snprintf(want, sizeof(want), "%s/environments", real);
	assert_string_equal(f->cfg.environments_dir, want);
	snprintf(want, sizeof(want), "%s/users.map", real);
	assert_string_equal(f->cfg.map_file, want);
	assert_string_equal(f->cfg.socket_path, NL_DEFAULT_SOCKET);
	assert_null(f->cfg.socket_group);
	assert_int_equal(f->cfg.flow_ttl, 300);
	assert_int_equal(f->cfg.max_flows, 1024);
	assert_int_equal(f->cfg.wait_max, 25);
	assert_int_equal(f->cfg.code_attempts, 10);
	assert_string_equal(f->cfg.listen, "127.0.0.1:8765");
	assert_string_equal(f->cfg.public_url, "http://127.0.0.1:8765");
	assert_int_equal(f->cfg.claim, NL_CLAIM_NHS_NUMBER);
	assert_int_equal(f->cfg.rule, NL_MAP_FILE);
	assert_int_equal(f->cfg.min_level, 9);
	assert_int_equal(f->cfg.reuse_window, 0);
	assert_int_equal(f->cfg.pam_noninteractive, NL_NONINTERACTIVE_IGNORE);
	assert_string_equal(f->cfg.env.scope, "openid profile");
	assert_string_equal(f->cfg.env.vtr, "[\"P9.Cp.Cd\",\"P9.Cp.Ck\",\"P9.Cm\"]");
	assert_int_equal(f->cfg.env.n_allowed_algs, 1);
	assert_string_equal(f->cfg.env.allowed_algs[0], "RS512");
}

static void test_config_unknown_key_names_file_and_line(void **state)
{
	assert_fails(*state, "environment = test\n[daemon]\n\nflow_tll = 30\n", GOOD_ENV,
	             "/nhslogin.conf:4: ", "unknown key 'flow_tll'");
}

/* A misspelt key gets the nearest name of its section; a key in the wrong section gets its own. */
static void test_config_unknown_key_says_did_you_mean(void **state)
{
	assert_fails(*state, "environment = test\n[daemon]\n\nflow_tll = 30\n", GOOD_ENV,
	             "/nhslogin.conf:4: ", "did you mean 'flow_ttl'?");
	assert_fails(
	    *state, "environment = test\n[daemon]\nlisten = 127.0.0.1:9\n", GOOD_ENV,
	    "/nhslogin.conf:3: ", "unknown key 'listen' in [daemon] - did you mean 'listen' in [bridge]?");
	assert_fails(*state, GOOD_MAIN, "isuer = https://a.example\n",
	             "/environments/test.conf:1: ", "did you mean 'issuer'?");
	/* Nothing near: no guess. */
	assert_fails(*state, "environment = test\n[daemon]\nfrobnicate = 1\n", GOOD_ENV,
	             "/nhslogin.conf:3: ", "unknown key 'frobnicate' in [daemon]");
	assert_null(strstr(((struct fx *)*state)->err, "did you mean"));
}

/* environment = NAME with no environments/NAME.conf: the line of environment =, and the names
 * that exist. */
static void test_config_unknown_environment_points_at_its_line(void **state)
{
	assert_fails(*state, "# site\n\nenvironment = sandpt\n", GOOD_ENV,
	             "/nhslogin.conf:3: ", "environment = sandpt: there is no ");
	assert_non_null(strstr(((struct fx *)*state)->err, "/sandpt.conf; the environments there are: test"));
}

/* Both placeholders in one message, so that one round of editing fixes them. */
static void test_config_placeholders_reported_together(void **state)
{
	assert_fails(*state, GOOD_MAIN,
	             "issuer = https://a.example\nclient_id = REPLACE-WITH-YOUR-CLIENT-ID\n"
	             "client_key = ../keys/client.pem\n"
	             "redirect_uri = https://REPLACE-WITH-YOUR-HOST/nhslogin/callback\n",
	             "/environments/test.conf: ", "client_id is still the placeholder");
	assert_non_null(strstr(((struct fx *)*state)->err, "redirect_uri is still the placeholder"));
}

static void test_config_duplicate_key_names_file_and_line(void **state)
{
	assert_fails(*state, GOOD_MAIN,
	             "issuer = https://a.example\nclient_id = x\nissuer = https://a.example\n",
	             "/environments/test.conf:3: ", "duplicate key 'issuer'");
}

static void test_config_unknown_section_names_file_and_line(void **state)
{
	assert_fails(*state, "environment = test\n# comment\n[deamon]\n", GOOD_ENV,
	             "/nhslogin.conf:3: ", "unknown section [deamon]");
}

static void test_config_env_file_refuses_sections(void **state)
{
	assert_fails(*state, GOOD_MAIN, "[env]\nissuer = https://a.example\n",
	             "/environments/test.conf:1: ", "no [sections]");
}

static void test_config_bad_number_names_file_and_line(void **state)
{
	assert_fails(*state, "environment = test\n[daemon]\nflow_ttl = 5m\n", GOOD_ENV,
	             "/nhslogin.conf:3: ", "not a number");
}

static void test_config_number_out_of_range_names_file_and_line(void **state)
{
	assert_fails(*state, "environment = test\n[daemon]\nwait_max = 61\n", GOOD_ENV,
	             "/nhslogin.conf:3: ", "out of range 1..60");
}

static void test_config_bad_boolean_names_file_and_line(void **state)
{
	assert_fails(*state, "environment = test\n[pam]\ndebug = maybe\n", GOOD_ENV,
	             "/nhslogin.conf:3: ", "not a boolean");
}

static void test_config_line_without_equals_names_file_and_line(void **state)
{
	assert_fails(*state, "environment = test\n[pam]\ndebug\n", GOOD_ENV,
	             "/nhslogin.conf:3: ", "expected 'key = value'");
}

static void test_config_inline_comment_refused(void **state)
{
	assert_fails(*state, "environment = test\n[daemon]\nsocket_group = wheel # admins\n", GOOD_ENV,
	             "/nhslogin.conf:3: ", "own line");
}

static void test_config_http_issuer_on_public_host_refused(void **state)
{
	assert_fails(*state, GOOD_MAIN, "client_id = x\nissuer = http://auth.sandpit.signin.nhs.uk\n",
	             "/environments/test.conf:2: ", "only on loopback");
}

static void test_config_http_issuer_on_loopback_accepted(void **state)
{
	struct fx *f = *state;
	const char *ok[] = {"http://127.0.0.1:9000", "http://127.8.9.10", "http://[::1]:9000",
	                    "http://localhost:9000/x"};
	const char *bad[] = {
	    "http://10.0.0.1",         "http://[::2]:80",          "http://localhost.evil.example",
	    "ftp://127.0.0.1",         "https://user@example.org", "https://example.org/#frag",
	    "https://example.org?q=1", "https://example.org:0",    "https://exa mple.org"};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_int_equal(nl_config_set(&f->cfg, "env", "issuer", ok[i], f->err, sizeof(f->err)), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_true(nl_config_set(&f->cfg, "env", "issuer", bad[i], f->err, sizeof(f->err)) < 0);
		assert_string_equal(f->cfg.env.issuer, ok[3]); /* a refused value changes nothing */
	}
}

static void test_config_alg_none_refused(void **state)
{
	assert_fails(*state, GOOD_MAIN, "issuer = https://a.example\nallowed_algs = RS512 none\n",
	             "/environments/test.conf:2: ", "alg none is never allowed");
}

static void test_config_alg_hs256_refused(void **state)
{
	assert_fails(*state, GOOD_MAIN, "allowed_algs = RS512,HS256\n",
	             "/environments/test.conf:1: ", "HS256 is never allowed");
}

static void test_config_unknown_alg_refused(void **state)
{
	struct fx *f = *state;

	assert_true(nl_config_set(&f->cfg, "env", "allowed_algs", "RS512 XX999", f->err, sizeof(f->err)) < 0);
	assert_true(nl_config_set(&f->cfg, "env", "allowed_algs", " , ", f->err, sizeof(f->err)) < 0);
	assert_int_equal(f->cfg.env.n_allowed_algs, 1);
	assert_string_equal(f->cfg.env.allowed_algs[0], "RS512");
}

static void test_config_missing_required_key_names_env_file(void **state)
{
	assert_fails(*state, GOOD_MAIN,
	             "issuer = https://a.example\nclient_key = ../keys/client.pem\n"
	             "redirect_uri = https://a.example/cb\n",
	             "/environments/test.conf: ", "client_id is required");
}

static void test_config_placeholder_client_id_refused(void **state)
{
	assert_fails(*state, GOOD_MAIN,
	             "issuer = https://a.example\nclient_id = REPLACE-WITH-YOUR-CLIENT-ID\n"
	             "client_key = ../keys/client.pem\nredirect_uri = https://a.example/cb\n",
	             "/environments/test.conf: ", "placeholder");
}

static void test_config_bad_environment_name_refused(void **state)
{
	assert_fails(*state, "# x\nenvironment = ../../etc/passwd\n", NULL,
	             "/nhslogin.conf:2: ", "environment name");
}

static void test_config_missing_environment_refused(void **state)
{
	assert_fails(*state, "[identity]\nmap_file = m\n", NULL,
	             "/nhslogin.conf: ", "environment is not set");
}

static void test_config_vtr_must_be_array_of_vectors(void **state)
{
	struct fx *f = *state;
	const char *bad[] = {"P9.Cp.Cd",     "[]",  "[\"P9\"]",  "[\"P7.Cp\"]",
	                     "[\"P9.Cp.\"]", "[1]", "{\"a\":1}", "[\"P9.Cp\",[\"P9.Cm\"]]"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_true(nl_config_set(&f->cfg, "env", "vtr", bad[i], f->err, sizeof(f->err)) < 0);
	assert_int_equal(
	    nl_config_set(&f->cfg, "env", "vtr", "[ \"P0.Cp\" , \"P9.Cm\" ]", f->err, sizeof(f->err)), 0);
	assert_string_equal(f->cfg.env.vtr, "[\"P0.Cp\",\"P9.Cm\"]");
}

static void test_config_vtr_below_min_level_refused(void **state)
{
	char env[512];

	snprintf(env, sizeof(env), "%svtr = [\"P5.Cp.Cd\"]\n", GOOD_ENV);
	assert_fails(*state, GOOD_MAIN, env, "/environments/test.conf: ", "min_level P9");
}

static void test_config_listen_forms(void **state)
{
	struct fx *f = *state;
	const char *ok[] = {"127.0.0.1:0", "0.0.0.0:65535", "[::1]:8765", "[::]:443",
	                    "signin.example.org:443"};
	const char *bad[] = {"127.0.0.1", "127.0.0.1:65536", "::1:8765", "[::1]",
	                     ":80",       "127.0.0.1:-1",    "[zz]:1"};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_int_equal(nl_config_set(&f->cfg, "bridge", "listen", ok[i], f->err, sizeof(f->err)),
		                 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_true(nl_config_set(&f->cfg, "bridge", "listen", bad[i], f->err, sizeof(f->err)) < 0);
}

static void test_config_map_rule_needs_map_file(void **state)
{
	assert_fails(*state, "environment = test\n", GOOD_ENV, "/nhslogin.conf: ", "needs map_file");
}

static void test_config_email_local_needs_email_claim(void **state)
{
	assert_fails(*state,
	             "environment = test\n[identity]\nrule = email_local\nemail_domain = example.org\n",
	             GOOD_ENV, "/nhslogin.conf: ", "needs claim = email");
}

static void test_config_http_public_url_refused_off_loopback(void **state)
{
	assert_fails(*state,
	             "environment = test\n[bridge]\nlisten = 0.0.0.0:8765\n[identity]\nmap_file = m\n",
	             GOOD_ENV, "/nhslogin.conf: ", "public_url");
}

static void test_config_group_writable_file_refused(void **state)
{
	struct fx *f = *state;

	puts_file(f, "nhslogin.conf", GOOD_MAIN, 0664);
	assert_true(nl_config_load(f->main, &f->cfg, NL_CONFIG_MAIN_ONLY, f->err, sizeof(f->err)) < 0);
	assert_non_null(strstr(f->err, "/nhslogin.conf: "));
	assert_non_null(strstr(f->err, "group- or world-writable"));
}

static void test_config_group_writable_env_file_refused(void **state)
{
	struct fx *f = *state;

	puts_file(f, "environments/test.conf", GOOD_ENV, 0620);
	puts_file(f, "keys/client.pem", "k", 0600);
	puts_file(f, "nhslogin.conf", GOOD_MAIN, 0644);
	assert_true(nl_config_load(f->main, &f->cfg, 0, f->err, sizeof(f->err)) < 0);
	assert_non_null(strstr(f->err, "/environments/test.conf: "));
	assert_non_null(strstr(f->err, "group- or world-writable"));
}

static void test_config_file_of_another_owner_refused(void **state)
{
	struct fx *f = *state;

	if (geteuid() != 0)
		skip_because("needs root to give a file away");
	puts_file(f, "nhslogin.conf", GOOD_MAIN, 0644);
	assert_int_equal(chown(f->main, 65534, (gid_t)-1), 0);
	assert_int_equal(nl_config_load(f->main, &f->cfg, NL_CONFIG_MAIN_ONLY, f->err, sizeof(f->err)),
	                 NL_ERR_PERM);
	assert_non_null(strstr(f->err, "/nhslogin.conf: owned by uid 65534"));
	/* the check nhsloginctl uses to report instead of refusing */
	assert_int_equal(nl_config_load(f->main, &f->cfg, NL_CONFIG_MAIN_ONLY | NL_CONFIG_NO_OWNER_CHECK,
	                                f->err, sizeof(f->err)),
	                 0);
}

static void test_config_world_readable_key_refused(void **state)
{
	struct fx *f = *state;

	puts_file(f, "environments/test.conf", GOOD_ENV, 0644);
	puts_file(f, "nhslogin.conf", GOOD_MAIN, 0644);
	puts_file(f, "keys/client.pem", "k", 0604);
	assert_true(nl_config_load(f->main, &f->cfg, 0, f->err, sizeof(f->err)) < 0);
	print_message("# %s\n", f->err);
	/* the line that names the key, and the key file itself */
	assert_non_null(strstr(f->err, "/environments/test.conf:3: "));
	assert_non_null(strstr(f->err, "/keys/client.pem: holds a secret"));
}

static void test_config_group_readable_key_refused(void **state)
{
	struct fx *f = *state;
	int fd = -1;

	puts_file(f, "keys/client.pem", "k", 0640);
	snprintf(f->main, sizeof(f->main), "%s/keys/client.pem", f->dir);
	assert_int_equal(nl_open_checked(f->main, true, 1024, &fd, f->err, sizeof(f->err)), NL_ERR_PERM);
	assert_int_equal(fd, -1);
	/* the same mode is fine for a file that holds no secret */
	assert_int_equal(nl_open_checked(f->main, false, 1024, &fd, f->err, sizeof(f->err)), 0);
	assert_true(fd >= 0);
	close(fd);
}

static void test_config_symlinked_file_refused(void **state)
{
	struct fx *f = *state;
	char real[PATH_MAX * 2];

	puts_file(f, "real.conf", GOOD_MAIN, 0644);
	snprintf(real, sizeof(real), "%s/real.conf", f->dir);
	assert_int_equal(symlink(real, f->main), 0);
	assert_true(nl_config_load(f->main, &f->cfg, NL_CONFIG_MAIN_ONLY, f->err, sizeof(f->err)) < 0);
	assert_non_null(strstr(f->err, "/nhslogin.conf: "));
	assert_non_null(strstr(f->err, "symbolic link"));
}

static void test_config_oversized_file_refused(void **state)
{
	struct fx *f = *state;
	size_t n = NL_CONFIG_MAX_FILE + 1;
	char *big = malloc(n);

	assert_non_null(big);
	memset(big, '#', n);
	big[n - 1] = '\n';
	put(f, "nhslogin.conf", big, n, 0644);
	assert_int_equal(nl_config_load(f->main, &f->cfg, NL_CONFIG_MAIN_ONLY, f->err, sizeof(f->err)),
	                 NL_ERR_TOO_BIG);
	assert_non_null(strstr(f->err, "/nhslogin.conf: larger than"));
	/* one byte less is only a long comment */
	put(f, "nhslogin.conf", big + 1, n - 1, 0644);
	assert_int_equal(nl_config_load(f->main, &f->cfg, NL_CONFIG_MAIN_ONLY, f->err, sizeof(f->err)), 0);
	free(big);
}

static void test_config_fifo_refused(void **state)
{
	struct fx *f = *state;

	assert_int_equal(mkfifo(f->main, 0644), 0);
	assert_true(nl_config_load(f->main, &f->cfg, NL_CONFIG_MAIN_ONLY, f->err, sizeof(f->err)) < 0);
	assert_non_null(strstr(f->err, "not a regular file"));
}

static void test_config_main_only_skips_environment(void **state)
{
	struct fx *f = *state;

	/* no environment file at all, and a world-readable tls_key the module never reads */
	puts_file(f, "nhslogin.conf", "environment = nowhere\n[bridge]\ntls_cert = c.pem\ntls_key = k.pem\n",
	          0644);
	assert_int_equal(nl_config_load(f->main, &f->cfg, NL_CONFIG_MAIN_ONLY, f->err, sizeof(f->err)), 0);
	assert_null(f->cfg.env.issuer);
}

static void test_config_setter_as_the_pam_module_uses_it(void **state)
{
	struct fx *f = *state;
	char *err = f->err;
	size_t el = sizeof(f->err);

	assert_int_equal(nl_config_set(&f->cfg, "pam", "timeout", "90", err, el), 0);
	assert_int_equal(nl_config_set(&f->cfg, "pam", "debug", "yes", err, el), 0);
	assert_int_equal(nl_config_set(&f->cfg, "pam", "noqr", "ON", err, el), 0);
	assert_int_equal(nl_config_set(&f->cfg, "pam", "strict", "1", err, el), 0);
	assert_int_equal(nl_config_set(&f->cfg, "pam", "enter_prompt", "true", err, el), 0);
	assert_int_equal(nl_config_set(&f->cfg, "pam", "noninteractive", "deny", err, el), 0);
	assert_int_equal(nl_config_set(&f->cfg, "daemon", "socket", "/run/x/nhslogind.sock", err, el), 0);
	assert_int_equal(f->cfg.pam_timeout, 90);
	assert_true(f->cfg.pam_debug && f->cfg.pam_noqr && f->cfg.pam_strict && f->cfg.pam_enter_prompt);
	assert_int_equal(f->cfg.pam_noninteractive, NL_NONINTERACTIVE_DENY);
	assert_string_equal(f->cfg.socket_path, "/run/x/nhslogind.sock");
	/* a later set replaces, as module arguments override the file */
	assert_int_equal(nl_config_set(&f->cfg, "pam", "debug", "off", err, el), 0);
	assert_false(f->cfg.pam_debug);
	assert_int_equal(nl_config_validate(&f->cfg, NL_CONFIG_MAIN_ONLY, err, el), 0);
}

static void test_config_setter_refuses_bad_input(void **state)
{
	struct fx *f = *state;
	char *err = f->err;
	size_t el = sizeof(f->err);

	assert_int_equal(nl_config_set(&f->cfg, "pam", "timeout", "3601", err, el), NL_ERR_CONFIG);
	assert_non_null(strstr(err, "out of range 0..3600"));
	assert_int_equal(nl_config_set(&f->cfg, "pam", "timeout", "-1", err, el), NL_ERR_CONFIG);
	assert_int_equal(nl_config_set(&f->cfg, "pam", "timeout", "99999999999999999999", err, el),
	                 NL_ERR_CONFIG);
	assert_int_equal(nl_config_set(&f->cfg, "pam", "timeout", "", err, el), NL_ERR_CONFIG);
	assert_int_equal(f->cfg.pam_timeout, 0);
	assert_int_equal(nl_config_set(&f->cfg, "pam", "noninteractive", "allow", err, el), NL_ERR_CONFIG);
	assert_non_null(strstr(err, "ignore | deny"));
	assert_int_equal(nl_config_set(&f->cfg, "pam", "qr", "yes", err, el), NL_ERR_CONFIG);
	assert_non_null(strstr(err, "unknown key 'qr' in [pam]"));
	assert_int_equal(nl_config_set(&f->cfg, "nope", "debug", "yes", err, el), NL_ERR_CONFIG);
	assert_non_null(strstr(err, "unknown section [nope]"));
	/* without a file there is no directory to resolve a relative path against */
	assert_int_equal(nl_config_set(&f->cfg, "daemon", "socket", "run/x.sock", err, el), NL_ERR_CONFIG);
	assert_non_null(strstr(err, "absolute"));
	assert_int_equal(nl_config_set(&f->cfg, "identity", "min_level", "P7", err, el), NL_ERR_CONFIG);
	assert_int_equal(nl_config_set(&f->cfg, "env", "scope", "profile email", err, el), NL_ERR_CONFIG);
	assert_non_null(strstr(err, "openid"));
}

/* ---- prompt_login (issue 11, finding 1) ---- */

static void test_config_prompt_login_defaults_on_and_is_strict(void **state)
{
	struct fx *f = *state;
	char env[512];

	assert_int_equal(load(f, GOOD_MAIN, GOOD_ENV, 0), 0);
	assert_true(f->cfg.env.prompt_login);
	nl_config_free(&f->cfg);
	nl_config_init(&f->cfg);
	snprintf(env, sizeof(env), "%sprompt_login = no\n", GOOD_ENV);
	assert_int_equal(load(f, GOOD_MAIN, env, 0), 0);
	assert_false(f->cfg.env.prompt_login);
	nl_config_free(&f->cfg);
	nl_config_init(&f->cfg);
	snprintf(env, sizeof(env), "%sprompt_login = none-given\n", GOOD_ENV);
	assert_fails(f, GOOD_MAIN, env,
	             "/environments/test.conf:5: ", "prompt_login: 'none-given' is not a boolean");
	/* an environment file's key, not the main file's */
	nl_config_free(&f->cfg);
	nl_config_init(&f->cfg);
	assert_fails(f, "environment = test\n[bridge]\nprompt_login = no\n", GOOD_ENV,
	             "/nhslogin.conf:3: ", "unknown key 'prompt_login' in [bridge]");
}

/* ---- [policy] (issue 11, finding 1) ---- */

static void test_config_policy_keys_parse(void **state)
{
	struct fx *f = *state;
	char main_text[512];

	snprintf(main_text, sizeof(main_text),
	         "%s[policy]\nservices_allow = login, sshd gdm-password\nservices_deny = su\n"
	         "remote_networks_allow = 10.0.0.0/8 2001:db8::/32, 192.0.2.7\n"
	         "remote_networks_deny = 0.0.0.0/0\n",
	         GOOD_MAIN);
	assert_int_equal(load(f, main_text, GOOD_ENV, 0), 0);
	assert_string_equal(f->cfg.services_allow, "login, sshd gdm-password");
	assert_string_equal(f->cfg.services_deny, "su");
	assert_int_equal(f->cfg.remote_networks_allow.n, 3);
	assert_int_equal(f->cfg.remote_networks_deny.n, 1);
	assert_int_equal(f->cfg.remote_networks_deny.v[0].prefix, 0);
}

static void test_config_policy_keys_refuse_bad_values_naming_file_and_line(void **state)
{
	static const struct {
		const char *line, *reason;
	} cases[] = {
	    {"remote_networks_allow = 10.0.0.1/8", "address bits set past /8"},
	    {"remote_networks_allow = 10.0.0.0/33", "not an ADDRESS or ADDRESS/PREFIX"},
	    {"remote_networks_deny = intranet.example.org", "not an ADDRESS or ADDRESS/PREFIX"},
	    {"remote_networks_deny = [::1]/128", "not an ADDRESS or ADDRESS/PREFIX"},
	    {"remote_networks_deny = ,", "empty list"},
	    {"services_allow = sshd;login", "not a list of PAM service names"},
	    {"services_deny = ,,", "empty list of PAM service names"},
	    {"number_of_things = 3", "unknown key 'number_of_things' in [policy]"},
	};
	struct fx *f = *state;
	char main_text[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(main_text, sizeof(main_text), "%s[policy]\n%s\n", GOOD_MAIN, cases[i].line);
		nl_config_free(&f->cfg);
		nl_config_init(&f->cfg);
		assert_fails(f, main_text, GOOD_ENV, "/nhslogin.conf:5: ", cases[i].reason);
	}
}

static void test_config_policy_list_limits(void **state)
{
	struct fx *f = *state;
	char many[40 * 40] = "";

	for (int i = 0; i < 33; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "10.%d.0.0/16 ", i);
	assert_int_equal(
	    nl_config_set(&f->cfg, "policy", "remote_networks_allow", many, f->err, sizeof(f->err)),
	    NL_ERR_CONFIG);
	assert_non_null(strstr(f->err, "more than 32 address blocks"));
	assert_int_equal(f->cfg.remote_networks_allow.n, 0);
}

static int policy(struct fx *f, const char *service, const char *rhost)
{
	f->err[0] = '\0';
	return nl_policy_check(&f->cfg, service, rhost, f->err, sizeof(f->err));
}

static void set_policy(struct fx *f, const char *key, const char *value)
{
	assert_int_equal(nl_config_set(&f->cfg, "policy", key, value, f->err, sizeof(f->err)), 0);
}

static void test_policy_default_allows_everything(void **state)
{
	struct fx *f = *state;

	assert_int_equal(policy(f, "sshd", "203.0.113.9"), 0);
	assert_int_equal(policy(f, "sshd", "name.example"), 0);
	assert_int_equal(policy(f, NULL, NULL), 0);
}

static void test_policy_by_service_deny_wins(void **state)
{
	struct fx *f = *state;

	set_policy(f, "services_allow", "login,sshd,sudo");
	set_policy(f, "services_deny", "sudo");
	assert_int_equal(policy(f, "login", NULL), 0);
	assert_int_equal(policy(f, "sshd", "10.0.0.1"), 0);
	assert_int_equal(policy(f, "sudo", NULL), NL_ERR_PERM);
	assert_non_null(strstr(f->err, "PAM service sudo is in [policy] services_deny"));
	assert_int_equal(policy(f, "su", NULL), NL_ERR_PERM);
	assert_non_null(strstr(f->err, "PAM service su is not in [policy] services_allow"));
	assert_int_equal(policy(f, "ssh", NULL), NL_ERR_PERM); /* a name, not a prefix */
	assert_int_equal(policy(f, "", NULL), NL_ERR_PERM);
	assert_non_null(strstr(f->err, "PAM service (none) is not in"));
}

static void test_policy_by_network_ipv4_ipv6_and_mapped(void **state)
{
	struct fx *f = *state;

	set_policy(f, "remote_networks_allow", "10.0.0.0/8 2001:db8::/32");
	set_policy(f, "remote_networks_deny", "10.66.0.0/16, 2001:db8:bad::/48");
	assert_int_equal(policy(f, "sshd", "10.1.2.3"), 0);
	assert_int_equal(policy(f, "sshd", "::ffff:10.1.2.3"), 0);
	assert_int_equal(policy(f, "sshd", "2001:db8::1"), 0);
	assert_int_equal(policy(f, "sshd", "[2001:db8::1]"), 0);
	assert_int_equal(policy(f, "sshd", "2001:db8::1%eth0"), 0);
	assert_int_equal(policy(f, "sshd", "10.66.1.2"), NL_ERR_PERM); /* deny wins */
	assert_non_null(strstr(f->err, "remote host 10.66.1.2 is in [policy] remote_networks_deny"));
	assert_int_equal(policy(f, "sshd", "::ffff:10.66.1.2"), NL_ERR_PERM);
	assert_int_equal(policy(f, "sshd", "2001:db8:bad::9"), NL_ERR_PERM);
	assert_int_equal(policy(f, "sshd", "11.0.0.1"), NL_ERR_PERM);
	assert_non_null(strstr(f->err, "remote host 11.0.0.1 is not in [policy] remote_networks_allow"));
	assert_int_equal(policy(f, "sshd", "2001:db9::1"), NL_ERR_PERM);
	/* a name cannot be placed in a network: refused, and shown inert in the reason */
	assert_int_equal(policy(f, "sshd", "ws1.example.org"), NL_ERR_PERM);
	assert_non_null(strstr(f->err, "is not an address"));
	assert_int_equal(policy(f, "sshd", "10.1.2.3\x1b[2J"), NL_ERR_PERM);
	assert_null(strchr(f->err, '\x1b'));
	/* the network rules are for remote sign-ins only */
	assert_int_equal(policy(f, "login", ""), 0);
	assert_int_equal(policy(f, "login", NULL), 0);
}

static void test_policy_deny_list_alone_refuses_names_and_its_networks(void **state)
{
	struct fx *f = *state;

	set_policy(f, "remote_networks_deny", "0.0.0.0/0 ::/0");
	assert_int_equal(policy(f, "sshd", "10.1.2.3"), NL_ERR_PERM);
	assert_int_equal(policy(f, "sshd", "2001:db8::1"), NL_ERR_PERM);
	assert_int_equal(policy(f, "sshd", "ws1.example.org"), NL_ERR_PERM);
	assert_int_equal(policy(f, "login", NULL), 0);
}

/* Load a shipped environment file from a scratch copy: as shipped, and with the placeholders
 * filled and every "#key = value" line uncommented. */
static void check_shipped_env(struct fx *f, const char *name, const char *issuer, bool placeholders)
{
	char rel[64], main_text[256];
	char *text = NULL, *filled = NULL, *filled2 = NULL, *all = NULL;
	int r;

	snprintf(rel, sizeof(rel), "etc/environments/%s.conf", name);
	text = slurp(rel);
	snprintf(main_text, sizeof(main_text), "environment = %s\n[identity]\nmap_file = users.map\n", name);
	puts_file(f, "nhslogin.conf", main_text, 0644);
	snprintf(rel, sizeof(rel), "keys/%s.pem", name);
	puts_file(f, rel, "-----BEGIN PRIVATE KEY-----\n", 0600);
	snprintf(rel, sizeof(rel), "environments/%s.conf", name);

	puts_file(f, rel, text, 0644);
	r = nl_config_load(f->main, &f->cfg, 0, f->err, sizeof(f->err));
	print_message("# %s: %s\n", name, r == 0 ? "ok" : f->err);
	if (placeholders) {
		/* everything parsed; only the placeholder stops it */
		assert_int_equal(r, NL_ERR_CONFIG);
		assert_non_null(strstr(f->err, "placeholder"));
	} else {
		assert_int_equal(r, 0);
	}
	nl_config_free(&f->cfg);
	nl_config_init(&f->cfg);

	filled = replace_all(text, "REPLACE-WITH-YOUR-CLIENT-ID", "test-client");
	filled2 = replace_all(filled, "REPLACE-WITH-YOUR-HOST", "signin.example.org");
	all = uncomment_keys(filled2);
	puts_file(f, rel, all, 0644);
	assert_int_equal(nl_config_load(f->main, &f->cfg, 0, f->err, sizeof(f->err)), 0);
	assert_string_equal(f->cfg.env.issuer, issuer);
	assert_string_equal(f->cfg.env.allowed_algs[0], "RS512");
	nl_config_free(&f->cfg);
	nl_config_init(&f->cfg);
	free(text);
	free(filled);
	free(filled2);
	free(all);
}

static void test_config_shipped_environment_files_parse(void **state)
{
	struct fx *f = *state;

	check_shipped_env(f, "mock", "https://oidc.mock.signin.nhs.uk", true);
	check_shipped_env(f, "sandpit", "https://auth.sandpit.signin.nhs.uk", true);
	check_shipped_env(f, "integration", "https://auth.aos.signin.nhs.uk", true);
	check_shipped_env(f, "live", "https://auth.login.nhs.uk", true);
	check_shipped_env(f, "local", "http://127.0.0.1:9000", false);
}

static void test_config_shipped_main_file_parses(void **state)
{
	struct fx *f = *state;
	char *text = slurp("etc/nhslogin.conf");
	char *env = slurp("etc/environments/sandpit.conf");
	char *all = uncomment_keys(text);

	/* as shipped: sandpit, stopped only by the placeholder in the environment file */
	puts_file(f, "environments/sandpit.conf", env, 0644);
	puts_file(f, "keys/sandpit.pem", "k", 0600);
	puts_file(f, "nhslogin.conf", text, 0644);
	assert_int_equal(nl_config_load(f->main, &f->cfg, 0, f->err, sizeof(f->err)), NL_ERR_CONFIG);
	assert_non_null(strstr(f->err, "placeholder"));
	nl_config_free(&f->cfg);
	nl_config_init(&f->cfg);
	/* every documented "#key = default" uncommented: all names and values are valid */
	puts_file(f, "nhslogin.conf", all, 0644);
	assert_int_equal(nl_config_load(f->main, &f->cfg, NL_CONFIG_MAIN_ONLY, f->err, sizeof(f->err)), 0);
	assert_int_equal(f->cfg.flow_ttl, 300);
	assert_string_equal(f->cfg.environment, "sandpit");
	free(text);
	free(env);
	free(all);
}

/* ---- the bridge behind a proxy, and email_local's accounts (issue 11, findings 6 and 7) ---- */

static bool in_list(const struct nl_config *cfg, const char *addr)
{
	unsigned char a[16];

	if (inet_pton(AF_INET, addr, a) == 1)
		return nl_cidr_match(cfg->trusted_proxies, cfg->n_trusted_proxies, AF_INET, a);
	assert_int_equal(inet_pton(AF_INET6, addr, a), 1);
	return nl_cidr_match(cfg->trusted_proxies, cfg->n_trusted_proxies, AF_INET6, a);
}

static void test_config_trusted_proxies_forms_and_matching(void **state)
{
	struct fx *f = *state;

	assert_int_equal(f->cfg.n_trusted_proxies, 0);
	assert_false(in_list(&f->cfg, "127.0.0.1"));
	assert_int_equal(nl_config_set(&f->cfg, "bridge", "trusted_proxies",
	                               "127.0.0.1, ::1 10.0.0.0/8,2001:db8::/32 ::ffff:192.0.2.0/120", f->err,
	                               sizeof(f->err)),
	                 0);
	assert_int_equal(f->cfg.n_trusted_proxies, 5);
	assert_true(in_list(&f->cfg, "127.0.0.1"));
	assert_true(in_list(&f->cfg, "::ffff:127.0.0.1"));
	assert_false(in_list(&f->cfg, "127.0.0.2"));
	assert_true(in_list(&f->cfg, "10.255.0.1"));
	assert_false(in_list(&f->cfg, "11.0.0.1"));
	assert_true(in_list(&f->cfg, "::1"));
	assert_true(in_list(&f->cfg, "2001:db8:ffff::1"));
	assert_false(in_list(&f->cfg, "2001:db9::1"));
	assert_true(in_list(&f->cfg, "192.0.2.200"));
	assert_false(in_list(&f->cfg, "192.0.3.1"));
}

static void test_config_trusted_proxies_refuses_what_is_not_a_proxy_list(void **state)
{
	struct fx *f = *state;
	static const char *const bad[] = {"0.0.0.0/0",         "::/0",      "10.0.0.1/8", "10.0.0.0/33",
	                                  "proxy.example.org", "10.0.0.0/", "[::1]",      "10.0.0.0/+8",
	                                  "1.2.3.4/08x",       NULL};
	char many[40 * 20] = "";

	for (size_t i = 0; bad[i] != NULL; i++) {
		assert_int_equal(
		    nl_config_set(&f->cfg, "bridge", "trusted_proxies", bad[i], f->err, sizeof(f->err)),
		    NL_ERR_CONFIG);
		print_message("# %s\n", f->err);
	}
	assert_int_equal(
	    nl_config_set(&f->cfg, "bridge", "trusted_proxies", "0.0.0.0/0", f->err, sizeof(f->err)),
	    NL_ERR_CONFIG);
	assert_non_null(strstr(f->err, "every address"));
	for (int i = 0; i < 33; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "10.0.0.%d,", i);
	assert_int_equal(nl_config_set(&f->cfg, "bridge", "trusted_proxies", many, f->err, sizeof(f->err)),
	                 NL_ERR_CONFIG);
	assert_non_null(strstr(f->err, "more than 32"));
	assert_int_equal(f->cfg.n_trusted_proxies, 0);
}

static void test_config_min_uid_default_and_range(void **state)
{
	struct fx *f = *state;

	assert_int_equal(f->cfg.min_uid, 1000);
	assert_int_equal(nl_config_set(&f->cfg, "identity", "min_uid", "0", f->err, sizeof(f->err)),
	                 NL_ERR_CONFIG);
	assert_int_equal(nl_config_set(&f->cfg, "identity", "min_uid", "500", f->err, sizeof(f->err)), 0);
	assert_int_equal(f->cfg.min_uid, 500);
}

/* An https public_url says how phones reach the proxy, not who else can reach the listener: plain
 * http on a non-loopback address needs behind_tls_proxy, and that needs trusted_proxies. */
static void test_config_plain_http_off_loopback_needs_behind_tls_proxy(void **state)
{
	struct fx *f = *state;
	const char *head = "environment = test\n[identity]\nmap_file = m\n[bridge]\nlisten = 0.0.0.0:8765\n"
	                   "public_url = https://signin.example.org\n";
	char text[512];

	assert_fails(f, head, GOOD_ENV, "/nhslogin.conf: ", "behind_tls_proxy = yes");
	nl_config_free(&f->cfg);
	nl_config_init(&f->cfg);
	snprintf(text, sizeof(text), "%sbehind_tls_proxy = yes\n", head);
	assert_fails(f, text, GOOD_ENV, "/nhslogin.conf: ", "needs trusted_proxies");
	nl_config_free(&f->cfg);
	nl_config_init(&f->cfg);
	snprintf(text, sizeof(text), "%sbehind_tls_proxy = yes\ntrusted_proxies = 10.0.0.5\n", head);
	assert_int_equal(load(f, text, GOOD_ENV, 0), 0);
	assert_true(f->cfg.behind_tls_proxy);
	nl_config_free(&f->cfg);
	nl_config_init(&f->cfg);
	/* with its own TLS the listener may be anywhere */
	puts_file(f, "keys/tls.key", "k", 0600);
	snprintf(text, sizeof(text), "%stls_cert = keys/tls.crt\ntls_key = keys/tls.key\n", head);
	assert_int_equal(load(f, text, GOOD_ENV, 0), 0);
	nl_config_free(&f->cfg);
	nl_config_init(&f->cfg);
	/* on loopback (a proxy on the same host) nothing more is needed */
	assert_int_equal(load(f,
	                      "environment = test\n[identity]\nmap_file = m\n[bridge]\nlisten = [::1]:8765\n"
	                      "public_url = https://signin.example.org\n",
	                      GOOD_ENV, 0),
	                 0);
}

/* ---- [identity] source = ldap and the [ldap] section (issue 14) ---- */

/* Lines 1-5; a case's own line is line 6. */
static const char *const LDAP_HEAD = "environment = test\n"
                                     "[identity]\n"
                                     "source = ldap\n"
                                     "claim = sub\n"
                                     "[ldap]\n";
static const char *const LDAP_REST = "uri = ldap://dir.example.org\n"
                                     "base = dc=example,dc=org\n"
                                     "filter = (&(objectClass=person)(employeeNumber=%s))\n"
                                     "attribute = uid\n";

static void test_config_ldap_source_loads_with_defaults(void **state)
{
	struct fx *f = *state;
	char main_text[1024];

	snprintf(main_text, sizeof(main_text), "%s%s", LDAP_HEAD, LDAP_REST);
	assert_int_equal(load(f, main_text, GOOD_ENV, 0), 0);
	assert_int_equal(f->cfg.source, NL_SOURCE_LDAP);
	assert_int_equal(f->cfg.source_line, 3);
	assert_string_equal(f->cfg.ldap_uri, "ldap://dir.example.org");
	assert_string_equal(f->cfg.ldap_filter, "(&(objectClass=person)(employeeNumber=%s))");
	assert_null(f->cfg.ldap_bind_dn);
	/* TLS unless written otherwise: starttls on ldap:// */
	assert_int_equal(f->cfg.ldap_tls, NL_LDAP_TLS_DEFAULT);
	assert_int_equal(nl_ldap_tls_of(&f->cfg), NL_LDAP_TLS_STARTTLS);
	assert_int_equal(f->cfg.ldap_timeout, 5);
	assert_int_equal(f->cfg.ldap_cache_ttl, 60);
}

static void test_config_ldap_default_source_is_map_file(void **state)
{
	struct fx *f = *state;

	assert_int_equal(load(f, GOOD_MAIN, GOOD_ENV, 0), 0);
	assert_int_equal(f->cfg.source, NL_SOURCE_MAP_FILE);
	assert_int_equal(f->cfg.rule, NL_MAP_FILE);
}

static void test_config_ldap_bad_values_name_file_and_line(void **state)
{
	static const struct {
		const char *line, *reason;
	} cases[] = {
	    {"filter = (uid=someone)", "needs one %s"},
	    {"filter = (|(uid=%s)(mail=%s))", "exactly one %s"},
	    {"filter = (uid=%s%d)", "exactly one %s"},
	    {"filter = (&(objectClass=person)(uid=%s)", "unbalanced parentheses"},
	    {"filter = (uid=%s))", "text after the closing"},
	    {"filter = )uid=%s(", "closes nothing"},
	    {"filter = (uid=%s)(cn=x)", "text after the closing"},
	    {"filter = uid=%s", "one filter in parentheses"},
	    {"filter = (uid=*%s)", "must be a whole value"},
	    {"filter = (%s)", "must be a whole value"},
	    {"tls = maybe", "'maybe' is not one of starttls | ldaps | none"},
	    {"tls = STARTTLS", "is not one of"},
	    {"uri = http://dir.example.org", "is not ldap://HOST[:PORT]"},
	    {"uri = ldap://dir.example.org/dc=x??sub", "is not ldap://HOST[:PORT]"},
	    {"uri = ldap://user@dir.example.org", "is not ldap://HOST[:PORT]"},
	    {"uri = ldap://dir.example.org:99999", "is not ldap://HOST[:PORT]"},
	    {"uri = ldap://a.example.org ldaps://b.example.org", "mixes ldap:// and ldaps://"},
	    {"uri = ,", "no server"},
	    {"attribute = uid;binary", "not an attribute name"},
	    {"attribute = 1uid", "not an attribute name"},
	    {"base = example", "not a distinguished name"},
	    {"bind_dn = =x", "not a distinguished name"},
	    {"timeout = 0", "out of range 1..60"},
	    {"timeout = 61", "out of range 1..60"},
	    {"cache_ttl = 3601", "out of range 0..3600"},
	    {"binddn = cn=x", "did you mean 'bind_dn'?"},
	};
	struct fx *f = *state;
	char main_text[1024];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(main_text, sizeof(main_text), "%s%s\n", LDAP_HEAD, cases[i].line);
		nl_config_free(&f->cfg);
		nl_config_init(&f->cfg);
		assert_fails(f, main_text, GOOD_ENV, "/nhslogin.conf:6: ", cases[i].reason);
	}
}

static void test_config_ldap_good_filters_and_uris_accepted(void **state)
{
	static const char *const good[][2] = {
	    {"filter", "(uid=%s)"},
	    {"filter", "(&(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2))(mail=%s))"},
	    {"uri", "ldaps://dc1.example.org:636 ldaps://dc2.example.org,ldaps://[::1]:6360/"},
	    {"uri", "ldap://127.0.0.1:3890"},
	    {"attribute", "sAMAccountName"},
	};
	struct fx *f = *state;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		f->err[0] = '\0';
		assert_int_equal(
		    nl_config_set(&f->cfg, "ldap", good[i][0], good[i][1], f->err, sizeof(f->err)), 0);
	}
}

static void test_config_ldap_source_needs_its_settings(void **state)
{
	static const char *const keys[] = {"uri", "base", "filter", "attribute"};
	struct fx *f = *state;
	char main_text[1024], want[64];

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char *rest = strdup(LDAP_REST), *line;

		assert_non_null(rest);
		/* drop the key's line */
		line = strstr(rest, keys[i]);
		assert_non_null(line);
		memmove(line, strchr(line, '\n') + 1, strlen(strchr(line, '\n') + 1) + 1);
		snprintf(main_text, sizeof(main_text), "%s%s", LDAP_HEAD, rest);
		snprintf(want, sizeof(want), "source = ldap needs [ldap] %s", keys[i]);
		nl_config_free(&f->cfg);
		nl_config_init(&f->cfg);
		assert_fails(f, main_text, GOOD_ENV, "/nhslogin.conf:3: ", want);
		free(rest);
	}
}

static void test_config_ldap_tls_must_fit_the_uris(void **state)
{
	static const struct {
		const char *uri, *tls, *reason; /* reason NULL: loads */
		enum nl_ldap_tls mode;
	} cases[] = {
	    {"ldaps://dir.example.org", NULL, NULL, NL_LDAP_TLS_LDAPS},
	    {"ldap://dir.example.org", "starttls", NULL, NL_LDAP_TLS_STARTTLS},
	    {"ldap://dir.example.org", "none", NULL, NL_LDAP_TLS_NONE},
	    {"ldaps://dir.example.org", "starttls", "tls = starttls needs ldap:// URIs", 0},
	    {"ldap://dir.example.org", "ldaps", "tls = ldaps needs ldaps:// URIs", 0},
	    {"ldaps://dir.example.org", "none", "tls = none contradicts ldaps://", 0},
	};
	struct fx *f = *state;
	char main_text[1024];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(main_text, sizeof(main_text),
		         "%suri = %s\nbase = dc=example,dc=org\nfilter = (uid=%%s)\nattribute = uid\n%s%s%s",
		         LDAP_HEAD, cases[i].uri, cases[i].tls != NULL ? "tls = " : "",
		         cases[i].tls != NULL ? cases[i].tls : "", cases[i].tls != NULL ? "\n" : "");
		nl_config_free(&f->cfg);
		nl_config_init(&f->cfg);
		if (cases[i].reason != NULL) {
			assert_fails(f, main_text, GOOD_ENV, "/nhslogin.conf:3: ", cases[i].reason);
			continue;
		}
		assert_int_equal(load(f, main_text, GOOD_ENV, 0), 0);
		assert_int_equal(nl_ldap_tls_of(&f->cfg), cases[i].mode);
	}
}

static void test_config_ldap_bind_dn_and_password_file_go_together(void **state)
{
	struct fx *f = *state;
	char main_text[1024];

	snprintf(main_text, sizeof(main_text), "%s%sbind_dn = cn=reader,dc=example,dc=org\n", LDAP_HEAD,
	         LDAP_REST);
	assert_fails(f, main_text, GOOD_ENV,
	             "/nhslogin.conf:3: ", "bind_dn and bind_password_file go together");
	nl_config_free(&f->cfg);
	nl_config_init(&f->cfg);
	puts_file(f, "ldap.pw", "secret\n", 0600);
	snprintf(main_text, sizeof(main_text), "%s%sbind_password_file = ldap.pw\n", LDAP_HEAD, LDAP_REST);
	assert_fails(f, main_text, GOOD_ENV,
	             "/nhslogin.conf:3: ", "bind_dn and bind_password_file go together");
}

static void test_config_ldap_password_file_must_be_private(void **state)
{
	static const mode_t bad[] = {0644, 0640, 0604, 0660};
	struct fx *f = *state;
	char main_text[1024], want[PATH_MAX];

	snprintf(main_text, sizeof(main_text),
	         "%s%sbind_dn = cn=reader,dc=example,dc=org\nbind_password_file = ldap.pw\n", LDAP_HEAD,
	         LDAP_REST);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		puts_file(f, "ldap.pw", "secret\n", bad[i]);
		nl_config_free(&f->cfg);
		nl_config_init(&f->cfg);
		snprintf(want, sizeof(want), "bind_password_file: %s/ldap.pw", f->dir);
		assert_fails(f, main_text, GOOD_ENV, "/nhslogin.conf:11: ", want);
	}
	puts_file(f, "ldap.pw", "secret\n", 0600);
	nl_config_free(&f->cfg);
	nl_config_init(&f->cfg);
	assert_int_equal(load(f, main_text, GOOD_ENV, 0), 0);
	snprintf(want, sizeof(want), "%s/ldap.pw", f->dir);
	assert_string_equal(f->cfg.ldap_password_file, want);
	assert_string_equal(f->cfg.ldap_bind_dn, "cn=reader,dc=example,dc=org");
}

static void test_config_ldap_source_refuses_email_local(void **state)
{
	struct fx *f = *state;
	char main_text[1024];

	snprintf(main_text, sizeof(main_text),
	         "environment = test\n[identity]\nsource = ldap\nclaim = email\nrule = email_local\n"
	         "email_domain = example.org\n[ldap]\n%s",
	         LDAP_REST);
	assert_fails(f, main_text, GOOD_ENV, "/nhslogin.conf:3: ", "does not go with rule = email_local");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_config_good_files_load_with_expected_values),
	    T(test_config_minimal_files_get_defaults),
	    T(test_config_unknown_key_names_file_and_line),
	    T(test_config_unknown_key_says_did_you_mean),
	    T(test_config_unknown_environment_points_at_its_line),
	    T(test_config_placeholders_reported_together),
	    T(test_config_duplicate_key_names_file_and_line),
	    T(test_config_unknown_section_names_file_and_line),
	    T(test_config_env_file_refuses_sections),
	    T(test_config_bad_number_names_file_and_line),
	    T(test_config_number_out_of_range_names_file_and_line),
	    T(test_config_bad_boolean_names_file_and_line),
	    T(test_config_line_without_equals_names_file_and_line),
	    T(test_config_inline_comment_refused),
	    T(test_config_http_issuer_on_public_host_refused),
	    T(test_config_http_issuer_on_loopback_accepted),
	    T(test_config_alg_none_refused),
	    T(test_config_alg_hs256_refused),
	    T(test_config_unknown_alg_refused),
	    T(test_config_missing_required_key_names_env_file),
	    T(test_config_placeholder_client_id_refused),
	    T(test_config_bad_environment_name_refused),
	    T(test_config_missing_environment_refused),
	    T(test_config_vtr_must_be_array_of_vectors),
	    T(test_config_vtr_below_min_level_refused),
	    T(test_config_listen_forms),
	    T(test_config_map_rule_needs_map_file),
	    T(test_config_email_local_needs_email_claim),
	    T(test_config_http_public_url_refused_off_loopback),
	    T(test_config_group_writable_file_refused),
	    T(test_config_group_writable_env_file_refused),
	    T(test_config_file_of_another_owner_refused),
	    T(test_config_world_readable_key_refused),
	    T(test_config_group_readable_key_refused),
	    T(test_config_symlinked_file_refused),
	    T(test_config_oversized_file_refused),
	    T(test_config_fifo_refused),
	    T(test_config_main_only_skips_environment),
	    T(test_config_setter_as_the_pam_module_uses_it),
	    T(test_config_setter_refuses_bad_input),
	    T(test_config_prompt_login_defaults_on_and_is_strict),
	    T(test_config_policy_keys_parse),
	    T(test_config_policy_keys_refuse_bad_values_naming_file_and_line),
	    T(test_config_policy_list_limits),
	    T(test_policy_default_allows_everything),
	    T(test_policy_by_service_deny_wins),
	    T(test_policy_by_network_ipv4_ipv6_and_mapped),
	    T(test_policy_deny_list_alone_refuses_names_and_its_networks),
	    T(test_config_shipped_environment_files_parse),
	    T(test_config_shipped_main_file_parses),
	    T(test_config_trusted_proxies_forms_and_matching),
	    T(test_config_trusted_proxies_refuses_what_is_not_a_proxy_list),
	    T(test_config_min_uid_default_and_range),
	    T(test_config_plain_http_off_loopback_needs_behind_tls_proxy),
	    T(test_config_ldap_source_loads_with_defaults),
	    T(test_config_ldap_default_source_is_map_file),
	    T(test_config_ldap_bad_values_name_file_and_line),
	    T(test_config_ldap_good_filters_and_uris_accepted),
	    T(test_config_ldap_source_needs_its_settings),
	    T(test_config_ldap_tls_must_fit_the_uris),
	    T(test_config_ldap_bind_dn_and_password_file_go_together),
	    T(test_config_ldap_password_file_must_be_private),
	    T(test_config_ldap_source_refuses_email_local),
	};
#undef T
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
