/* Identity mapping: map files (by NHS number, email, sub), their checks (syntax, ambiguity, check
 * digits, mode, a missing file), re-reading on change, the claim's scope, and the email_local rule. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mapping.h"
#include "nl_err.h"

/* Test NHS numbers (valid modulus 11 check digits). */
#define NHS_ALICE  "9686368973"
#define NHS_BOB    "9434765919"
#define NHS_CAROL  "4010232137"
#define NHS_NOBODY "1234567881"

static char tmpdir[256];

/* The accounts rule email_local may find (the test host's own accounts are not the point). */
static int fake_uid(const char *user, uid_t *uid)
{
	static const struct {
		const char *name;
		uid_t uid;
	} accounts[] = {{"jane.doe", 1001}, {"jane", 1002}, {"bob", 1003}, {"root", 0},
	                {"daemon", 1},      {"sys", 999},   {"svc", 500},  {"nobody", 65534}};

	if (strcmp(user, "nsswitchdown") == 0)
		return NL_ERR_IO;
	for (size_t i = 0; i < sizeof(accounts) / sizeof(accounts[0]); i++) {
		if (strcmp(user, accounts[i].name) == 0) {
			*uid = accounts[i].uid;
			return 0;
		}
	}
	return NL_ERR_NOT_FOUND;
}

static int group_setup(void **state)
{
	const char *base = getenv("TMPDIR");
	(void)state;
	nl_map_set_uid_lookup(fake_uid);
	snprintf(tmpdir, sizeof(tmpdir), "%s/nl-mapping-XXXXXX",
	         base != NULL && *base != '\0' ? base : "/tmp");
	return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
	char cmd[300];
	(void)state;
	nl_map_cache_flush();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static int test_teardown(void **state)
{
	(void)state;
	nl_map_cache_flush();
	return 0;
}

/* Write text to tmpdir/name with mode; returns the path (static buffer per call site is enough). */
static const char *write_map(const char *name, const char *text, mode_t mode)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	unlink(path);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

/* Copy a fixture from tests/unit/data/mapping into tmpdir with a safe mode (the checkout's umask
 * must not decide whether a test passes). */
static const char *fixture(const char *name)
{
	const char *src = getenv("NL_TOP_SRCDIR");
	char in[512], buf[8192];
	FILE *f;
	size_t n;

	assert_non_null(src);
	snprintf(in, sizeof(in), "%s/tests/unit/data/mapping/%s", src, name);
	f = fopen(in, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return write_map(name, buf, 0644);
}

static void cfg_map(struct nl_config *cfg, enum nl_claim claim, const char *path)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->claim = claim;
	cfg->rule = NL_MAP_FILE;
	cfg->map_file = (char *)path;
	cfg->min_level = 9;
}

static void cfg_email_local(struct nl_config *cfg, const char *domain)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->claim = NL_CLAIM_EMAIL;
	cfg->rule = NL_MAP_EMAIL_LOCAL;
	cfg->email_domain = (char *)domain;
	cfg->min_level = 9;
}

/* Map claims (JSON text) and return the code; *user set on success (caller frees). */
static int map_json(const struct nl_config *cfg, const char *claims_json, char **user, char *err,
                    size_t errlen)
{
	json_error_t jerr;
	json_t *claims = json_loads(claims_json, 0, &jerr);
	int r;

	assert_non_null(claims);
	*user = (char *)0x1; /* must be reset to NULL on failure */
	r = nl_map_identity(cfg, claims, user, err, errlen);
	json_decref(claims);
	if (r != 0)
		assert_null(*user);
	return r;
}

static void assert_maps_to(const struct nl_config *cfg, const char *claims_json, const char *want)
{
	char err[256] = "", *user = NULL;

	assert_int_equal(map_json(cfg, claims_json, &user, err, sizeof(err)), 0);
	assert_string_equal(user, want);
	free(user);
}

