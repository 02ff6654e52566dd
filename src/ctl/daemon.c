/* nhsloginctl's side of the nhslogind socket (doc/protocol.md), and the commands that are one
 * request each: status, flows, flows cancel, flush. */
#include "config.h"
#include "ctl.h"
#include "nl_text.h"
#include "nl_config.h"
#include "nl_err.h"
#include "nl_json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FLOW_ID_MAX 64

char *ctl_socket_path(const struct ctl_opts *o)
{
	struct nl_config cfg;
	char err[512] = "";
	char *path = NULL;

	if (o->socket != NULL)
		return strdup(o->socket);
	nl_config_init(&cfg);
	if (nl_config_load(o->config != NULL ? o->config : NL_CONFIG_DEFAULT_PATH, &cfg, NL_CONFIG_MAIN_ONLY,
	                   err, sizeof(err)) == 0 &&
	    cfg.socket_path != NULL) {
		path = strdup(cfg.socket_path);
	} else {
		/* Without a readable configuration the default socket is still worth a try. */
		if (o->config != NULL || access(NL_CONFIG_DEFAULT_PATH, F_OK) == 0)
			fprintf(stderr, "nhsloginctl: %s (using the socket %s)\n", err, NL_DEFAULT_SOCKET);
		path = strdup(NL_DEFAULT_SOCKET);
	}
	nl_config_free(&cfg);
	return path;
}

/* An error of our own in the shape of the daemon's replies. */
static void print_error(const struct ctl_opts *o, const char *word, const char *message)
{
	if (o->json) {
		json_t *m = json_pack("{sbssss}", "ok", 0, "error", word, "message", message);
		ctl_print_json(stdout, m);
		json_decref(m);
	} else {
		fprintf(stderr, "nhsloginctl: %s\n", message);
	}
}

int ctl_connect(const struct ctl_opts *o, struct nl_proto_client *c)
{
	char *path = ctl_socket_path(o), msg[512];
	int r;

	c->fd = -1;
	if (path == NULL) {
		print_error(o, nl_error_word(NL_EWORD_INTERNAL), "out of memory");
		return CTL_EXIT_USAGE;
	}
	if ((r = nl_proto_open(c, path, CTL_CONNECT_TIMEOUT_MS, NL_PROTO_PEER_ANY)) != 0) {
		snprintf(msg, sizeof(msg), "cannot reach nhslogind at %s: %s%s", path,
		         r == NL_ERR_PERM ? "permission denied (run as root)" : nl_strerror(r),
		         r == NL_ERR_UNAVAILABLE ? " (is it running? systemctl status nhslogind)" : "");
		print_error(o, "unreachable", msg);
		free(path);
		return CTL_EXIT_UNREACHABLE;
	}
	/* nhslogind runs as root (or, as in the test suite, as the caller): whoever else listens at the
	 * path took it, and its answers (flows, cancels, a test sign-in) are not the daemon's. */
	if (c->peer != 0 && c->peer != geteuid()) {
		snprintf(msg, sizeof(msg),
		         "refusing %s: it is served by uid %u, not by nhslogind (root); something else has "
		         "taken the daemon's socket path",
		         path, (unsigned)c->peer);
		nl_proto_close(c);
		print_error(o, "unreachable", msg);
		free(path);
		return CTL_EXIT_UNREACHABLE;
	}
	free(path);
	return CTL_EXIT_OK;
}

void ctl_print_json(FILE *out, const json_t *reply)
{
	json_t *copy = json_deep_copy(reply);
	char *text;

	if (copy == NULL)
		return;
	json_object_del(copy, "device_code");
	if ((text = nl_json_dump(copy)) != NULL) {
		fprintf(out, "%s\n", text);
		fflush(out);
	}
	free(text);
	json_decref(copy);
}

/* One request on a new connection. On success *reply holds an {"ok":true,...} reply. Otherwise the
 * trouble is printed and the exit code returned. */
static int one_request(const struct ctl_opts *o, json_t *req, json_t **reply)
{
	struct nl_proto_client c = {.fd = -1};
	json_t *m = NULL;
	char msg[512];
	int r, rc = CTL_EXIT_USAGE;

	if (req == NULL) {
		print_error(o, nl_error_word(NL_EWORD_INTERNAL), "out of memory");
		goto out;
	}
	if ((rc = ctl_connect(o, &c)) != CTL_EXIT_OK)
		goto out;
	if ((r = nl_proto_call(&c, req, CTL_CALL_TIMEOUT_MS, &m)) != 0) {
		snprintf(msg, sizeof(msg), "nhslogind did not answer: %s", nl_strerror(r));
		print_error(o, "unreachable", msg);
		rc = CTL_EXIT_UNREACHABLE;
		goto out;
	}
	if (!json_is_true(json_object_get(m, "ok"))) {
		if (o->json)
			ctl_print_json(stdout, m);
		else
			fprintf(stderr, "nhsloginctl: nhslogind refused: %s (%s)\n",
			        nl_json_str(m, "message") ? nl_json_str(m, "message") : "no reason given",
			        nl_json_str(m, "error") ? nl_json_str(m, "error") : "error");
		rc = CTL_EXIT_PROBLEM;
		goto out;
	}
	*reply = m;
	m = NULL;
	rc = CTL_EXIT_OK;
out:
	json_decref(m);
	json_decref(req);
	nl_proto_close(&c);
	return rc;
}

