/* Identity from the directory ([identity] source = ldap, src/oidc/directory.c): RFC 4515 escaping,
 * and nl_map_identity against a real slapd started by the test (tests/lib/slapdproc.h): matches,
 * ambiguity, injection attempts, TLS that must hold, binds, timeouts and the cache. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cmocka.h>
#include <jansson.h>

#include "directory.h"
#include "mapping.h"
#include "nl_config.h"
#include "nl_err.h"
#include "nl_time.h"
#include "skip.h"
#include "slapdproc.h"

#define NHS_ALICE "9434765919" /* a valid NHS number (check digit 9) */
#define NHS_NOONE "4010232137" /* valid, in no entry */
#define NHS_TWINS "4857773457" /* valid, in two entries */

#define SUB_FILTER "(&(objectClass=inetOrgPerson)(employeeType=%s))"
#define NHS_FILTER "(&(objectClass=inetOrgPerson)(employeeNumber=%s))"

/* The directory's people: cn, then their other attributes (LDIF lines). */
static const char *const PEOPLE[][2] = {
    {"alice",
     "uid: alice\nemployeeNumber: " NHS_ALICE "\nemployeeType: sub-alice\nmail: alice@example.org\n"},
    {"bob", "uid: Bob\nemployeeType: sub-bob\n"},
    {"literalstar", "uid: literalstar\nemployeeType: *\n"},
    {"twin1", "uid: twin1\nemployeeNumber: " NHS_TWINS "\nemployeeType: sub-twin\n"},
    {"twin2", "uid: twin2\nemployeeNumber: " NHS_TWINS "\nemployeeType: sub-twin\n"},
    {"root-alias", "uid: root\nemployeeType: sub-root\n"},
    {"daemon-alias", "uid: daemon\nemployeeType: sub-daemon\n"},
    {"nobody-alias", "uid: nobody\nemployeeType: sub-nobody\n"},
    {"bad-name", "uid: bad user\nemployeeType: sub-badname\n"},
    {"dash-name", "uid: -rf\nemployeeType: sub-dashname\n"},
    {"carol", "uid: carol\nuid: carol2\nemployeeType: sub-carol\n"},
    {"nouid", "employeeType: sub-nouid\n"},
    {"ghost", "uid: ghost\nemployeeType: sub-ghost\n"},
};

static char entries[8192];

/* ou=people and PEOPLE as LDIF, into entries. */
static void make_entries(void)
{
	size_t n = (size_t)snprintf(entries, sizeof(entries),
	                            "dn: ou=people," SLAPDPROC_SUFFIX
	                            "\nobjectClass: organizationalUnit\nou: people\n\n");

	for (size_t i = 0; i < sizeof(PEOPLE) / sizeof(PEOPLE[0]) && n < sizeof(entries); i++)
		n += (size_t)snprintf(entries + n, sizeof(entries) - n,
		                      "dn: cn=%s,ou=people," SLAPDPROC_SUFFIX
		                      "\nobjectClass: inetOrgPerson\ncn: %s\nsn: y\n%s\n",
		                      PEOPLE[i][0], PEOPLE[i][0], PEOPLE[i][1]);
}

/* The servers every test shares: one with StartTLS and ldaps, one without TLS. */
static struct {
	char skip[256]; /* non-empty: slapd is not usable here, why */
	char fail[640]; /* non-empty: it is, but did not start */
	struct slapdproc *tls, *plain;
} g;

struct fx {
	struct nl_config cfg;
	char err[512];
	char *user;
	struct slapdproc *own; /* a server of the test's own, freed by teardown */
};

/* The accounts of this "computer". */
static int fake_uid(const char *user, uid_t *uid)
{
	static const struct {
		const char *name;
		uid_t uid;
	} accounts[] = {{"alice", 1001}, {"bob", 1002},   {"literalstar", 1003},
	                {"twin1", 1004}, {"twin2", 1005}, {"carol", 1006},
	                {"root", 0},     {"daemon", 1},   {"nobody", 65534}};

	for (size_t i = 0; i < sizeof(accounts) / sizeof(accounts[0]); i++)
		if (strcmp(user, accounts[i].name) == 0) {
			*uid = accounts[i].uid;
			return 0;
		}
	return NL_ERR_NOT_FOUND;
}

