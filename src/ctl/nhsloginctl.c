/* nhsloginctl: the administrator's command for nhslogind. Options and dispatch only; each command
 * lives in its own file (daemon.c, check.c, login.c, key.c, enroll.c, hosts.c). */
#include "config.h"
#include "ctl.h"
#include "nl_config.h"
#include "nl_log.h"
#include "nl_wipe.h"

#include <getopt.h>
#include <jansson.h>
#include <locale.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	OPT_OFFLINE = 256,
	OPT_QR,
	OPT_PAMD,
	OPT_LOGIN_DEFS,
	OPT_SSHD_CONFIG,
	OPT_NAME,
	OPT_KEY,
	OPT_FORCE,
	OPT_DIR
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: nhsloginctl [OPTIONS] COMMAND\n"
	    "\n"
	    "Commands:\n"
	    "  status             what nhslogind is doing: environment, issuer, cache ages, sign-ins\n"
	    "  check              validate the configuration, keys, map file, the host's time limits\n"
	    "                     and the provider (without the daemon)\n"
	    "  flows              list the sign-ins in progress\n"
	    "  flows cancel FLOW  cancel one sign-in by its id (f-...)\n"
	    "  flush              drop the discovery, JWKS and token caches\n"
	    "  login USER         a test sign-in for USER from this terminal\n"
	    "  key                the client key's public half (PEM, JWK, JWKS) and its kid, to register\n"
	    "  enroll             make this workstation's key for the trust-wide bridge (once) and\n"
	    "                     print what the bridge registers: NAME.pem and its thumbprint\n"
	    "  hosts              on a bridge: the enrolled workstations, each with its key's\n"
	    "                     thumbprint, or why the bridge refuses its file\n"
	    "\n"
	    "Options:\n"
	    "  -c, --config FILE  main configuration (default %s)\n"
	    "  -s, --socket PATH  nhslogind's socket (default: [daemon] socket of the configuration)\n"
	    "  -j, --json         machine-readable output (one JSON object)\n"
	    "      --offline      check: do not contact the provider\n"
	    "      --pamd DIR     check: the PAM services to read (default %s)\n"
	    "      --login-defs FILE\n"
	    "                     check: login's LOGIN_TIMEOUT from FILE (default %s)\n"
	    "      --sshd-config FILE\n"
	    "                     check: sshd's LoginGraceTime from FILE (default: sshd -T\n"
	    "                     as root, else %s)\n"
	    "      --qr STYLE     login: utf8, ascii or none (default: utf8 in a UTF-8 locale)\n"
	    "      --name NAME    enroll: the workstation's name (default: the host name)\n"
	    "      --key PATH     enroll: the workstation key (default %s)\n"
	    "      --force        enroll: replace an existing key (the bridge must register it again)\n"
	    "      --dir DIR      hosts: the bridge's hosts directory (default %s)\n"
	    "  -v, --verbose      show the library's log lines on stderr\n"
	    "  -h, --help         this text\n"
	    "  -V, --version      the version\n"
	    "\n"
	    "Exit status: 0 success (check: no errors; login: approved), 1 problems found,\n"
	    "refused by the daemon, sign-in not approved, or (hosts) a file refused,\n"
	    "2 usage or internal error, 3 nhslogind unreachable.\n",
	    NL_CONFIG_DEFAULT_PATH, CTL_PAMD_DEFAULT, CTL_LOGIN_DEFS_DEFAULT, CTL_SSHD_CONFIG_DEFAULT,
	    CTL_HOST_KEY_DEFAULT, CTL_HOSTS_DIR_DEFAULT);
}

/* jansson's memory is wiped when freed: replies to start carry the device code. */
static void json_free_wiped(void *p)
{
	if (p != NULL) {
		nl_wipe(p, malloc_usable_size(p));
		free(p);
	}
}

