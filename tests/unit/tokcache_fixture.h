/* Shared by the tests/unit/test_tokcache_*.c programs: the per-test fixture (tokcache_fixture.c),
 * places to sign in from, and helpers that sign in, reuse and read the cache's files. */
#ifndef TOKCACHE_FIXTURE_H
#define TOKCACHE_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "nl_config.h"
#include "tokcache.h"

#define T0        ((time_t)1700000000)
#define ALICE_NHS "9686368973"

struct fx {
	char dir[64];         /* a fresh temporary directory */
	char cache[96];       /* dir/cache: the cache directory (not created yet) */
	char map[96];         /* dir/map: "alice ALICE_NHS" */
	struct nl_config cfg; /* reuse_window 600, claim nhs_number, the map above, min_level P9 */
};

#define NO_AUDIT     NL_AUDIT_SESSION_NONE
#define CONSOLE(tty) at("login", "", tty, NO_AUDIT)
#define SSH(host)    at("sshd", host, "ssh", NO_AUDIT)

void cfg_set(struct nl_config *cfg, const char *key, const char *value);
int fx_setup(void **state);
int fx_teardown(void **state);
struct nl_identity ident(void);
struct nl_tokcache *open_cache(const char *dir);
bool exists(const char *dir, const char *name);
void write_file(const char *dir, const char *name, const char *text, size_t len, mode_t mode);
size_t count_files(const char *dir);
struct nl_reuse_place at(const char *service, const char *rhost, const char *tty, uint32_t audit);
bool reuse(struct fx *f, struct nl_tokcache *tc, const char *user, struct nl_reuse_place p, time_t now);
int sign_in_id(struct fx *f, struct nl_tokcache *tc, const char *user, const struct nl_identity *id,
               struct nl_reuse_place p, time_t now);
int sign_in(struct fx *f, struct nl_tokcache *tc, const char *user, struct nl_reuse_place p, time_t now);
char *read_entry(const char *dir, const char *user);

#endif
