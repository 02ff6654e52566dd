/* nhsloginctl hosts: the bridge operator's list of enrolled workstations, one line each (the name and
 * the key's RFC 7638 thumbprint, to compare with what enroll printed on the workstation), or why the
 * bridge refuses a file. Every file is judged by the bridge's own code (libnlhostauth). */
#include "config.h"
#include "ctl.h"
#include "hostauth.h"
#include "nl_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The most directory entries listed: far above any trust's workstations, and bounded. */
#define CTL_HOSTS_MAX 100000
/* The longest file name shown (a directory entry is at most 255 bytes, each shown as up to 4). */
#define SHOWN_MAX (4 * 255 + 1)

/* A file name as text that is safe on a terminal and in JSON: printable ASCII as is, every other
 * byte (and the backslash) as \xHH. */
static void shown_name(const char *file, char out[SHOWN_MAX])
{
	size_t i, o = 0;

	for (i = 0; file[i] != '\0' && o + 5 <= SHOWN_MAX; i++) {
		unsigned char c = (unsigned char)file[i];
		if (c > 0x20 && c < 0x7f && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, SHOWN_MAX - o, "\\x%02x", c);
	}
	out[o] = '\0';
}

/* One entry's finding as JSON: {"file","name","thumbprint","ok"} or {"file","name","ok","problem",
 * "detail"}. NULL when out of memory. */