static int group_setup(void **state)
{
	struct slapdproc_opts tls = {entries, true}, plain = {entries, false};
	char why[512];

	(void)state;
	make_entries();
	nl_map_set_uid_lookup(fake_uid);
	if (!slapdproc_available(true, g.skip, sizeof(g.skip)))
		return 0;
	if (slapdproc_start(&tls, &g.tls, why, sizeof(why)) != 0 ||
	    slapdproc_start(&plain, &g.plain, why, sizeof(why)) != 0)
		snprintf(g.fail, sizeof(g.fail), "slapd did not start: %s", why);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	slapdproc_free(g.tls);
	slapdproc_free(g.plain);
	nl_map_set_uid_lookup(NULL);
	return 0;
}

static void set(struct fx *f, const char *section, const char *key, const char *value)
{
	f->err[0] = '\0';
	if (nl_config_set(&f->cfg, section, key, value, f->err, sizeof(f->err)) != 0)
		fail_msg("%s %s = %s: %s", section, key, value, f->err);
}

/* claim = sub against the TLS server over StartTLS with its CA; no cache. */
static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	nl_config_init(&f->cfg);
	nl_map_cache_flush();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	slapdproc_free(f->own);
	free(f->user);
	nl_config_free(&f->cfg);
	free(f);
	return 0;
}

/* Skip without slapd; fail if it is there but did not start; else set up cfg for server sp
 * (g.tls if NULL) with StartTLS and its CA, claim sub. */
static void use(struct fx *f, struct slapdproc *sp)
{
	if (g.skip[0] != '\0')
		skip_because("%s", g.skip);
	if (g.fail[0] != '\0')
		fail_msg("%s", g.fail);
	if (sp == NULL)
		sp = g.tls;
	set(f, "identity", "source", "ldap");
	set(f, "identity", "claim", "sub");
	set(f, "ldap", "uri", slapdproc_uri(sp));
	set(f, "ldap", "base", SLAPDPROC_SUFFIX);
	set(f, "ldap", "filter", SUB_FILTER);
	set(f, "ldap", "attribute", "uid");
	set(f, "ldap", "timeout", "2");
	set(f, "ldap", "cache_ttl", "0");
	if (slapdproc_ca_file(sp) != NULL)
		set(f, "ldap", "ca_file", slapdproc_ca_file(sp));
}

/* nl_map_identity with {"claim": value}; the user (if any) in f->user, the error in f->err. */
static int map(struct fx *f, const char *claim, const char *value)
{
	json_t *claims = json_pack("{ss}", claim, value);
	int r;

	assert_non_null(claims);
	free(f->user);
	f->user = NULL;
	f->err[0] = '\0';
	r = nl_map_identity(&f->cfg, claims, &f->user, f->err, sizeof(f->err));
	json_decref(claims);
	if (r != 0)
		print_message("# %s\n", f->err);
	return r;
}

static int map_sub(struct fx *f, const char *sub)
{
	return map(f, "sub", sub);
}

static void assert_maps(struct fx *f, const char *sub, const char *user)
{
	assert_int_equal(map_sub(f, sub), 0);
	assert_string_equal(f->user, user);
}

/* ---- escaping (no server) ---- */

static void assert_escapes(const char *in, size_t n, const char *want)
{
	char *out = NULL;

	assert_int_equal(nl_dir_escape(in, n, &out), 0);
	assert_string_equal(out, want);
	free(out);
}

static void test_escape_rfc4515_specials(void **state)
{
	(void)state;
	assert_escapes("*", 1, "\\2a");
	assert_escapes("(", 1, "\\28");
	assert_escapes(")", 1, "\\29");
	assert_escapes("\\", 1, "\\5c");
	assert_escapes("\0", 1, "\\00");
	assert_escapes("a\0b", 3, "a\\00b");
	assert_escapes("*)(uid=*", 8, "\\2a\\29\\28uid=\\2a");
	assert_escapes("\\2a", 3, "\\5c2a");
	assert_escapes("*)(|(objectClass=*", 18, "\\2a\\29\\28|\\28objectClass=\\2a");
}