static void assert_map_fails(const struct nl_config *cfg, const char *claims_json, int code,
                             const char *in_err)
{
	char err[512] = "", *user = NULL;

	assert_int_equal(map_json(cfg, claims_json, &user, err, sizeof(err)), code);
	if (in_err != NULL && strstr(err, in_err) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", err, in_err);
}

static void test_map_nhs_number_hit(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_map(&cfg, NL_CLAIM_NHS_NUMBER, fixture("nhs.map"));
	assert_maps_to(&cfg, "{\"sub\":\"x\",\"nhs_number\":\"" NHS_ALICE "\"}", "alice");
	assert_maps_to(&cfg, "{\"sub\":\"x\",\"nhs_number\":\"" NHS_BOB "\"}", "bob");
	assert_maps_to(&cfg, "{\"sub\":\"x\",\"nhs_number\":\"" NHS_CAROL "\"}", "carol.jones");
}

static void test_map_nhs_number_miss_is_not_found(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_map(&cfg, NL_CLAIM_NHS_NUMBER, fixture("nhs.map"));
	assert_map_fails(&cfg, "{\"nhs_number\":\"" NHS_NOBODY "\"}", NL_ERR_NOT_FOUND, NULL);
}

/* No claim is not "not linked": the sign-in did not say who the person is (reason no_claim). */
static void test_map_absent_claim_is_claim_error(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_map(&cfg, NL_CLAIM_NHS_NUMBER, fixture("nhs.map"));
	assert_map_fails(&cfg, "{\"sub\":\"x\"}", NL_ERR_CLAIM, "no nhs_number claim");
	cfg_map(&cfg, NL_CLAIM_EMAIL, fixture("email.map"));
	assert_map_fails(&cfg, "{\"sub\":\"x\"}", NL_ERR_CLAIM, "no email claim");
}

/* A broken map fails every sign-in: that is said first, whatever the identity holds. */
static void test_map_broken_map_reported_before_absent_claim(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_map(&cfg, NL_CLAIM_NHS_NUMBER, fixture("syntax.map"));
	assert_map_fails(&cfg, "{\"sub\":\"x\"}", NL_ERR_CONFIG, "syntax.map:3:");
}

static void test_map_rejects_malformed_nhs_number_claim(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_map(&cfg, NL_CLAIM_NHS_NUMBER, fixture("nhs.map"));
	assert_map_fails(&cfg, "{\"nhs_number\":9686368973}", NL_ERR_CLAIM, NULL);
	assert_map_fails(&cfg, "{\"nhs_number\":\"968 636 8973\"}", NL_ERR_CLAIM, NULL);
	assert_map_fails(&cfg, "{\"nhs_number\":\"9686368974\"}", NL_ERR_CLAIM, NULL);
}

static void test_map_email_case_insensitive_hit(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_map(&cfg, NL_CLAIM_EMAIL, fixture("email.map"));
	assert_maps_to(&cfg, "{\"email\":\"alice.smith@example.nhs.uk\",\"email_verified\":true}", "alice");
	assert_maps_to(&cfg, "{\"email\":\"BOB@EXAMPLE.NHS.UK\",\"email_verified\":true}", "bob");
}

static void test_map_email_refuses_unverified(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_map(&cfg, NL_CLAIM_EMAIL, fixture("email.map"));
	assert_map_fails(&cfg, "{\"email\":\"bob@example.nhs.uk\",\"email_verified\":false}", NL_ERR_CLAIM,
	                 "not verified");
	assert_map_fails(&cfg, "{\"email\":\"bob@example.nhs.uk\",\"email_verified\":\"true\"}", NL_ERR_CLAIM,
	                 "not verified");
}

static void test_map_email_without_email_verified_maps(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_map(&cfg, NL_CLAIM_EMAIL, fixture("email.map"));
	assert_maps_to(&cfg, "{\"email\":\"bob@example.nhs.uk\"}", "bob");
}

static void test_map_sub_hit_is_exact(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_map(&cfg, NL_CLAIM_SUB, fixture("sub.map"));
	assert_maps_to(&cfg, "{\"sub\":\"7b1d4c62-2d2b-4c3e-9a43-0c7a5e8b9d01\"}", "alice");
	/* sub is opaque: no case folding. */
	assert_map_fails(&cfg, "{\"sub\":\"7B1D4C62-2D2B-4C3E-9A43-0C7A5E8B9D01\"}", NL_ERR_NOT_FOUND, NULL);
}

static void test_map_syntax_error_names_file_and_line(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_map(&cfg, NL_CLAIM_NHS_NUMBER, fixture("syntax.map"));
	assert_map_fails(&cfg, "{\"nhs_number\":\"" NHS_ALICE "\"}", NL_ERR_CONFIG, "syntax.map:3:");
}

static void test_map_invalid_user_name_names_line(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_map(&cfg, NL_CLAIM_NHS_NUMBER, fixture("bad_user.map"));
	assert_map_fails(&cfg, "{\"nhs_number\":\"" NHS_ALICE "\"}", NL_ERR_CONFIG, "bad_user.map:2:");
}

static void test_map_ambiguous_duplicate_is_error_naming_both_lines(void **state)
{
	struct nl_config cfg;
	char err[512] = "", *user = NULL;
	(void)state;
	cfg_map(&cfg, NL_CLAIM_NHS_NUMBER, fixture("ambiguous.map"));
	/* Even a lookup of an unambiguous number fails: the whole map is untrustworthy. */
	assert_int_equal(map_json(&cfg, "{\"nhs_number\":\"" NHS_BOB "\"}", &user, err, sizeof(err)),
	                 NL_ERR_CONFIG);
	assert_non_null(strstr(err, "ambiguous.map:2"));
	assert_non_null(strstr(err, "ambiguous.map:5"));
	assert_non_null(strstr(err, "alice"));
	assert_non_null(strstr(err, "mallory"));
}

static void test_map_email_duplicate_differing_in_case_is_ambiguous(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_map(&cfg, NL_CLAIM_EMAIL,
	        write_map("dup-email.map", "alice Alice@Example.nhs.uk\neve alice@example.NHS.uk\n", 0644));
	assert_map_fails(&cfg, "{\"email\":\"alice@example.nhs.uk\"}", NL_ERR_CONFIG, "dup-email.map:1");
}

static void test_map_same_value_same_user_twice_is_fine(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_map(&cfg, NL_CLAIM_NHS_NUMBER,
	        write_map("dup-same.map", "alice " NHS_ALICE "\nalice " NHS_ALICE "\n", 0644));
	assert_maps_to(&cfg, "{\"nhs_number\":\"" NHS_ALICE "\"}", "alice");
}

static void test_map_bad_check_digit_names_line(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_map(&cfg, NL_CLAIM_NHS_NUMBER, fixture("bad_check_digit.map"));
	assert_map_fails(&cfg, "{\"nhs_number\":\"" NHS_ALICE "\"}", NL_ERR_CONFIG, "bad_check_digit.map:3:");
}

static void test_map_nhs_value_not_ten_digits_names_line(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_map(&cfg, NL_CLAIM_NHS_NUMBER,
	        write_map("short.map", "alice " NHS_ALICE "\nbob 943476591\n", 0644));
	assert_map_fails(&cfg, "{\"nhs_number\":\"" NHS_ALICE "\"}", NL_ERR_CONFIG, "short.map:2:");
}

static void test_map_group_writable_file_refused(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_map(&cfg, NL_CLAIM_NHS_NUMBER, write_map("gw.map", "alice " NHS_ALICE "\n", 0664));
	assert_map_fails(&cfg, "{\"nhs_number\":\"" NHS_ALICE "\"}", NL_ERR_PERM, "gw.map");
}

static void test_map_file_made_group_writable_after_caching_refused(void **state)
{
	struct nl_config cfg;
	const char *path = write_map("gw-later.map", "alice " NHS_ALICE "\n", 0644);
	(void)state;
	cfg_map(&cfg, NL_CLAIM_NHS_NUMBER, path);
	assert_maps_to(&cfg, "{\"nhs_number\":\"" NHS_ALICE "\"}", "alice");
	assert_int_equal(chmod(path, 0664), 0);
	assert_map_fails(&cfg, "{\"nhs_number\":\"" NHS_ALICE "\"}", NL_ERR_PERM, NULL);
}

static void test_map_missing_file_is_config_error(void **state)
{
	struct nl_config cfg;
	char path[512];
	(void)state;
	snprintf(path, sizeof(path), "%s/no-such.map", tmpdir);
	cfg_map(&cfg, NL_CLAIM_NHS_NUMBER, path);
	assert_map_fails(&cfg, "{\"nhs_number\":\"" NHS_ALICE "\"}", NL_ERR_CONFIG, "no-such.map");
	assert_map_fails(&cfg, "{\"nhs_number\":\"" NHS_ALICE "\"}", NL_ERR_CONFIG, "create it");
}

/* The check the daemon makes at start (and nhsloginctl check) says the same of a missing map. */
static void test_map_check_missing_file_is_config_error_with_fix(void **state)
{
	struct nl_config cfg;
	char path[512], err[512] = "";
	(void)state;
	snprintf(path, sizeof(path), "%s/absent.map", tmpdir);
	cfg_map(&cfg, NL_CLAIM_NHS_NUMBER, path);
	assert_int_equal(nl_map_check(&cfg, err, sizeof(err)), NL_ERR_CONFIG);
	assert_non_null(strstr(err, "absent.map: no such file"));
	assert_non_null(strstr(err, "map_file"));
}

/* A map file removed after it was cached is a configuration error, not "no such identity". */
static void test_map_file_removed_after_caching_is_config_error(void **state)
{
	struct nl_config cfg;
	char path[512];
	(void)state;
	snprintf(path, sizeof(path), "%s", write_map("removed.map", "alice " NHS_ALICE "\n", 0644));
	cfg_map(&cfg, NL_CLAIM_NHS_NUMBER, path);
	assert_maps_to(&cfg, "{\"nhs_number\":\"" NHS_ALICE "\"}", "alice");
	assert_int_equal(unlink(path), 0);
	assert_map_fails(&cfg, "{\"nhs_number\":\"" NHS_ALICE "\"}", NL_ERR_CONFIG, "removed.map");
}

/* A map made malformed after it was cached is refused at the next sign-in (naming the line). */
static void test_map_file_corrupted_after_caching_is_config_error(void **state)
{
	struct nl_config cfg;
	char path[512];
	(void)state;
	snprintf(path, sizeof(path), "%s", write_map("corrupt.map", "alice " NHS_ALICE "\n", 0644));
	cfg_map(&cfg, NL_CLAIM_NHS_NUMBER, path);
	assert_maps_to(&cfg, "{\"nhs_number\":\"" NHS_ALICE "\"}", "alice");
	write_map("corrupt.map", "alice " NHS_ALICE "\nbob " NHS_BOB " trailing\n", 0644);
	assert_map_fails(&cfg, "{\"nhs_number\":\"" NHS_ALICE "\"}", NL_ERR_CONFIG, "corrupt.map:2:");
}

static void test_map_file_changed_on_disk_is_reread(void **state)
{
	struct nl_config cfg;
	const char *path;
	char copy[512];
	int fd;
	struct timespec times[2] = {{1000000000, 0}, {1000000000, 0}};
	(void)state;
	path = write_map("changing.map", "alice " NHS_ALICE "\n", 0644);
	snprintf(copy, sizeof(copy), "%s", path);
	cfg_map(&cfg, NL_CLAIM_NHS_NUMBER, copy);
	assert_int_equal(utimensat(AT_FDCWD, copy, times, 0), 0);
	assert_maps_to(&cfg, "{\"nhs_number\":\"" NHS_ALICE "\"}", "alice");

	/* Same inode, same size, new contents and a new mtime. */
	fd = open(copy, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "bobby " NHS_ALICE "\n", 17), 17);
	assert_int_equal(close(fd), 0);
	times[0].tv_sec = times[1].tv_sec = 1000000100;
	assert_int_equal(utimensat(AT_FDCWD, copy, times, 0), 0);
	assert_maps_to(&cfg, "{\"nhs_number\":\"" NHS_ALICE "\"}", "bobby");
}