static int parse_options(int argc, char **argv, struct ctl_opts *o)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"socket", required_argument, NULL, 's'},
	    {"json", no_argument, NULL, 'j'},
	    {"offline", no_argument, NULL, OPT_OFFLINE},
	    {"qr", required_argument, NULL, OPT_QR},
	    {"pamd", required_argument, NULL, OPT_PAMD},
	    {"login-defs", required_argument, NULL, OPT_LOGIN_DEFS},
	    {"sshd-config", required_argument, NULL, OPT_SSHD_CONFIG},
	    {"name", required_argument, NULL, OPT_NAME},
	    {"key", required_argument, NULL, OPT_KEY},
	    {"force", no_argument, NULL, OPT_FORCE},
	    {"dir", required_argument, NULL, OPT_DIR},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:s:jvhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case 's':
			o->socket = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case OPT_OFFLINE:
			o->offline = true;
			break;
		case OPT_PAMD:
			o->pamd = optarg;
			break;
		case OPT_LOGIN_DEFS:
			o->login_defs = optarg;
			break;
		case OPT_SSHD_CONFIG:
			o->sshd_config = optarg;
			break;
		case OPT_NAME:
			o->name = optarg;
			break;
		case OPT_KEY:
			o->key = optarg;
			break;
		case OPT_FORCE:
			o->force = true;
			break;
		case OPT_DIR:
			o->dir = optarg;
			break;
		case OPT_QR:
			if (strcmp(optarg, "utf8") != 0 && strcmp(optarg, "ascii") != 0 &&
			    strcmp(optarg, "none") != 0) {
				fprintf(stderr, "nhsloginctl: --qr must be utf8, ascii or none\n");
				return -1;
			}
			o->qr = optarg;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(CTL_EXIT_OK);
		case 'V':
			printf("nhsloginctl %s\n", PACKAGE_VERSION);
			exit(CTL_EXIT_OK);
		default:
			return -1;
		}
	}
	return 0;
}

static int bad_usage(const char *why)
{
	if (why != NULL)
		fprintf(stderr, "nhsloginctl: %s\n", why);
	usage(stderr);
	return CTL_EXIT_USAGE;
}

/* args: the words after the options (argc >= 1). */
static int dispatch(const struct ctl_opts *o, int argc, char **argv)
{
	const char *cmd = argv[0];

	if (strcmp(cmd, "status") == 0 && argc == 1)
		return ctl_status(o);
	if (strcmp(cmd, "check") == 0 && argc == 1)
		return ctl_check(o);
	if (strcmp(cmd, "flush") == 0 && argc == 1)
		return ctl_flush(o);
	if (strcmp(cmd, "flows") == 0 && argc == 1)
		return ctl_flows(o);
	if (strcmp(cmd, "flows") == 0 && argc == 3 && strcmp(argv[1], "cancel") == 0)
		return ctl_flow_cancel(o, argv[2]);
	if (strcmp(cmd, "login") == 0 && argc == 2)
		return ctl_login(o, argv[1]);
	if (strcmp(cmd, "key") == 0 && argc == 1)
		return ctl_key(o);
	if (strcmp(cmd, "enroll") == 0 && argc == 1)
		return ctl_enroll(o);
	if (strcmp(cmd, "hosts") == 0 && argc == 1)
		return ctl_hosts(o);
	if (strcmp(cmd, "status") == 0 || strcmp(cmd, "check") == 0 || strcmp(cmd, "flush") == 0 ||
	    strcmp(cmd, "flows") == 0 || strcmp(cmd, "login") == 0 || strcmp(cmd, "key") == 0 ||
	    strcmp(cmd, "enroll") == 0 || strcmp(cmd, "hosts") == 0)
		return bad_usage("wrong arguments for this command");
	return bad_usage("unknown command");
}

int main(int argc, char **argv)
{
	struct ctl_opts o;

	memset(&o, 0, sizeof(o));
	setlocale(LC_CTYPE, "");
	json_set_alloc_funcs(malloc, json_free_wiped);
	if (parse_options(argc, argv, &o) != 0)
		return bad_usage(NULL);
	nl_log_open("nhsloginctl", NL_LOG_STDERR, false);
	if (optind >= argc)
		return bad_usage("no command given");
	return dispatch(&o, argc - optind, argv + optind);
}