static void test_escape_every_byte_outside_printable_ascii(void **state)
{
	char in[1], want[8];

	(void)state;
	for (int c = 0; c < 256; c++) {
		in[0] = (char)c;
		if (c < 0x20 || c > 0x7e || c == '*' || c == '(' || c == ')' || c == '\\')
			snprintf(want, sizeof(want), "\\%02x", c);
		else
			snprintf(want, sizeof(want), "%c", c);
		assert_escapes(in, 1, want);
	}
	assert_escapes("\xc3\xa9t\xc3\xa9", 5, "\\c3\\a9t\\c3\\a9");
	assert_escapes("abc-XYZ 09@.+_=,;\"<>&|!~", 24, "abc-XYZ 09@.+_=,;\"<>&|!~");
	assert_escapes("", 0, "");
}

static void test_escape_bounds_the_value(void **state)
{
	char big[NL_DIR_MAX_VALUE + 1], *out = NULL;

	(void)state;
	memset(big, '*', sizeof(big));
	assert_int_equal(nl_dir_escape(big, sizeof(big), &out), NL_ERR_INVALID);
	assert_null(out);
	assert_int_equal(nl_dir_escape(big, NL_DIR_MAX_VALUE, &out), 0);
	assert_int_equal(strlen(out), 3 * NL_DIR_MAX_VALUE);
	free(out);
}

static void test_filter_puts_the_escaped_value_in_place(void **state)
{
	char *f = NULL;

	(void)state;
	assert_int_equal(nl_dir_filter(SUB_FILTER, "*)(uid=alice", 12, &f), 0);
	assert_string_equal(f, "(&(objectClass=inetOrgPerson)(employeeType=\\2a\\29\\28uid=alice))");
	free(f);
	assert_int_equal(nl_dir_filter("(uid=%s)", "%s%n", 4, &f), 0);
	assert_string_equal(f, "(uid=%s%n)");
	free(f);
	assert_int_equal(nl_dir_filter("(uid=x)", "a", 1, &f), NL_ERR_CONFIG);
	assert_int_equal(nl_dir_filter("(|(uid=%s)(cn=%s))", "a", 1, &f), NL_ERR_CONFIG);
	assert_null(f);
}

/* ---- lookups ---- */

static void test_ldap_match_over_starttls_with_the_ca(void **state)
{
	struct fx *f = *state;
	int64_t t0;

	use(f, NULL);
	t0 = nl_mono_ms();
	assert_maps(f, "sub-alice", "alice");
	print_message("# lookup over StartTLS with a bind-less search: %lld ms\n",
	              (long long)(nl_mono_ms() - t0));
	/* nhs_number through its own filter */
	set(f, "identity", "claim", "nhs_number");
	set(f, "ldap", "filter", NHS_FILTER);
	assert_int_equal(map(f, "nhs_number", NHS_ALICE), 0);
	assert_string_equal(f->user, "alice");
}

static void test_ldap_match_over_ldaps(void **state)
{
	struct fx *f = *state;

	use(f, NULL);
	set(f, "ldap", "uri", slapdproc_ldaps_uri(g.tls));
	assert_int_equal(nl_ldap_tls_of(&f->cfg), NL_LDAP_TLS_LDAPS);
	assert_maps(f, "sub-alice", "alice");
}

static void test_ldap_attribute_value_is_lower_cased(void **state)
{
	struct fx *f = *state;

	use(f, NULL);
	assert_maps(f, "sub-bob", "bob"); /* the directory says "Bob" */
}