struct lookup_worker {
	const struct nl_config *cfg;
	int bad; /* lookups that gave neither of the two users the file ever names */
};

static void *lookup_worker_run(void *arg)
{
	struct lookup_worker *w = arg;
	json_t *claims = json_pack("{s:s}", "nhs_number", NHS_ALICE);
	int i;

	for (i = 0; i < 300; i++) {
		char *user = NULL;
		if (nl_map_identity(w->cfg, claims, &user, NULL, 0) != 0 || user == NULL ||
		    (strcmp(user, "alice") != 0 && strcmp(user, "bobby") != 0))
			w->bad++;
		free(user);
	}
	json_decref(claims);
	return NULL;
}

static void test_map_lookups_from_threads_while_file_changes(void **state)
{
	struct nl_config cfg;
	struct lookup_worker w[4];
	pthread_t th[4];
	char path[512], tmp[520];
	int i;
	(void)state;
	snprintf(path, sizeof(path), "%s", write_map("threads.map", "alice " NHS_ALICE "\n", 0644));
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	cfg_map(&cfg, NL_CLAIM_NHS_NUMBER, path);
	for (i = 0; i < 4; i++) {
		w[i].cfg = &cfg;
		w[i].bad = 0;
		assert_int_equal(pthread_create(&th[i], NULL, lookup_worker_run, &w[i]), 0);
	}
	/* Replace the file atomically (a new inode each time), as an admin's editor would. */
	for (i = 0; i < 50; i++) {
		FILE *f = fopen(tmp, "w");
		assert_non_null(f);
		fputs(i % 2 ? "alice " NHS_ALICE "\n" : "bobby " NHS_ALICE "\n", f);
		assert_int_equal(fclose(f), 0);
		assert_int_equal(chmod(tmp, 0644), 0);
		assert_int_equal(rename(tmp, path), 0);
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(w[i].bad, 0);
	}
}