static json_t *finding(const char *shown, const char *name, const char *thumb,
                       const struct nl_hostauth_error *err)
{
	json_t *o = json_pack("{s:s, s:s?, s:b}", "file", shown, "name", name[0] != '\0' ? name : NULL, "ok",
	                      thumb != NULL);

	if (o == NULL)
		return NULL;
	if ((thumb != NULL && json_object_set_new(o, "thumbprint", json_string(thumb)) != 0) ||
	    (thumb == NULL &&
	     (json_object_set_new(o, "problem", json_string(nl_hostauth_reason_word(err->reason))) != 0 ||
	      json_object_set_new(o, "detail", json_string(err->detail)) != 0))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* name  thumbprint, or name (or the file's shown name)  -  refused: reason: detail */
static void print_finding(const json_t *f, int width)
{
	const char *name = json_string_value(json_object_get(f, "name"));
	const char *label = name != NULL ? name : json_string_value(json_object_get(f, "file"));

	if (json_is_true(json_object_get(f, "ok")))
		printf("%-*s  %s\n", width, label, json_string_value(json_object_get(f, "thumbprint")));
	else
		printf("%-*s  -  refused: %s: %s\n", width, label,
		       json_string_value(json_object_get(f, "problem")),
		       json_string_value(json_object_get(f, "detail")));
}

/* Judge every entry of files into a JSON array; counts into *ok and *refused. NULL if out of memory. */
static json_t *judge_all(struct nl_hostauth_hosts *h, char **files, size_t n, unsigned *ok, unsigned *refused)
{
	json_t *list = json_array(), *f;
	char name[NL_HOSTAUTH_NAME_MAX + 1], shown[SHOWN_MAX];
	struct nl_hostauth_error err;
	size_t i;

	for (i = 0; list != NULL && i < n; i++) {
		char *thumb = NULL;
		int r = nl_hostauth_hosts_check_file(h, files[i], name, &thumb, &err);
		if (r == NL_ERR_NOMEM || err.reason == NL_HOSTAUTH_E_INTERNAL) {
			free(thumb);
			json_decref(list);
			return NULL;
		}
		shown_name(files[i], shown);
		f = finding(shown, name, r == 0 ? thumb : NULL, &err);
		free(thumb);
		if (f == NULL || json_array_append_new(list, f) != 0) {
			json_decref(list);
			return NULL;
		}
		if (r == 0)
			(*ok)++;
		else
			(*refused)++;
	}
	return list;
}

static void print_text(const char *dir, const json_t *list, unsigned ok, unsigned refused, bool cut)
{
	const json_t *f;
	size_t i;
	int width = 0;

	json_array_foreach(list, i, f)
	{
		const char *name = json_string_value(json_object_get(f, "name"));
		size_t len = strlen(name != NULL ? name : json_string_value(json_object_get(f, "file")));
		if (len > (size_t)width && len <= NL_HOSTAUTH_NAME_MAX)
			width = (int)len;
	}
	json_array_foreach(list, i, f) print_finding(f, width);
	fprintf(stderr, "nhsloginctl hosts: %s: %u enrolled, %u refused\n", dir, ok, refused);
	if (cut)
		fprintf(stderr,
		        "nhsloginctl hosts: the list is cut at %d entries: the directory holds more\n",
		        CTL_HOSTS_MAX);
}

/* The directory itself refused: nothing in it is served. */
static int dir_refused(const struct ctl_opts *o, const char *dir, const struct nl_hostauth_error *err)
{
	json_t *out;

	if (!o->json) {
		fprintf(stderr, "nhsloginctl hosts: refused: %s: %s\n", nl_hostauth_reason_word(err->reason),
		        err->detail);
		return CTL_EXIT_PROBLEM;
	}
	out = json_pack("{s:s, s:b, s:s, s:s}", "dir", dir, "ok", false, "problem",
	                nl_hostauth_reason_word(err->reason), "detail", err->detail);
	if (out == NULL)
		return CTL_EXIT_USAGE;
	ctl_print_json(stdout, out);
	json_decref(out);
	return CTL_EXIT_PROBLEM;
}

int ctl_hosts(const struct ctl_opts *o)
{
	const char *dir = o->dir != NULL ? o->dir : CTL_HOSTS_DIR_DEFAULT;
	struct nl_hostauth_hosts *h = NULL;
	struct nl_hostauth_error err;
	char **files = NULL;
	size_t n = 0;
	unsigned ok = 0, refused = 0;
	json_t *list = NULL, *out = NULL;
	bool cut = false;
	int rc = CTL_EXIT_USAGE;

	if (dir[0] != '/') {
		fprintf(stderr, "nhsloginctl hosts: --dir must be an absolute path\n");
		return CTL_EXIT_USAGE;
	}
	/* A cache of one key: each file is read, judged and let go. */
	if (nl_hostauth_hosts_new(dir, 1, &h) != 0) {
		fprintf(stderr, "nhsloginctl hosts: out of memory\n");
		return CTL_EXIT_USAGE;
	}
	if (nl_hostauth_hosts_list(h, CTL_HOSTS_MAX, &files, &n, &cut, &err) != 0) {
		rc = err.reason == NL_HOSTAUTH_E_INTERNAL ? CTL_EXIT_USAGE : dir_refused(o, dir, &err);
		if (rc == CTL_EXIT_USAGE)
			fprintf(stderr, "nhsloginctl hosts: %s\n", err.detail);
		goto out;
	}
	if ((list = judge_all(h, files, n, &ok, &refused)) == NULL) {
		fprintf(stderr, "nhsloginctl hosts: out of memory\n");
		goto out;
	}
	if (o->json) {
		out = json_pack("{s:s, s:b, s:O, s:I, s:I, s:b, s:I}", "dir", dir, "ok", refused == 0 && !cut,
		                "hosts", list, "enrolled", (json_int_t)ok, "refused", (json_int_t)refused,
		                "cut", cut, "max", (json_int_t)CTL_HOSTS_MAX);
		if (out == NULL) {
			fprintf(stderr, "nhsloginctl hosts: out of memory\n");
			goto out;
		}
		ctl_print_json(stdout, out);
	} else {
		print_text(dir, list, ok, refused, cut);
	}
	/* A cut list cannot say that all are fine. */
	rc = refused == 0 && !cut ? CTL_EXIT_OK : CTL_EXIT_PROBLEM;
out:
	json_decref(out);
	json_decref(list);
	nl_hostauth_files_free(files, n);
	nl_hostauth_hosts_free(h);
	return rc;
}