static void test_ldap_no_match_is_not_linked(void **state)
{
	struct fx *f = *state;

	use(f, NULL);
	assert_int_equal(map_sub(f, "sub-nobody-has-this"), NL_ERR_NOT_FOUND);
	assert_null(f->user);
	assert_non_null(strstr(f->err, "no entry for this sub"));
	set(f, "identity", "claim", "nhs_number");
	set(f, "ldap", "filter", NHS_FILTER);
	assert_int_equal(map(f, "nhs_number", NHS_NOONE), NL_ERR_NOT_FOUND);
	assert_null(strstr(f->err, NHS_NOONE));
}

static void test_ldap_two_matches_are_ambiguous_and_denied(void **state)
{
	struct fx *f = *state;

	use(f, NULL);
	assert_int_equal(map_sub(f, "sub-twin"), NL_ERR_NOT_FOUND);
	assert_null(f->user);
	assert_non_null(strstr(f->err, "ambiguous"));
	assert_null(strstr(f->err, "sub-twin"));
	set(f, "identity", "claim", "nhs_number");
	set(f, "ldap", "filter", NHS_FILTER);
	assert_int_equal(map(f, "nhs_number", NHS_TWINS), NL_ERR_NOT_FOUND);
	assert_non_null(strstr(f->err, "ambiguous"));
	assert_null(strstr(f->err, NHS_TWINS));
	/* a filter matching everyone: still one answer or none, never the first of many */
	set(f, "identity", "claim", "sub");
	set(f, "ldap", "filter", "(|(objectClass=inetOrgPerson)(employeeType=%s))");
	assert_int_equal(map_sub(f, "sub-alice"), NL_ERR_NOT_FOUND);
	assert_non_null(strstr(f->err, "ambiguous"));
}

/* ---- injection: the claim's value is data, never filter syntax ---- */

static void test_ldap_injected_star_matches_only_a_literal_star(void **state)
{
	struct fx *f = *state;

	use(f, NULL);
	/* unescaped, (employeeType=*) would match every entry */
	assert_maps(f, "*", "literalstar");
}

static void test_ldap_injected_wildcard_prefix_matches_nothing(void **state)
{
	struct fx *f = *state;

	use(f, NULL);
	/* unescaped, (employeeType=sub-ali*) would match alice alone: a wrong sign-in */
	assert_int_equal(map_sub(f, "sub-ali*"), NL_ERR_NOT_FOUND);
	assert_int_equal(map_sub(f, "*-alice"), NL_ERR_NOT_FOUND);
	assert_null(f->user);
}

static void test_ldap_injected_filter_clause_matches_nothing(void **state)
{
	struct fx *f = *state;

	use(f, NULL);
	/* unescaped: (&(objectClass=inetOrgPerson)(employeeType=*)(uid=alice)), alice */
	assert_int_equal(map_sub(f, "*)(uid=alice"), NL_ERR_NOT_FOUND);
	assert_null(f->user);
	assert_int_equal(map_sub(f, "x)(|(uid=alice)(uid=*"), NL_ERR_NOT_FOUND);
	assert_int_equal(map_sub(f, "*)(uid=*"), NL_ERR_NOT_FOUND);
	assert_null(strstr(f->err, "ambiguous"));
	assert_int_equal(map_sub(f, "sub-alice)"), NL_ERR_NOT_FOUND);
	assert_null(f->user);
}

static void test_ldap_injected_escape_sequence_is_literal(void **state)
{
	struct fx *f = *state;

	use(f, NULL);
	/* unescaped, \2a is a literal '*' and would name literalstar */
	assert_int_equal(map_sub(f, "\\2a"), NL_ERR_NOT_FOUND);
	assert_int_equal(map_sub(f, "sub-\xc3\xa5lice"), NL_ERR_NOT_FOUND);
	assert_null(f->user);
}

static void test_ldap_nul_in_claim_never_reaches_the_directory(void **state)
{
	struct fx *f = *state;
	json_t *claims;

	use(f, NULL);
	claims = json_pack("{s:s%}", "sub", "sub-alice\0*", (size_t)11);
	assert_non_null(claims);
	assert_int_equal(nl_map_identity(&f->cfg, claims, &f->user, f->err, sizeof(f->err)), NL_ERR_CLAIM);
	assert_null(f->user);
	json_decref(claims);
}

