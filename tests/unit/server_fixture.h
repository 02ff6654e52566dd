/* Shared by the tests/unit/test_server_*.c programs: the fakes' switches and counters, the server
 * in a thread (server_fixture.c) and a client of it. */
#ifndef SERVER_FIXTURE_H
#define SERVER_FIXTURE_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "device.h"
#include "flows.h"
#include "nl_config.h"
#include "nl_ipc.h"
#include "server.h"

extern int provider_down, flush_calls, device_polls;

struct fx {
	char dir[64], sockdir[96], sock[128];
	struct nl_config cfg;
	struct nl_flows *fl;
	struct nl_device *dev;
	struct nl_server *srv;
	int efd;
	pthread_t thread;
};

/* Connected with the daemon client; lines go out raw and replies are read with the framing, so
 * that tests can send malformed or pipelined lines. */
struct cl {
	int fd;
	struct nl_linebuf *lb;
};

int setup(void **state);
int setup_device(void **state);
int teardown(void **state);
struct cl cl_open(struct fx *fx);
void cl_close(struct cl *c);
void cl_send_raw(struct cl *c, const char *data, size_t len);
void cl_send(struct cl *c, const char *line);
json_t *cl_recv(struct cl *c, int timeout_ms);
json_t *cl_call(struct cl *c, const char *line);
void assert_error(json_t *m, const char *word);
char *start_flow(struct cl *c, const char *user);

#endif