/* Text from the daemon for a terminal: control characters shown as '?'. */
static void put_safe(const char *s, int width)
{
	int n = 0;
	for (; s != NULL && *s != '\0'; s++, n++)
		putchar(nl_text_is_control((unsigned char)*s) ? '?' : *s);
	for (; n < width; n++)
		putchar(' ');
}

static void fmt_duration(long long s, char *out, size_t len)
{
	if (s < 60)
		snprintf(out, len, "%llds", s);
	else if (s < 3600)
		snprintf(out, len, "%lldm %llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(out, len, "%lldh %lldm", s / 3600, s % 3600 / 60);
	else
		snprintf(out, len, "%lldd %lldh", s / 86400, s % 86400 / 3600);
}

static void print_age(const char *label, const json_t *m, const char *key)
{
	long long v;
	char d[64];

	printf("%-17s", label);
	if (nl_json_int(m, key, &v) == 0) {
		fmt_duration(v, d, sizeof(d));
		printf("fetched %s ago\n", d);
	} else {
		printf("not fetched yet\n");
	}
}

static long long int_or(const json_t *m, const char *key, long long dflt)
{
	long long v;
	return nl_json_int(m, key, &v) == 0 ? v : dflt;
}

/* role = bridge: the shared store and the enrolled workstations. */
static void print_bridge(const json_t *b)
{
	if (!json_is_object(b))
		return;
	printf("%-17s", "Redis:");
	put_safe(nl_json_str(b, "store_role"), 0);
	printf(" at ");
	put_safe(nl_json_str(b, "store_addr") && nl_json_str(b, "store_addr")[0]
	             ? nl_json_str(b, "store_addr")
	             : "-",
	         0);
	if (nl_json_str(b, "store_error") != NULL) {
		printf(" (");
		put_safe(nl_json_str(b, "store_error"), 0);
		putchar(')');
	}
	printf("\n%-17s%lld sent, %lld to connect, %lld connections, %lld unavailable\n",
	       "Redis commands:", int_or(b, "store_commands", 0), int_or(b, "store_setup_commands", 0),
	       int_or(b, "store_connects", 0), int_or(b, "store_unavailable", 0));
	printf("%-17s%lld%s\n", "Enrolled hosts:", int_or(b, "hosts", 0),
	       json_is_true(json_object_get(b, "hosts_more")) ? " or more" : "");
	if (json_is_integer(json_object_get(b, "instances")))
		printf("%-17s%lld connected to this Redis\n", "Bridges:", int_or(b, "instances", 0));
	if (json_is_integer(json_object_get(b, "flows_pending")))
		printf("%-17s%lld in progress, all bridges\n",
		       "Shared sign-ins:", int_or(b, "flows_pending", 0));
	else
		printf("%-17sunknown (Redis did not answer)\n", "Shared sign-ins:");
	printf("%-17s%lld starts refused by the bounds on pending flows (this bridge, since it started)\n",
	       "Refused (429):", int_or(b, "starts_limited", 0));
}

int ctl_status(const struct ctl_opts *o)
{
	json_t *m = NULL;
	char up[64];
	int rc;

	if ((rc = one_request(o, json_pack("{ss}", "op", nl_op_word(NL_OP_STATUS)), &m)) != CTL_EXIT_OK)
		return rc;
	if (o->json) {
		ctl_print_json(stdout, m);
		json_decref(m);
		return CTL_EXIT_OK;
	}
	fmt_duration(int_or(m, "uptime", 0), up, sizeof(up));
	printf("nhslogind:       running for %s\n", up);
	printf("%-17s", "Environment:");
	put_safe(nl_json_str(m, "environment"), 0);
	printf("\n%-17s", "Issuer:");
	put_safe(nl_json_str(m, "issuer"), 0);
	putchar('\n');
	if (nl_json_str(m, "jwks_file") != NULL) { /* an agent with a pinned JWKS: nothing fetched */
		printf("%-17s", "NHS login keys:");
		printf("pinned file ");
		put_safe(nl_json_str(m, "jwks_file"), 0);
		printf(" (%lld key%s); discovery and JWKS are not fetched\n", int_or(m, "jwks_keys", 0),
		       int_or(m, "jwks_keys", 0) == 1 ? "" : "s");
	} else {
		print_age("Discovery cache:", m, "discovery_age");
		print_age("JWKS cache:", m, "jwks_age");
		if (nl_json_str(m, "jwks_source") != NULL)
			printf("%-17sfetched from the issuer\n", "NHS login keys:");
	}
	printf("%-17s%lld in progress (at most %lld)\n", "Sign-ins:", int_or(m, "flows", 0),
	       int_or(m, "flows_max", 0));
	printf("%-17s%lld\n", "Cached sign-ins:", int_or(m, "cached_signins", 0));
	print_bridge(json_object_get(m, "bridge"));
	printf("%-17s", "Last error:");
	put_safe(nl_json_str(m, "last_error") ? nl_json_str(m, "last_error") : "none", 0);
	putchar('\n');
	if (nl_json_str(m, "bridge_url") != NULL) { /* role = agent */
		char ago[64];
		printf("%-17s", "Bridge:");
		put_safe(nl_json_str(m, "bridge_url"), 0);
		printf("\n%-17s", "Workstation:");
		put_safe(nl_json_str(m, "workstation"), 0);
		printf("\n%-17s", "Bridge error:");
		if (nl_json_str(m, "agent_error") != NULL) {
			fmt_duration(int_or(m, "agent_error_age", 0), ago, sizeof(ago));
			printf("%s ago: ", ago);
			put_safe(nl_json_str(m, "agent_error"), 0);
		} else {
			printf("none");
		}
		putchar('\n');
	}
	json_decref(m);
	return CTL_EXIT_OK;
}

static int width_of(const json_t *arr, const char *key, int min)
{
	size_t i;
	const json_t *f;
	int w = min;

	json_array_foreach(arr, i, f)
	{
		const char *s = nl_json_str(f, key);
		int n = s != NULL ? (int)strnlen(s, 64) : 1;
		if (n > w)
			w = n;
	}
	return w;
}

static void print_flows(const json_t *arr)
{
	static const char *const cols[] = {"flow", "user", "service", "rhost", "state"};
	int w[5];
	size_t i;
	const json_t *f;

	if (json_array_size(arr) == 0) {
		printf("No sign-ins in progress.\n");
		return;
	}
	for (size_t c = 0; c < 5; c++)
		w[c] = width_of(arr, cols[c], (int)strlen(cols[c])) + 2;
	printf("%-*s%-*s%-*s%-*s%-*s%s\n", w[0], "FLOW", w[1], "USER", w[2], "SERVICE", w[3], "RHOST", w[4],
	       "STATE", "EXPIRES IN");
	json_array_foreach(arr, i, f)
	{
		long long left = int_or(f, "expires_in", 0);
		for (size_t c = 0; c < 5; c++) {
			const char *s = nl_json_str(f, cols[c]);
			put_safe(s != NULL && s[0] != '\0' ? s : "-", w[c]);
		}
		printf("%lld:%02lld\n", left / 60, left % 60);
	}
}

int ctl_flows(const struct ctl_opts *o)
{
	json_t *m = NULL;
	int rc;

	if ((rc = one_request(o, json_pack("{ss}", "op", nl_op_word(NL_OP_FLOWS)), &m)) != CTL_EXIT_OK)
		return rc;
	if (o->json)
		ctl_print_json(stdout, m);
	else
		print_flows(json_object_get(m, "flows"));
	json_decref(m);
	return CTL_EXIT_OK;
}

int ctl_flow_cancel(const struct ctl_opts *o, const char *flow)
{
	json_t *m = NULL;
	bool ended;
	int rc;

	if (flow == NULL || flow[0] == '\0' || strlen(flow) > FLOW_ID_MAX) {
		fprintf(stderr, "nhsloginctl: a flow id (f-...) as `nhsloginctl flows` lists it\n");
		return CTL_EXIT_USAGE;
	}
	rc = one_request(o, json_pack("{ssss}", "op", nl_op_word(NL_OP_FLOW_CANCEL), "flow", flow), &m);
	if (rc != CTL_EXIT_OK)
		return rc;
	/* An older daemon sends no "cancelled": it cancelled (or said nothing of an ended flow). */
	ended = json_is_false(json_object_get(m, "cancelled"));
	if (o->json)
		ctl_print_json(stdout, m);
	else if (ended)
		printf("Sign-in %s had already ended (%s): nothing to cancel.\n", flow,
		       nl_json_str(m, "state"));
	else
		printf("Sign-in %s cancelled.\n", flow);
	json_decref(m);
	return ended ? CTL_EXIT_PROBLEM : CTL_EXIT_OK;
}

int ctl_flush(const struct ctl_opts *o)
{
	json_t *m = NULL;
	int rc;

	if ((rc = one_request(o, json_pack("{ss}", "op", nl_op_word(NL_OP_FLUSH)), &m)) != CTL_EXIT_OK)
		return rc;
	if (o->json)
		ctl_print_json(stdout, m);
	else
		printf("Discovery, JWKS, token and identity caches flushed; the next sign-in fetches them "
		       "again.\n");
	json_decref(m);
	return CTL_EXIT_OK;
}