static void test_ldap_malformed_nhs_number_never_reaches_the_directory(void **state)
{
	struct fx *f = *state;

	use(f, NULL);
	set(f, "identity", "claim", "nhs_number");
	set(f, "ldap", "filter", NHS_FILTER);
	set(f, "ldap", "uri", "ldap://127.0.0.1:1"); /* nothing there: reaching it would be unavailable */
	assert_int_equal(map(f, "nhs_number", "*"), NL_ERR_CLAIM);
	assert_int_equal(map(f, "nhs_number", "943476591*"), NL_ERR_CLAIM);
}

/* ---- the account the directory names ---- */

static void test_ldap_root_and_system_accounts_denied(void **state)
{
	struct fx *f = *state;

	use(f, NULL);
	assert_int_equal(map_sub(f, "sub-root"), NL_ERR_NOT_FOUND);
	assert_non_null(strstr(f->err, "system account"));
	assert_int_equal(map_sub(f, "sub-daemon"), NL_ERR_NOT_FOUND);
	assert_int_equal(map_sub(f, "sub-nobody"), NL_ERR_NOT_FOUND);
	/* min_uid is the floor */
	set(f, "identity", "min_uid", "1002");
	assert_int_equal(map_sub(f, "sub-alice"), NL_ERR_NOT_FOUND);
	assert_null(f->user);
	assert_maps(f, "sub-bob", "bob");
}

static void test_ldap_invalid_user_names_denied(void **state)
{
	struct fx *f = *state;

	use(f, NULL);
	assert_int_equal(map_sub(f, "sub-badname"), NL_ERR_NOT_FOUND);
	assert_non_null(strstr(f->err, "not a valid user name"));
	assert_int_equal(map_sub(f, "sub-dashname"), NL_ERR_NOT_FOUND);
	assert_null(f->user);
}

static void test_ldap_not_exactly_one_value_denied(void **state)
{
	struct fx *f = *state;

	use(f, NULL);
	assert_int_equal(map_sub(f, "sub-carol"), NL_ERR_NOT_FOUND);
	assert_non_null(strstr(f->err, "2 values of uid"));
	assert_int_equal(map_sub(f, "sub-nouid"), NL_ERR_NOT_FOUND);
	assert_non_null(strstr(f->err, "0 values of uid"));
	assert_null(f->user);
}

static void test_ldap_unknown_account_denied(void **state)
{
	struct fx *f = *state;

	use(f, NULL);
	assert_int_equal(map_sub(f, "sub-ghost"), NL_ERR_NOT_FOUND);
	assert_non_null(strstr(f->err, "names no account here"));
}

/* ---- the directory down, slow, or not what it claims: unavailable, never plaintext ---- */

static int64_t timed_map(struct fx *f, const char *sub, int *r)
{
	int64_t t0 = nl_mono_ms();

	*r = map_sub(f, sub);
	return nl_mono_ms() - t0;
}

static void test_ldap_server_down_is_unavailable_at_once(void **state)
{
	struct slapdproc_opts o = {entries, false};
	struct fx *f = *state;
	char why[512];
	int64_t ms;
	int r;

	use(f, NULL);
	assert_int_equal(slapdproc_start(&o, &f->own, why, sizeof(why)), 0);
	set(f, "ldap", "uri", slapdproc_uri(f->own));
	set(f, "ldap", "tls", "none");
	assert_maps(f, "sub-alice", "alice");
	slapdproc_stop(f->own);
	ms = timed_map(f, "sub-alice", &r);
	print_message("# slapd stopped: unavailable after %lld ms (timeout 2 s)\n", (long long)ms);
	assert_int_equal(r, NL_ERR_UNAVAILABLE);
	assert_null(f->user);
	assert_true(ms < 2000);
}

/* A listener that never answers (the kernel completes the handshake; nobody reads): each wait
 * ends at [ldap] timeout. */
