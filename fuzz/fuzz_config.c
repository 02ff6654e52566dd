/* libFuzzer target: the configuration parser through nl_config_load, the way the module and the
 * daemon read it. First byte even: the rest is a main file, loaded as the PAM module does
 * (NL_CONFIG_MAIN_ONLY). Odd: the rest is an environment file named by a fixed main file, loaded as
 * the daemon does. Files live in a private temporary directory (0700, ours; /dev/shm unless
 * NL_FUZZ_TMPDIR names another), rewritten each run. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_keys.h"
#include "nl_config.h"
#include "nl_err.h"
#include "nl_log.h"

static bool verbose; /* NL_FUZZ_VERBOSE=1: say what each input did (for reproducing) */
static char dir[PATH_MAX];
static char main_path[PATH_MAX], env_main_path[PATH_MAX], env_dir[PATH_MAX], env_path[PATH_MAX],
    key_dir[PATH_MAX];
/* The keys the shipped environment files and the seeds name (../keys/NAME.pem from environments/). */
static const char *const key_names[] = {"client", "mock", "sandpit", "integration", "live", "local"};

static void write_file(const char *path, const void *data, size_t len)
{
	const char *p = data;
	ssize_t n;
	int fd;

	/* A fresh file each time: truncating one makes ext4 flush it to disk on close. */
	if ((unlink(path) != 0 && errno != ENOENT) ||
	    (fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
		abort();
	while (len > 0) {
		if ((n = write(fd, p, len)) <= 0)
			abort();
		p += n;
		len -= (size_t)n;
	}
	if (close(fd) != 0)
		abort();
}

static void cleanup(void)
{
	char path[PATH_MAX + 32];

	unlink(main_path);
	unlink(env_main_path);
	unlink(env_path);
	for (size_t i = 0; i < sizeof(key_names) / sizeof(key_names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s.pem", key_dir, key_names[i]);
		unlink(path);
	}
	rmdir(env_dir);
	rmdir(key_dir);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("NL_FUZZ_TMPDIR");
	struct stat st;
	char text[2 * PATH_MAX];
	int n;

	(void)argc, (void)argv;
	nl_log_open("fuzz_config", NL_LOG_STDERR, false);
	verbose = getenv("NL_FUZZ_VERBOSE") != NULL;
	umask(077);
	/* Memory-backed if possible: the files are rewritten for every input. */
	if (tmp == NULL || tmp[0] != '/')
		tmp = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
		          ? "/dev/shm"
		          : "/tmp";
	if ((size_t)snprintf(dir, sizeof(dir), "%s/nl-fuzz-config.XXXXXX", tmp) >= sizeof(dir) ||
	    mkdtemp(dir) == NULL)
		abort();
	atexit(cleanup);
	snprintf(main_path, sizeof(main_path), "%s/nhslogin.conf", dir);
	snprintf(env_main_path, sizeof(env_main_path), "%s/env-main.conf", dir);
	snprintf(env_dir, sizeof(env_dir), "%s/environments", dir);
	snprintf(env_path, sizeof(env_path), "%s/fuzz.conf", env_dir);
	snprintf(key_dir, sizeof(key_dir), "%s/keys", dir);
	if (mkdir(env_dir, 0700) != 0 || mkdir(key_dir, 0700) != 0)
		abort();
	/* The daemon opens the client key only to check its owner and mode: any content will do. */
	for (size_t i = 0; i < sizeof(key_names) / sizeof(key_names[0]); i++) {
		snprintf(text, sizeof(text), "%s/%s.pem", key_dir, key_names[i]);
		write_file(text, "not a key\n", 10);
	}
	n = snprintf(text, sizeof(text),
	             "environment = fuzz\nenvironments_dir = %s\n[identity]\nmap_file = %s/map\n", env_dir,
	             dir);
	if (n < 0 || (size_t)n >= sizeof(text))
		abort();
	write_file(env_main_path, text, (size_t)n);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nl_config cfg;
	char err[PATH_MAX + 512];
	bool env;
	int r;

	if (size < 1 || size - 1 > NL_CONFIG_MAX_FILE)
		return 0;
	env = (data[0] & 1) != 0;
	write_file(env ? env_path : main_path, data + 1, size - 1);
	nl_config_init(&cfg);
	err[0] = '\0';
	r = nl_config_load(env ? env_main_path : main_path, &cfg, env ? 0 : NL_CONFIG_MAIN_ONLY, err,
	                   sizeof(err));
	if (verbose)
		fprintf(stderr, "fuzz_config: %s file: %s%s%s\n", env ? "environment" : "main",
		        r == 0 ? "loaded" : nl_strerror(r), r == 0 ? "" : ": ", r == 0 ? "" : err);
	/* Every failure says why; success leaves a configuration that validates again. */
	if (r != 0 && err[0] == '\0')
		abort();
	if (r == 0 && nl_config_validate(&cfg, env ? 0 : NL_CONFIG_MAIN_ONLY, err, sizeof(err)) != 0)
		abort();
	if (r == 0 && env && (cfg.env.issuer == NULL || cfg.env.n_allowed_algs == 0))
		abort();
	nl_config_free(&cfg);
	return 0;
}
