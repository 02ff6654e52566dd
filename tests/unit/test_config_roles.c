/* Configuration of the trust-wide roles (DESIGN.md, "Interfaces"; doc/bridge.md): [daemon] role,
 * [store], [agent] and [bridge] hosts_dir load with their values; what each role needs is asked for
 * with FILE:LINE (the line of role =); bad values are refused with FILE:LINE; an agent needs no
 * client key or redirect_uri; the secret files of [store] are checked like the client key. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
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

struct fx {
	char dir[64];
	char main[128];
	char err[1024];
	struct nl_config cfg;
};

static const char *const ENV_FULL = "issuer = https://auth.sandpit.signin.nhs.uk\n"
                                    "client_id = test-client\n"
                                    "client_key = ../keys/client.pem\n"
                                    "redirect_uri = https://signin.example.org/callback\n";
/* What an agent's environment file may be: no client key, no callback. */
static const char *const ENV_AGENT = "issuer = https://auth.sandpit.signin.nhs.uk\n"
                                     "client_id = test-client\n";

static void put(const struct fx *f, const char *name, const char *text, mode_t mode)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char path[128];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/nl-cfgroles.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(chmod(f->dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/environments", f->dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/keys", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/hosts", f->dir);
	assert_int_equal(mkdir(path, 0755), 0);
	put(f, "keys/client.pem", "not parsed here\n", 0600);
	put(f, "keys/index.key", "0123456789abcdef0123456789abcdef\n", 0600);
	put(f, "keys/redis.pw", "secret\n", 0600);
	put(f, "users.map", "", 0644);
	put(f, "environments/test.conf", ENV_FULL, 0644);
	snprintf(f->main, sizeof(f->main), "%s/nhslogin.conf", f->dir);
	nl_config_init(&f->cfg);
	*state = f;
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	nl_config_free(&f->cfg);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Load main (the text given) with the environment file env; the result and f->err. */
static int load(struct fx *f, const char *main_text, const char *env)
{
	char text[4096];

	snprintf(text, sizeof(text), "environment = test\n%s\n[identity]\nmap_file = users.map\n", main_text);
	put(f, "nhslogin.conf", text, 0644);
	put(f, "environments/test.conf", env, 0644);
	nl_config_free(&f->cfg);
	nl_config_init(&f->cfg);
	f->err[0] = '\0';
	return nl_config_load(f->main, &f->cfg, 0, f->err, sizeof(f->err));
}

/* err says "FILE:LINE" of the main file, and holds needle. */
static void assert_err_at(const struct fx *f, unsigned line, const char *needle)
{
	char at[192];

	snprintf(at, sizeof(at), "%s:%u", f->main, line);
	if (strstr(f->err, at) == NULL || strstr(f->err, needle) == NULL)
		fail_msg("error '%s' lacks '%s' or '%s'", f->err, at, needle);
}

#define BRIDGE_OK                                                                                            \
	"[daemon]\nrole = bridge\n[bridge]\nhosts_dir = hosts\n[store]\nurl = redis://10.0.0.5:6379/2\n"     \
	"index_key_file = keys/index.key\npassword_file = keys/redis.pw\ntimeout_ms = 500\n"

static void test_role_is_local_by_default(void **state)
{
	struct fx *f = *state;

	assert_int_equal(load(f, "", ENV_FULL), 0);
	assert_int_equal(f->cfg.role, NL_ROLE_LOCAL);
	assert_null(f->cfg.store_url);
	assert_null(f->cfg.agent_bridge_url);
	assert_int_equal(f->cfg.store_timeout_ms, 1000);
}

static void test_bridge_loads_its_store_and_hosts(void **state)
{
	struct fx *f = *state;
	char want[160];

	assert_int_equal(load(f, BRIDGE_OK, ENV_FULL), 0);
	assert_int_equal(f->cfg.role, NL_ROLE_BRIDGE);
	assert_string_equal(f->cfg.store_url, "redis://10.0.0.5:6379/2");
	assert_int_equal(f->cfg.store_timeout_ms, 500);
	snprintf(want, sizeof(want), "%s/hosts", f->dir);
	assert_string_equal(f->cfg.hosts_dir, want); /* relative to the file's directory */
	snprintf(want, sizeof(want), "%s/keys/index.key", f->dir);
	assert_string_equal(f->cfg.store_index_key_file, want);
}

static void test_bridge_with_sentinels(void **state)
{
	struct fx *f = *state;

	assert_int_equal(load(f,
	                      "[daemon]\nrole = bridge\n[bridge]\nhosts_dir = hosts\n[store]\n"
	                      "sentinels = 10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379\nmaster = nhslogin\n"
	                      "index_key_file = keys/index.key\n",
	                      ENV_FULL),
	                 0);
	assert_string_equal(f->cfg.store_master, "nhslogin");
}

static void test_bridge_needs_store_index_key_and_hosts(void **state)
{
	struct fx *f = *state;

	assert_int_not_equal(load(f, "[daemon]\nrole = bridge\n[bridge]\nhosts_dir = hosts\n", ENV_FULL), 0);
	assert_err_at(f, 3, "[store] url, or sentinels with master");
	assert_int_not_equal(load(f,
	                          "[daemon]\nrole = bridge\n[bridge]\nhosts_dir = hosts\n[store]\n"
	                          "url = redis://127.0.0.1:6379\n",
	                          ENV_FULL),
	                     0);
	assert_err_at(f, 3, "index_key_file");
	assert_int_not_equal(load(f,
	                          "[daemon]\nrole = bridge\n[store]\nurl = redis://127.0.0.1:6379\n"
	                          "index_key_file = keys/index.key\n",
	                          ENV_FULL),
	                     0);
	assert_err_at(f, 3, "hosts_dir");
	assert_int_not_equal(load(f,
	                          "[daemon]\nrole = bridge\n[bridge]\nhosts_dir = hosts\n[store]\n"
	                          "url = redis://127.0.0.1:6379\nsentinels = 10.0.0.1:26379\nmaster = m\n"
	                          "index_key_file = keys/index.key\n",
	                          ENV_FULL),
	                     0);
	assert_err_at(f, 3, "one of the two");
	assert_int_not_equal(load(f,
	                          "[daemon]\nrole = bridge\n[bridge]\nhosts_dir = hosts\n[store]\n"
	                          "sentinels = 10.0.0.1:26379\nindex_key_file = keys/index.key\n",
	                          ENV_FULL),
	                     0);
	assert_non_null(strstr(f->err, "master"));
}

static void test_store_secrets_are_checked_like_keys(void **state)
{
	struct fx *f = *state;

	put(f, "keys/index.key", "0123456789abcdef0123456789abcdef\n", 0644);
	assert_int_not_equal(load(f, BRIDGE_OK, ENV_FULL), 0);
	assert_non_null(strstr(f->err, "index.key"));
}

static void test_bad_role_values_name_file_and_line(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *text;
		unsigned line;
		const char *needle;
	} bad[] = {
	    {"[daemon]\nrole = central\n", 3, "role"},
	    {"[store]\nurl = http://10.0.0.5:6379\n", 3, "not a Redis address"},
	    {"[store]\nurl = redis://host:1;flushall\n", 3, "not a Redis address"},
	    {"[store]\nsentinels = a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8,i:9\n", 3, "at most 8"},
	    {"[store]\nmaster = my master\n", 3, "master"},
	    {"[store]\ntimeout_ms = 50\n", 3, "timeout_ms"},
	    {"[agent]\nname = WS_1\n", 3, "workstation name"},
	    {"[agent]\nname = ..evil\n", 3, "workstation name"},
	    {"[store]\nadress = redis://x:1\n", 3, "[store]"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_not_equal(load(f, bad[i].text, ENV_FULL), 0);
		assert_err_at(f, bad[i].line, bad[i].needle);
	}
}

static void test_agent_needs_no_client_key_or_callback(void **state)
{
	struct fx *f = *state;

	assert_int_equal(load(f,
	                      "[daemon]\nrole = agent\n[agent]\nbridge_url = https://signin.trust.nhs.uk\n"
	                      "name = ward7-ws12\nhost_key = keys/host.key\n",
	                      ENV_AGENT),
	                 0);
	assert_int_equal(f->cfg.role, NL_ROLE_AGENT);
	assert_string_equal(f->cfg.agent_bridge_url, "https://signin.trust.nhs.uk");
	assert_string_equal(f->cfg.agent_name, "ward7-ws12");
	assert_null(f->cfg.env.client_key);
	/* the same environment file is not enough for the role that holds the key */
	assert_int_not_equal(load(f, "", ENV_AGENT), 0);
	assert_non_null(strstr(f->err, "client_key is required"));
}

static void test_agent_needs_a_bridge_over_https(void **state)
{
	struct fx *f = *state;

	assert_int_not_equal(load(f, "[daemon]\nrole = agent\n", ENV_AGENT), 0);
	assert_err_at(f, 3, "bridge_url");
	assert_int_not_equal(
	    load(f, "[daemon]\nrole = agent\n[agent]\nbridge_url = http://signin.trust.nhs.uk\n", ENV_AGENT),
	    0);
	assert_err_at(f, 5, "loopback");
	assert_int_equal(
	    load(f, "[daemon]\nrole = agent\n[agent]\nbridge_url = http://127.0.0.1:8443\n", ENV_AGENT), 0);
}

static void test_roles_refuse_device_mode(void **state)
{
	struct fx *f = *state;
	char env[512];

	snprintf(env, sizeof(env), "%sflow = device\n", ENV_FULL);
	assert_int_not_equal(
	    load(f, "[daemon]\nrole = agent\n[agent]\nbridge_url = https://signin.trust.nhs.uk\n", env), 0);
	assert_err_at(f, 3, "flow = device");
	assert_int_not_equal(load(f, BRIDGE_OK, env), 0);
	assert_err_at(f, 3, "flow = device");
}

#define AGENT_OK "[daemon]\nrole = agent\n[agent]\nbridge_url = https://signin.trust.nhs.uk\n"

static void test_agent_jwks_file_loads_relative_to_the_file(void **state)
{
	struct fx *f = *state;
	char want[160];

	assert_int_equal(load(f, AGENT_OK "jwks_file = keys/nhslogin.jwks\n", ENV_AGENT), 0);
	snprintf(want, sizeof(want), "%s/keys/nhslogin.jwks", f->dir);
	assert_string_equal(f->cfg.agent_jwks_file, want);
	assert_int_equal(f->cfg.agent_jwks_file_line, 6);
	/* not set: the agent fetches from the issuer */
	assert_int_equal(load(f, AGENT_OK, ENV_AGENT), 0);
	assert_null(f->cfg.agent_jwks_file);
}

/* A pinned JWKS on a local nhslogind or a bridge would be ignored: refused at its line. */
static void test_jwks_file_is_refused_with_other_roles(void **state)
{
	struct fx *f = *state;

	assert_int_not_equal(load(f, "[agent]\njwks_file = keys/nhslogin.jwks\n", ENV_FULL), 0);
	assert_err_at(f, 3, "only for role = agent");
	assert_int_not_equal(
	    load(f, BRIDGE_OK "[agent]\njwks_file = /etc/nhslogin/nhslogin.jwks\n", ENV_FULL), 0);
	assert_err_at(f, 12, "only for role = agent");
	assert_non_null(strstr(f->err, "a bridge"));
}

/* userinfo reaches NHS login on every sign-in: it does not go with keys pinned for an agent that
 * does not reach it. */
static void test_jwks_file_is_refused_with_userinfo(void **state)
{
	struct fx *f = *state;

	assert_int_not_equal(
	    load(f, "[identity]\nuserinfo = yes\n" AGENT_OK "jwks_file = keys/nhslogin.jwks\n", ENV_AGENT),
	    0);
	assert_err_at(f, 8, "userinfo");
	assert_non_null(strstr(f->err, "jwks_file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_role_is_local_by_default, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bridge_loads_its_store_and_hosts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bridge_with_sentinels, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bridge_needs_store_index_key_and_hosts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_secrets_are_checked_like_keys, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_role_values_name_file_and_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_agent_needs_no_client_key_or_callback, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_agent_needs_a_bridge_over_https, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_roles_refuse_device_mode, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_agent_jwks_file_loads_relative_to_the_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_jwks_file_is_refused_with_other_roles, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_jwks_file_is_refused_with_userinfo, setup, teardown),
	};
	return cmocka_run_group_tests_name("config_roles", tests, NULL, NULL);
}