static void test_ldap_silent_server_is_unavailable_within_the_timeout(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	struct fx *f = *state;
	char uri[64];
	int64_t ms;
	int fd, r;

	use(f, NULL);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	snprintf(uri, sizeof(uri), "ldap://127.0.0.1:%d", ntohs(a.sin_port));
	set(f, "ldap", "uri", uri);
	set(f, "ldap", "timeout", "1");
	ms = timed_map(f, "sub-alice", &r);
	print_message("# silent server, StartTLS: unavailable after %lld ms (timeout 1 s)\n", (long long)ms);
	assert_int_equal(r, NL_ERR_UNAVAILABLE);
	assert_true(ms >= 900 && ms < 3000);
	set(f, "ldap", "tls", "none");
	ms = timed_map(f, "sub-alice", &r);
	print_message("# silent server, plain search: unavailable after %lld ms (timeout 1 s)\n",
	              (long long)ms);
	assert_int_equal(r, NL_ERR_UNAVAILABLE);
	assert_true(ms >= 900 && ms < 3000);
	close(fd);
}

static void test_ldap_starttls_required_against_a_server_without_tls(void **state)
{
	struct fx *f = *state;

	use(f, g.plain);
	/* the default: StartTLS, and no plaintext after it fails */
	assert_int_equal(map_sub(f, "sub-alice"), NL_ERR_UNAVAILABLE);
	assert_non_null(strstr(f->err, "StartTLS"));
	assert_null(f->user);
	set(f, "ldap", "tls", "starttls");
	assert_int_equal(map_sub(f, "sub-alice"), NL_ERR_UNAVAILABLE);
	/* the same server answers when plaintext is asked for in writing */
	set(f, "ldap", "tls", "none");
	assert_maps(f, "sub-alice", "alice");
}

static void test_ldap_certificate_from_another_ca_is_unavailable(void **state)
{
	struct fx *f = *state;

	use(f, NULL);
	set(f, "ldap", "ca_file", slapdproc_other_ca_file(g.tls));
	assert_int_equal(map_sub(f, "sub-alice"), NL_ERR_UNAVAILABLE);
	assert_null(f->user);
	set(f, "ldap", "uri", slapdproc_ldaps_uri(g.tls));
	assert_int_equal(map_sub(f, "sub-alice"), NL_ERR_UNAVAILABLE);
	assert_null(f->user);
	/* the right CA: the same lookups work */
	set(f, "ldap", "ca_file", slapdproc_ca_file(g.tls));
	assert_maps(f, "sub-alice", "alice");
}

/* ---- binding ---- */

static void put_password(struct fx *f, const char *text, mode_t mode)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/bind.pw", slapdproc_dir(g.tls));
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	set(f, "ldap", "bind_dn", SLAPDPROC_BIND_DN);
	set(f, "ldap", "bind_password_file", path);
}

static void test_ldap_bind_with_the_password_file(void **state)
{
	struct fx *f = *state;

	use(f, NULL);
	put_password(f, SLAPDPROC_BIND_PASSWORD "\n", 0600);
	assert_maps(f, "sub-alice", "alice");
	put_password(f, SLAPDPROC_BIND_PASSWORD, 0400);
	assert_maps(f, "sub-alice", "alice");
}

static void test_ldap_wrong_bind_password_is_unavailable(void **state)
{
	struct fx *f = *state;

	use(f, NULL);
	put_password(f, "not-the-password\n", 0600);
	assert_int_equal(map_sub(f, "sub-alice"), NL_ERR_UNAVAILABLE);
	assert_non_null(strstr(f->err, "bind"));
	assert_null(strstr(f->err, "not-the-password"));
	assert_null(f->user);
}

static void test_ldap_empty_password_is_refused_not_sent(void **state)
{
	struct fx *f = *state;

	use(f, NULL);
	/* a DN with an empty password is an "unauthenticated bind" (RFC 4513 5.1.2) */
	put_password(f, "\n", 0600);
	assert_int_equal(map_sub(f, "sub-alice"), NL_ERR_CONFIG);
	assert_non_null(strstr(f->err, "bind_password_file is empty"));
}

