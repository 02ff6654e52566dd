/* Shared by the tests/ctl/test_ctl_*.c programs: the fixture (ctl_fixture.c) and running
 * nhsloginctl as a program. */
#ifndef CTL_FIXTURE_H
#define CTL_FIXTURE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "harness.h"
#include "testsrv.h"

#define RUN_TIMEOUT_MS 30000
#define OUT_MAX        (256 * 1024)

struct ctl_fixture {
	struct world *w;
	char dir[64];  /* fixtures: keys, certificates */
	char *key_pem; /* the client key's PEM text */
	struct testsrv *foreign, *rs256, *nojwks;
	char foreign_url[128], rs256_url[128], nojwks_url[128];
	char foreign_doc[1024], rs256_doc[1024], nojwks_doc[1024];
};

extern struct ctl_fixture fx;

struct run {
	int status; /* exit status, or -1 if killed */
	char out[OUT_MAX];
	size_t outlen;
	char err[8192];
	size_t errlen;
};

char *read_all(const char *path);
int group_setup(void **state);
void rm_tree(const char *dir);
int group_teardown(void **state);
pid_t spawn(const char *const *args, int *out_fd, int *err_fd);
void collect(pid_t pid, int ofd, int efd, struct run *r, int64_t deadline);
struct run *run_ctl(const char *const *args);
void print_run(const struct run *r);
json_t *parse_json_line(const char *text);

#endif