static void test_map_comments_blank_lines_and_tabs_accepted(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_map(&cfg, NL_CLAIM_NHS_NUMBER,
	        write_map("layout.map", "\n# c\n   \n\talice\t " NHS_ALICE " \r\n  # indented\nbob " NHS_BOB,
	                  0644));
	assert_maps_to(&cfg, "{\"nhs_number\":\"" NHS_ALICE "\"}", "alice");
	assert_maps_to(&cfg, "{\"nhs_number\":\"" NHS_BOB "\"}", "bob");
}

static void test_map_check_file_accepts_good_and_names_bad(void **state)
{
	char err[512] = "";
	(void)state;
	assert_int_equal(nl_map_check_file(fixture("nhs.map"), err, sizeof(err)), 0);
	assert_int_equal(nl_map_check_file(fixture("sub.map"), err, sizeof(err)), 0);
	assert_int_equal(nl_map_check_file(fixture("bad_check_digit.map"), err, sizeof(err)), NL_ERR_CONFIG);
	assert_non_null(strstr(err, "bad_check_digit.map:3:"));
	assert_int_equal(nl_map_check_file(fixture("ambiguous.map"), err, sizeof(err)), NL_ERR_CONFIG);
	assert_non_null(strstr(err, "ambiguous.map:2"));
}