static void test_ldap_readable_password_file_is_refused(void **state)
{
	struct fx *f = *state;

	use(f, NULL);
	put_password(f, SLAPDPROC_BIND_PASSWORD "\n", 0644);
	assert_int_equal(map_sub(f, "sub-alice"), NL_ERR_PERM);
	assert_null(f->user);
	assert_null(strstr(f->err, SLAPDPROC_BIND_PASSWORD));
}

/* ---- the cache ---- */

static void test_ldap_cache_answers_while_the_server_is_down_until_ttl(void **state)
{
	struct slapdproc_opts o = {entries, false};
	struct fx *f = *state;
	int64_t cold, warm, t0;
	char why[512];
	int r;

	use(f, NULL);
	assert_int_equal(slapdproc_start(&o, &f->own, why, sizeof(why)), 0);
	set(f, "ldap", "uri", slapdproc_uri(f->own));
	set(f, "ldap", "tls", "none");
	set(f, "ldap", "cache_ttl", "2");
	cold = timed_map(f, "sub-alice", &r);
	assert_int_equal(r, 0);
	t0 = nl_mono_ms();
	slapdproc_stop(f->own);
	warm = timed_map(f, "sub-alice", &r);
	print_message("# lookup: %lld ms from the directory, %lld ms from the cache\n", (long long)cold,
	              (long long)warm);
	assert_int_equal(r, 0);
	assert_string_equal(f->user, "alice");
	/* only what was found is cached: another person is not */
	assert_int_equal(map_sub(f, "sub-bob"), NL_ERR_UNAVAILABLE);
	/* the account checks run on every answer, cached or not */
	set(f, "identity", "min_uid", "1002");
	assert_int_equal(map_sub(f, "sub-alice"), NL_ERR_NOT_FOUND);
	set(f, "identity", "min_uid", "1000");
	/* other settings, another key: not served from this directory's answers */
	set(f, "ldap", "base", "ou=people," SLAPDPROC_SUFFIX);
	assert_int_equal(map_sub(f, "sub-alice"), NL_ERR_UNAVAILABLE);
	set(f, "ldap", "base", SLAPDPROC_SUFFIX);
	while (nl_mono_ms() - t0 < 2100)
		usleep(50 * 1000);
	assert_int_equal(map_sub(f, "sub-alice"), NL_ERR_UNAVAILABLE);
	assert_null(f->user);
}

static void test_ldap_cache_ttl_zero_never_caches(void **state)
{
	struct slapdproc_opts o = {entries, false};
	struct fx *f = *state;
	char why[512];

	use(f, NULL);
	assert_int_equal(slapdproc_start(&o, &f->own, why, sizeof(why)), 0);
	set(f, "ldap", "uri", slapdproc_uri(f->own));
	set(f, "ldap", "tls", "none");
	assert_maps(f, "sub-alice", "alice");
	slapdproc_stop(f->own);
	assert_int_equal(map_sub(f, "sub-alice"), NL_ERR_UNAVAILABLE);
}

struct worker {
	const struct nl_config *cfg;
	int failures;
};

static void *lookups(void *arg)
{
	struct worker *w = arg;
	static const char *const subs[][2] = {
	    {"sub-alice", "alice"}, {"sub-bob", "bob"}, {"*", "literalstar"}};

	for (int i = 0; i < 30; i++) {
		json_t *claims = json_pack("{ss}", "sub", subs[i % 3][0]);
		char *user = NULL;

		if (claims == NULL || nl_map_identity(w->cfg, claims, &user, NULL, 0) != 0 || user == NULL ||
		    strcmp(user, subs[i % 3][1]) != 0)
			w->failures++;
		free(user);
		json_decref(claims);
	}
	return NULL;
}

