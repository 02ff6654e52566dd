/* The faults tests' fixture, shared by the tests/faults/test_faults_*.c programs: the world a test
 * started (stopped by world_teardown even when an assertion failed) and socket-level sign-in
 * pieces. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <grp.h>
#include <unistd.h>

#include <security/pam_appl.h>

#include "faultutil.h"
#include "harness.h"
#include "nl_time.h"
#include "skip.h"
#include "faults_fixture.h"

/* The world a test started, stopped by world_teardown even when an assertion failed. */
struct world *cur_world;

int world_teardown(void **state)
{
	(void)state;
	world_stop(cur_world);
	cur_world = NULL;
	return 0;
}

/* ---- socket-level sign-in pieces ---- */

void start_pending(const struct world *w, const char *user, struct started *st)
{
	char line[160];
	json_t *m;

	st->fd = fu_connect(w->socket);
	assert_true(st->fd >= 0);
	snprintf(line, sizeof(line),
	         "{\"op\":\"start\",\"user\":\"%s\",\"service\":\"faults\",\"tty\":\"tty9\"}", user);
	m = fu_call(st->fd, line, 10000);
	assert_non_null(m);
	assert_string_equal(fu_str(m, "status"), "pending");
	snprintf(st->device_code, sizeof(st->device_code), "%s", fu_str(m, "device_code"));
	snprintf(st->user_code, sizeof(st->user_code), "%s", fu_str(m, "user_code"));
	json_decref(m);
	assert_true(strlen(st->device_code) >= 22);
}

/* wait once (timeout 5 s); the reply (caller frees). */
json_t *wait_on(int fd, const char *device_code)
{
	char line[256];
	snprintf(line, sizeof(line), "{\"op\":\"wait\",\"device_code\":\"%s\",\"timeout\":5}", device_code);
	return fu_call(fd, line, 15000);
}

void assert_status_answers(const struct world *w)
{
	json_t *m = fu_call_once(w->socket, "{\"op\":\"status\"}", 3000);
	assert_non_null(m);
	assert_true(json_is_true(json_object_get(m, "ok")));
	json_decref(m);
}