static void test_map_check_uses_configured_claim(void **state)
{
	struct nl_config cfg;
	char err[512] = "";
	(void)state;
	/* sub values are not NHS numbers: fine for claim sub, an error for claim nhs_number. */
	cfg_map(&cfg, NL_CLAIM_SUB, fixture("sub.map"));
	assert_int_equal(nl_map_check(&cfg, err, sizeof(err)), 0);
	cfg_map(&cfg, NL_CLAIM_NHS_NUMBER, fixture("sub.map"));
	assert_int_equal(nl_map_check(&cfg, err, sizeof(err)), NL_ERR_CONFIG);
	assert_non_null(strstr(err, "sub.map:2:"));
}

/* The scope must ask for the claim: NHS login sends nhs_number only for profile, email only for
 * email. */
static void test_map_check_scope_needs_the_claims_scope(void **state)
{
	struct nl_config cfg;
	char err[512] = "";
	(void)state;
	cfg_map(&cfg, NL_CLAIM_NHS_NUMBER, "/unused.map");
	cfg.env.path = (char *)"/etc/nhslogin/environments/live.conf";
	cfg.env.scope = (char *)"openid profile";
	assert_int_equal(nl_map_check_scope(&cfg, err, sizeof(err)), 0);
	cfg.env.scope = (char *)"openid email profile_extended";
	assert_int_equal(nl_map_check_scope(&cfg, err, sizeof(err)), NL_ERR_CONFIG);
	assert_non_null(strstr(err, "live.conf"));
	assert_non_null(strstr(err, "add profile to scope"));
	cfg.claim = NL_CLAIM_EMAIL;
	assert_int_equal(nl_map_check_scope(&cfg, err, sizeof(err)), 0);
	cfg.env.scope = (char *)"openid profile";
	assert_int_equal(nl_map_check_scope(&cfg, err, sizeof(err)), NL_ERR_CONFIG);
	assert_non_null(strstr(err, "add email to scope"));
	cfg.claim = NL_CLAIM_SUB;
	cfg.env.scope = (char *)"openid";
	assert_int_equal(nl_map_check_scope(&cfg, err, sizeof(err)), 0);
	cfg_email_local(&cfg, "example.nhs.uk");
	cfg.env.scope = (char *)"openid profile";
	assert_int_equal(nl_map_check_scope(&cfg, err, sizeof(err)), NL_ERR_CONFIG);
}