static void test_ldap_lookups_from_threads(void **state)
{
	struct fx *f = *state;
	struct worker w[6];
	pthread_t t[6];

	use(f, NULL);
	for (int round = 0; round < 2; round++) {
		set(f, "ldap", "cache_ttl", round == 0 ? "0" : "60");
		for (int i = 0; i < 6; i++) {
			w[i] = (struct worker){&f->cfg, 0};
			assert_int_equal(pthread_create(&t[i], NULL, lookups, &w[i]), 0);
		}
		/* every thread joined before any assertion, which would end the test under them */
		for (int i = 0; i < 6; i++)
			pthread_join(t[i], NULL);
		for (int i = 0; i < 6; i++)
			assert_int_equal(w[i].failures, 0);
	}
}

/* ---- nhsloginctl check's directory half ---- */

static void test_ldap_check_binds_and_reads_the_base(void **state)
{
	struct fx *f = *state;

	use(f, NULL);
	put_password(f, SLAPDPROC_BIND_PASSWORD "\n", 0600);
	assert_int_equal(nl_dir_check(&f->cfg, f->err, sizeof(f->err)), 0);
	set(f, "ldap", "base", "ou=nowhere," SLAPDPROC_SUFFIX);
	assert_int_equal(nl_dir_check(&f->cfg, f->err, sizeof(f->err)), NL_ERR_CONFIG);
	assert_non_null(strstr(f->err, "does not exist"));
	set(f, "ldap", "base", SLAPDPROC_SUFFIX);
	set(f, "ldap", "ca_file", slapdproc_other_ca_file(g.tls));
	assert_int_equal(nl_dir_check(&f->cfg, f->err, sizeof(f->err)), NL_ERR_UNAVAILABLE);
	set(f, "ldap", "ca_file", slapdproc_ca_file(g.tls));
	put_password(f, "wrong\n", 0600);
	assert_int_equal(nl_dir_check(&f->cfg, f->err, sizeof(f->err)), NL_ERR_UNAVAILABLE);
	assert_non_null(strstr(f->err, "Invalid credentials"));
}

int main(void)
{
	/* a wait that is not bounded must fail the test, not hang it */
	alarm(120);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_escape_rfc4515_specials),
	    T(test_escape_every_byte_outside_printable_ascii),
	    T(test_escape_bounds_the_value),
	    T(test_filter_puts_the_escaped_value_in_place),
	    T(test_ldap_match_over_starttls_with_the_ca),
	    T(test_ldap_match_over_ldaps),
	    T(test_ldap_attribute_value_is_lower_cased),
	    T(test_ldap_no_match_is_not_linked),
	    T(test_ldap_two_matches_are_ambiguous_and_denied),
	    T(test_ldap_injected_star_matches_only_a_literal_star),
	    T(test_ldap_injected_wildcard_prefix_matches_nothing),
	    T(test_ldap_injected_filter_clause_matches_nothing),
	    T(test_ldap_injected_escape_sequence_is_literal),
	    T(test_ldap_nul_in_claim_never_reaches_the_directory),
	    T(test_ldap_malformed_nhs_number_never_reaches_the_directory),
	    T(test_ldap_root_and_system_accounts_denied),
	    T(test_ldap_invalid_user_names_denied),
	    T(test_ldap_not_exactly_one_value_denied),
	    T(test_ldap_unknown_account_denied),
	    T(test_ldap_server_down_is_unavailable_at_once),
	    T(test_ldap_silent_server_is_unavailable_within_the_timeout),
	    T(test_ldap_starttls_required_against_a_server_without_tls),
	    T(test_ldap_certificate_from_another_ca_is_unavailable),
	    T(test_ldap_bind_with_the_password_file),
	    T(test_ldap_wrong_bind_password_is_unavailable),
	    T(test_ldap_empty_password_is_refused_not_sent),
	    T(test_ldap_readable_password_file_is_refused),
	    T(test_ldap_cache_answers_while_the_server_is_down_until_ttl),
	    T(test_ldap_cache_ttl_zero_never_caches),
	    T(test_ldap_lookups_from_threads),
	    T(test_ldap_check_binds_and_reads_the_base),
	};
#undef T
	return cmocka_run_group_tests_name("ldap", tests, group_setup, group_teardown);
}
