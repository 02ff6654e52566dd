/* Module arguments: config=FILE first, then every other argument through the config setter,
 * so a key means the same in /etc/pam.d as in nhslogin.conf. */
#include "config.h"
#include "module.h"
#include "nl_err.h"

#include <stdio.h>
#include <string.h>

/* Arguments without a value are booleans set to "yes". */
static const char *const pam_flags[] = {"debug", "noqr", "strict", "enter_prompt"};

static int set_arg(struct nl_pam_opts *o, const char *arg, char *err, size_t errlen)
{
	char key[64];
	const char *eq = strchr(arg, '='), *value;
	size_t klen = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
	char why[256] = "";
	int r;

	if (klen == 0 || klen >= sizeof(key)) {
		snprintf(err, errlen, "module argument '%.64s': not understood", arg);
		return NL_ERR_CONFIG;
	}
	memcpy(key, arg, klen);
	key[klen] = '\0';
	value = eq != NULL ? eq + 1 : NULL;
	if (value == NULL) {
		for (size_t i = 0; i < sizeof(pam_flags) / sizeof(pam_flags[0]); i++)
			if (strcmp(key, pam_flags[i]) == 0)
				value = "yes";
		if (value == NULL) {
			snprintf(err, errlen, "module argument '%s': needs a value (%s=...)", key, key);
			return NL_ERR_CONFIG;
		}
	}
	if (strcmp(key, "config") == 0)
		return 0; /* read before the others */
	if (strcmp(key, "qr") == 0) {
		if (strcmp(value, "utf8") == 0)
			o->qr_style = NL_QR_UTF8;
		else if (strcmp(value, "ascii") == 0)
			o->qr_style = NL_QR_ASCII;
		else {
			snprintf(err, errlen, "module argument qr=%.32s: use qr=utf8 or qr=ascii", value);
			return NL_ERR_CONFIG;
		}
		return 0;
	}
	r = nl_config_set(&o->cfg, strcmp(key, "socket") == 0 ? "daemon" : "pam", key, value, why,
	                  sizeof(why));
	if (r != 0)
		snprintf(err, errlen, "module argument '%.64s': %s", arg, why);
	return r;
}

int nl_pam_opts_parse(int argc, const char **argv, struct nl_pam_opts *o, char *err, size_t errlen)
{
	const char *path = NL_CONFIG_DEFAULT_PATH;
	int r, i;

	memset(o, 0, sizeof(*o));
	nl_config_init(&o->cfg);
	for (i = 0; i < argc; i++)
		if (strncmp(argv[i], "config=", 7) == 0)
			path = argv[i] + 7;
	if ((r = nl_config_load(path, &o->cfg, NL_CONFIG_MAIN_ONLY, err, errlen)) != 0)
		return r;
	for (i = 0; i < argc; i++)
		if ((r = set_arg(o, argv[i], err, errlen)) != 0)
			return r;
	return 0;
}

void nl_pam_opts_free(struct nl_pam_opts *o)
{
	nl_config_free(&o->cfg);
}