static void test_email_local_absent_email_is_claim_error(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_email_local(&cfg, "example.nhs.uk");
	assert_map_fails(&cfg, "{\"sub\":\"x\",\"nhs_number\":\"" NHS_ALICE "\"}", NL_ERR_CLAIM,
	                 "no email claim");
}

static void test_email_local_right_domain_maps_lowercased(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_email_local(&cfg, "example.nhs.uk");
	assert_maps_to(&cfg, "{\"email\":\"Jane.Doe@Example.NHS.UK\",\"email_verified\":true}", "jane.doe");
}

static void test_email_local_wrong_domain_refused(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_email_local(&cfg, "example.nhs.uk");
	assert_map_fails(&cfg, "{\"email\":\"jane@other.nhs.uk\",\"email_verified\":true}", NL_ERR_NOT_FOUND,
	                 NULL);
	assert_map_fails(&cfg, "{\"email\":\"jane@sub.example.nhs.uk\",\"email_verified\":true}",
	                 NL_ERR_NOT_FOUND, NULL);
}

static void test_email_local_lookalike_domain_refused(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_email_local(&cfg, "example.nhs.uk");
	assert_map_fails(&cfg, "{\"email\":\"jane@example.nhs.uk.evil.com\",\"email_verified\":true}",
	                 NL_ERR_NOT_FOUND, NULL);
	assert_map_fails(&cfg, "{\"email\":\"jane@evilexample.nhs.uk\",\"email_verified\":true}",
	                 NL_ERR_NOT_FOUND, NULL);
}

static void test_email_local_invalid_local_part_refused(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_email_local(&cfg, "example.nhs.uk");
	assert_map_fails(&cfg, "{\"email\":\"jane+x@example.nhs.uk\"}", NL_ERR_NOT_FOUND, NULL);
	assert_map_fails(&cfg, "{\"email\":\"1jane@example.nhs.uk\"}", NL_ERR_NOT_FOUND, NULL);
	assert_map_fails(&cfg, "{\"email\":\".jane@example.nhs.uk\"}", NL_ERR_NOT_FOUND, NULL);
	assert_map_fails(&cfg, "{\"email\":\"abcdefghijklmnopqrstuvwxyzabcdefg@example.nhs.uk\"}",
	                 NL_ERR_NOT_FOUND, NULL);
}

static void test_email_local_two_at_signs_refused(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_email_local(&cfg, "example.nhs.uk");
	assert_map_fails(&cfg, "{\"email\":\"jane@evil.com@example.nhs.uk\"}", NL_ERR_CLAIM, NULL);
}

static void test_email_local_unverified_refused(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_email_local(&cfg, "example.nhs.uk");
	assert_map_fails(&cfg, "{\"email\":\"jane@example.nhs.uk\",\"email_verified\":false}", NL_ERR_CLAIM,
	                 "not verified");
}

static void test_email_local_without_domain_is_config_error(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_email_local(&cfg, NULL);
	assert_map_fails(&cfg, "{\"email\":\"jane@example.nhs.uk\"}", NL_ERR_CONFIG, "email_domain");
}

/* ---- email_local: only verified addresses, only people's accounts (issue 11, finding 7) ---- */

#define VERIFIED(addr) "{\"email\":\"" addr "\",\"email_verified\":true}"

/* A missing email_verified is not the provider saying the address is verified. */
static void test_email_local_without_email_verified_refused(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_email_local(&cfg, "example.nhs.uk");
	cfg.min_uid = 1000;
	assert_map_fails(&cfg, "{\"email\":\"jane@example.nhs.uk\"}", NL_ERR_CLAIM, "email_verified");
	assert_map_fails(&cfg, "{\"email\":\"jane@example.nhs.uk\",\"email_verified\":null}", NL_ERR_CLAIM,
	                 "not verified");
	assert_maps_to(&cfg, VERIFIED("jane@example.nhs.uk"), "jane");
}

/* root@, daemon@, nobody@ and any account below min_uid: never a sign-in. */
static void test_email_local_refuses_root_and_system_accounts(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_email_local(&cfg, "example.nhs.uk");
	cfg.min_uid = 1000;
	assert_map_fails(&cfg, VERIFIED("root@example.nhs.uk"), NL_ERR_NOT_FOUND, "system account");
	assert_map_fails(&cfg, VERIFIED("Root@Example.NHS.UK"), NL_ERR_NOT_FOUND, "system account");
	assert_map_fails(&cfg, VERIFIED("daemon@example.nhs.uk"), NL_ERR_NOT_FOUND, "system account");
	assert_map_fails(&cfg, VERIFIED("sys@example.nhs.uk"), NL_ERR_NOT_FOUND, "min_uid is 1000");
	assert_map_fails(&cfg, VERIFIED("nobody@example.nhs.uk"), NL_ERR_NOT_FOUND, "system account");
	assert_maps_to(&cfg, VERIFIED("bob@example.nhs.uk"), "bob");
	/* root stays refused whatever min_uid says */
	cfg.min_uid = 0;
	assert_map_fails(&cfg, VERIFIED("root@example.nhs.uk"), NL_ERR_NOT_FOUND, "system account");
}

static void test_email_local_min_uid_is_configurable(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_email_local(&cfg, "example.nhs.uk");
	cfg.min_uid = 500;
	assert_maps_to(&cfg, VERIFIED("sys@example.nhs.uk"), "sys");
	assert_maps_to(&cfg, VERIFIED("svc@example.nhs.uk"), "svc");
	cfg.min_uid = 501;
	assert_map_fails(&cfg, VERIFIED("svc@example.nhs.uk"), NL_ERR_NOT_FOUND, "min_uid is 501");
}

/* An address whose local part names no account maps to nothing; a failing lookup is not a match. */
static void test_email_local_unknown_account_and_failed_lookup_refused(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_email_local(&cfg, "example.nhs.uk");
	cfg.min_uid = 1000;
	assert_map_fails(&cfg, VERIFIED("ghost@example.nhs.uk"), NL_ERR_NOT_FOUND, "names no account");
	assert_map_fails(&cfg, VERIFIED("nsswitchdown@example.nhs.uk"), NL_ERR_IO, "cannot look up");
}

/* Through the real account database: root exists on every host and is refused. */
static void test_email_local_real_lookup_refuses_root(void **state)
{
	struct nl_config cfg;
	(void)state;
	cfg_email_local(&cfg, "example.nhs.uk");
	cfg.min_uid = 1000;
	nl_map_set_uid_lookup(NULL);
	assert_map_fails(&cfg, VERIFIED("root@example.nhs.uk"), NL_ERR_NOT_FOUND, "uid 0");
	assert_map_fails(&cfg, VERIFIED("no.such.account.here@example.nhs.uk"), NL_ERR_NOT_FOUND,
	                 "names no account");
	nl_map_set_uid_lookup(fake_uid);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_map_nhs_number_hit, test_teardown),
	    cmocka_unit_test_teardown(test_map_nhs_number_miss_is_not_found, test_teardown),
	    cmocka_unit_test_teardown(test_map_absent_claim_is_claim_error, test_teardown),
	    cmocka_unit_test_teardown(test_map_broken_map_reported_before_absent_claim, test_teardown),
	    cmocka_unit_test_teardown(test_map_rejects_malformed_nhs_number_claim, test_teardown),
	    cmocka_unit_test_teardown(test_map_email_case_insensitive_hit, test_teardown),
	    cmocka_unit_test_teardown(test_map_email_refuses_unverified, test_teardown),
	    cmocka_unit_test_teardown(test_map_email_without_email_verified_maps, test_teardown),
	    cmocka_unit_test_teardown(test_map_sub_hit_is_exact, test_teardown),
	    cmocka_unit_test_teardown(test_map_syntax_error_names_file_and_line, test_teardown),
	    cmocka_unit_test_teardown(test_map_invalid_user_name_names_line, test_teardown),
	    cmocka_unit_test_teardown(test_map_ambiguous_duplicate_is_error_naming_both_lines, test_teardown),
	    cmocka_unit_test_teardown(test_map_email_duplicate_differing_in_case_is_ambiguous, test_teardown),
	    cmocka_unit_test_teardown(test_map_same_value_same_user_twice_is_fine, test_teardown),
	    cmocka_unit_test_teardown(test_map_bad_check_digit_names_line, test_teardown),
	    cmocka_unit_test_teardown(test_map_nhs_value_not_ten_digits_names_line, test_teardown),
	    cmocka_unit_test_teardown(test_map_group_writable_file_refused, test_teardown),
	    cmocka_unit_test_teardown(test_map_file_made_group_writable_after_caching_refused, test_teardown),
	    cmocka_unit_test_teardown(test_map_missing_file_is_config_error, test_teardown),
	    cmocka_unit_test_teardown(test_map_check_missing_file_is_config_error_with_fix, test_teardown),
	    cmocka_unit_test_teardown(test_map_file_removed_after_caching_is_config_error, test_teardown),
	    cmocka_unit_test_teardown(test_map_file_corrupted_after_caching_is_config_error, test_teardown),
	    cmocka_unit_test_teardown(test_map_file_changed_on_disk_is_reread, test_teardown),
	    cmocka_unit_test_teardown(test_map_lookups_from_threads_while_file_changes, test_teardown),
	    cmocka_unit_test_teardown(test_map_comments_blank_lines_and_tabs_accepted, test_teardown),
	    cmocka_unit_test_teardown(test_map_check_file_accepts_good_and_names_bad, test_teardown),
	    cmocka_unit_test_teardown(test_map_check_uses_configured_claim, test_teardown),
	    cmocka_unit_test_teardown(test_map_check_scope_needs_the_claims_scope, test_teardown),
	    cmocka_unit_test_teardown(test_email_local_absent_email_is_claim_error, test_teardown),
	    cmocka_unit_test_teardown(test_email_local_right_domain_maps_lowercased, test_teardown),
	    cmocka_unit_test_teardown(test_email_local_wrong_domain_refused, test_teardown),
	    cmocka_unit_test_teardown(test_email_local_lookalike_domain_refused, test_teardown),
	    cmocka_unit_test_teardown(test_email_local_invalid_local_part_refused, test_teardown),
	    cmocka_unit_test_teardown(test_email_local_two_at_signs_refused, test_teardown),
	    cmocka_unit_test_teardown(test_email_local_unverified_refused, test_teardown),
	    cmocka_unit_test_teardown(test_email_local_without_domain_is_config_error, test_teardown),
	    cmocka_unit_test_teardown(test_email_local_without_email_verified_refused, test_teardown),
	    cmocka_unit_test_teardown(test_email_local_refuses_root_and_system_accounts, test_teardown),
	    cmocka_unit_test_teardown(test_email_local_min_uid_is_configurable, test_teardown),
	    cmocka_unit_test_teardown(test_email_local_unknown_account_and_failed_lookup_refused,
	                              test_teardown),
	    cmocka_unit_test_teardown(test_email_local_real_lookup_refuses_root, test_teardown),
	};
	return cmocka_run_group_tests_name("mapping", tests, group_setup, group_teardown);
}
