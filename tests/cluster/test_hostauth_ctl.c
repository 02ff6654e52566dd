/* `nhsloginctl enroll` and `nhsloginctl hosts` as programs: the key and registration enroll makes,
 * and the listing of a hosts directory that hosts prints, both checked against the bridge's code.
 * They need nhsloginctl built (`make check` builds it first). Shared fixture: hostauth_fixture.c. */
#include "config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hostauth.h"
#include "hostauth_fixture.h"
#include "nl_jose.h"
#include "skip.h"

#define OUT_MAX (64 * 1024)

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, OUT_MAX);
	size_t n;

	if (f == NULL || buf == NULL) {
		if (f != NULL)
			fclose(f);
		free(buf);
		return NULL;
	}
	n = fread(buf, 1, OUT_MAX - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* ---- nhsloginctl enroll ---- */

/* Run nhsloginctl with args; stdout into *out (new), the exit status returned. */
static int run_ctl(char **out, const char *const *args)
{
	const char *top = getenv("NL_TOP_BUILDDIR");
	char prog[4096], outfile[256];
	const char *argv[16];
	size_t i;
	pid_t pid;
	int status = 0, fd;

	snprintf(prog, sizeof(prog), "%s/nhsloginctl", top != NULL ? top : ".");
	snprintf(outfile, sizeof(outfile), "%s/ctl.out", fx.dir);
	argv[0] = prog;
	for (i = 0; i < 14 && args[i] != NULL; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fd = open(outfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || dup2(fd, 1) < 0)
			_exit(127);
		execv(prog, (char *const *)argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	*out = read_text(outfile);
	assert_non_null(*out);
	return WEXITSTATUS(status);
}

static const char *line_after(const char *text, const char *prefix)
{
	const char *p = strstr(text, prefix);

	assert_non_null(p);
	return p + strlen(prefix);
}

static void test_enroll_creates_a_0600_key_and_prints_the_registration(void **state)
{
	char key[256], *out = NULL, *thumb;
	const char *args[] = {"enroll", "--name", "ws-0042.ward7", "--key", key, NULL};
	cjose_jwk_t *jwk = NULL;
	struct stat st;
	(void)state;

	snprintf(key, sizeof(key), "%s/enrolled.key", fx.keys);
	assert_int_equal(run_ctl(&out, args), 0);
	assert_int_equal(lstat(key, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_uid, geteuid());
	assert_non_null(strstr(out, "ws-0042.ward7.pem"));
	assert_non_null(strstr(out, "-----BEGIN PUBLIC KEY-----"));
	assert_null(strstr(out, "PRIVATE"));
	assert_int_equal(nl_hostauth_key_load(key, &jwk, NULL, 0), 0);
	thumb = nl_jwk_thumbprint(jwk);
	assert_int_equal(strncmp(line_after(out, "thumbprint (RFC 7638, SHA-256): "), thumb, strlen(thumb)),
	                 0);
	free(thumb);
	free(out);
	cjose_jwk_release(jwk);
}

static void test_enroll_again_keeps_the_key_and_prints_the_same(void **state)
{
	char key[256], *first = NULL, *second = NULL, *before, *after;
	const char *args[] = {"enroll", "--name", "ws-again", "--key", key, NULL};
	(void)state;

	snprintf(key, sizeof(key), "%s/again.key", fx.keys);
	assert_int_equal(run_ctl(&first, args), 0);
	before = read_text(key);
	assert_int_equal(run_ctl(&second, args), 0);
	after = read_text(key);
	assert_string_equal(before, after);
	assert_string_equal(first, second);
	free(first);
	free(second);
	free(before);
	free(after);
}

static void test_enroll_force_replaces_the_key(void **state)
{
	char key[256], *first = NULL, *second = NULL, *t1, *t2;
	const char *args[] = {"enroll", "--name", "ws-force", "--key", key, NULL};
	const char *force[] = {"enroll", "--name", "ws-force", "--key", key, "--force", NULL};
	struct stat st;
	(void)state;

	snprintf(key, sizeof(key), "%s/force.key", fx.keys);
	assert_int_equal(run_ctl(&first, args), 0);
	assert_int_equal(run_ctl(&second, force), 0);
	t1 = strdup(line_after(first, "thumbprint (RFC 7638, SHA-256): "));
	t2 = strdup(line_after(second, "thumbprint (RFC 7638, SHA-256): "));
	t1[strcspn(t1, "\n")] = t2[strcspn(t2, "\n")] = '\0';
	assert_string_not_equal(t1, t2);
	assert_int_equal(lstat(key, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	free(t1);
	free(t2);
	free(first);
	free(second);
}

static void test_enroll_refuses_a_bad_name(void **state)
{
	char key[256], *out = NULL;
	const char *args[] = {"enroll", "--name", "../ws", "--key", key, NULL};
	const char *upper[] = {"enroll", "--name", "WS-1", "--key", key, NULL};
	(void)state;

	snprintf(key, sizeof(key), "%s/badname.key", fx.keys);
	assert_int_equal(run_ctl(&out, args), 2);
	free(out);
	assert_int_equal(run_ctl(&out, upper), 2);
	free(out);
	assert_int_equal(access(key, F_OK), -1);
}

static void test_enroll_refuses_an_unsafe_key_place(void **state)
{
	char dir[200], key[256], link[256], *out = NULL, *target;
	const char *args[] = {"enroll", "--name", "ws-x", "--key", key, NULL};
	const char *via_link[] = {"enroll", "--name", "ws-x", "--key", link, NULL};
	(void)state;

	/* A group-writable directory: another user could swap the key. */
	snprintf(dir, sizeof(dir), "%s/shared", fx.dir);
	assert_int_equal(mkdir(dir, 0770), 0);
	assert_int_equal(chmod(dir, 0770), 0);
	snprintf(key, sizeof(key), "%s/host.key", dir);
	assert_int_equal(run_ctl(&out, args), 1);
	free(out);
	assert_int_equal(access(key, F_OK), -1);
	/* A symbolic link at the key's path is neither followed nor taken for a key. */
	snprintf(key, sizeof(key), "%s/target", fx.keys);
	assert_int_equal(test_write_file(key, 0600, "not a key\n"), 0);
	snprintf(link, sizeof(link), "%s/link.key", fx.keys);
	assert_int_equal(symlink(key, link), 0);
	assert_int_equal(run_ctl(&out, via_link), 1);
	free(out);
	target = read_text(key);
	assert_string_equal(target, "not a key\n");
	free(target);
	/* A relative path is a usage error. */
	snprintf(key, sizeof(key), "relative.key");
	assert_int_equal(run_ctl(&out, args), 2);
	free(out);
}

static void test_enroll_as_root_makes_a_root_owned_key(void **state)
{
	char key[256], *out = NULL;
	const char *args[] = {"enroll", "--name", "ws-root", "--key", key, NULL};
	struct stat st;
	(void)state;

	if (geteuid() != 0)
		skip_because("needs root: the key must be owned by root");
	snprintf(key, sizeof(key), "%s/root.key", fx.keys);
	assert_int_equal(run_ctl(&out, args), 0);
	free(out);
	assert_int_equal(lstat(key, &st), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	/* A key file that another user owns is not this workstation's key. */
	assert_int_equal(chown(key, 4242, 4242), 0);
	assert_int_equal(run_ctl(&out, args), 1);
	free(out);
}

/* What enroll prints is what the bridge needs: saved as hosts/NAME.pem, it verifies the agent. */
static void test_enroll_registration_lets_the_agent_in(void **state)
{
	char key[256], hostfile[256], *out = NULL, *v;
	const char *args[] = {"-j", "enroll", "--name", "ws-e2e", "--key", key, NULL};
	cjose_jwk_t *jwk = NULL;
	json_t *reg;
	(void)state;

	snprintf(key, sizeof(key), "%s/e2e.key", fx.keys);
	assert_int_equal(run_ctl(&out, args), 0);
	assert_non_null(reg = json_loads(out, 0, NULL));
	snprintf(hostfile, sizeof(hostfile), "%s/%s", fx.hosts,
	         json_string_value(json_object_get(reg, "file")));
	assert_int_equal(test_write_file(hostfile, 0644, json_string_value(json_object_get(reg, "pem"))), 0);
	assert_int_equal(nl_hostauth_key_load(key, &jwk, NULL, 0), 0);
	v = sign(jwk, "ws-e2e", "POST", PATH, BODY, AUD, T0);
	assert_accepted(v, "POST", PATH, BODY, T0, "ws-e2e");
	free(v);
	free(out);
	json_decref(reg);
	cjose_jwk_release(jwk);
}

/* ---- nhsloginctl hosts ---- */

/* A new hosts directory fx.dir/SUB (0755) with two workstations enrolled the way the operators do it:
 * nhsloginctl enroll on each, its PEM saved as NAME.pem. Their thumbprints as enroll printed them. */
static void enrolled_dir(const char *sub, char *dir, size_t dirlen, char thumbs[2][64])
{
	static const char *const names[] = {"ws-h1", "ws-h2"};
	char key[256], hostfile[512], *out = NULL;
	const char *args[] = {"-j", "enroll", "--name", NULL, "--key", key, NULL};
	json_t *reg;
	int i;

	snprintf(dir, dirlen, "%s/%s", fx.dir, sub);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(chmod(dir, 0755), 0);
	for (i = 0; i < 2; i++) {
		args[3] = names[i];
		snprintf(key, sizeof(key), "%s/%s-%s.key", fx.keys, sub, names[i]);
		assert_int_equal(run_ctl(&out, args), 0);
		assert_non_null(reg = json_loads(out, 0, NULL));
		snprintf(thumbs[i], 64, "%s", json_string_value(json_object_get(reg, "thumbprint")));
		assert_int_equal(strlen(thumbs[i]), 43);
		snprintf(hostfile, sizeof(hostfile), "%s/%s", dir,
		         json_string_value(json_object_get(reg, "file")));
		assert_int_equal(
		    test_write_file(hostfile, 0644, json_string_value(json_object_get(reg, "pem"))), 0);
		json_decref(reg);
		free(out);
	}
}

/* The line of the listing that begins with label and two spaces (NULL if none). */
static const char *line_of(const char *text, const char *label)
{
	size_t n = strlen(label);
	const char *p = text;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, label, n) == 0 && p[n] == ' ')
			return p;
		p = strchr(p, '\n');
		p = p != NULL ? p + 1 : NULL;
	}
	return NULL;
}

/* The listing's text for label: "thumbprint" or "-  refused: ..." (new string). */
static char *listed(const char *text, const char *label)
{
	const char *p = line_of(text, label);
	char *v;

	assert_non_null(p);
	p += strlen(label);
	while (*p == ' ')
		p++;
	v = strndup(p, strcspn(p, "\n"));
	assert_non_null(v);
	return v;
}

static void test_hosts_lists_each_workstation_with_the_thumbprint_enroll_printed(void **state)
{
	char dir[256], thumbs[2][64], *out = NULL, *t;
	const char *args[] = {"hosts", "--dir", dir, NULL};
	const char *json_args[] = {"-j", "hosts", "--dir", dir, NULL};
	json_t *doc, *h;
	(void)state;

	enrolled_dir("hosts-list", dir, sizeof(dir), thumbs);
	assert_int_equal(run_ctl(&out, args), 0);
	t = listed(out, "ws-h1");
	assert_string_equal(t, thumbs[0]);
	free(t);
	t = listed(out, "ws-h2");
	assert_string_equal(t, thumbs[1]);
	free(t);
	assert_null(strstr(out, "refused"));
	free(out);
	assert_int_equal(run_ctl(&out, json_args), 0);
	assert_non_null(doc = json_loads(out, 0, NULL));
	assert_true(json_is_true(json_object_get(doc, "ok")));
	assert_int_equal(json_integer_value(json_object_get(doc, "enrolled")), 2);
	assert_int_equal(json_integer_value(json_object_get(doc, "refused")), 0);
	assert_true(json_is_false(json_object_get(doc, "cut")));
	assert_int_equal(json_array_size(json_object_get(doc, "hosts")), 2);
	h = json_array_get(json_object_get(doc, "hosts"), 1);
	assert_string_equal(json_string_value(json_object_get(h, "name")), "ws-h2");
	assert_string_equal(json_string_value(json_object_get(h, "file")), "ws-h2.pem");
	assert_string_equal(json_string_value(json_object_get(h, "thumbprint")), thumbs[1]);
	assert_true(json_is_true(json_object_get(h, "ok")));
	json_decref(doc);
	free(out);
}

/* A file the bridge would refuse is listed with why, and the command says so with exit 1; the good
 * ones are still listed. */
static void test_hosts_reports_unsafe_and_garbage_files_as_refused(void **state)
{
	char dir[256], thumbs[2][64], path[512], *out = NULL, *t, *pem = nl_jwk_public_pem(fx.c);
	const char *args[] = {"hosts", "--dir", dir, NULL};
	const char *json_args[] = {"-j", "hosts", "--dir", dir, NULL};
	json_t *doc, *h;
	size_t i;
	(void)state;

	enrolled_dir("hosts-bad", dir, sizeof(dir), thumbs);
	snprintf(path, sizeof(path), "%s/ws-open.pem", dir);
	assert_int_equal(test_write_file(path, 0666, pem), 0);
	snprintf(path, sizeof(path), "%s/ws-junk.pem", dir);
	assert_int_equal(test_write_file(path, 0644, "garbage\n"), 0);
	snprintf(path, sizeof(path), "%s/Notes\n.txt", dir);
	assert_int_equal(test_write_file(path, 0644, pem), 0);
	assert_int_equal(run_ctl(&out, args), 1);
	t = listed(out, "ws-open");
	assert_int_equal(strncmp(t, "-  refused: hosts-unsafe: ", 26), 0);
	free(t);
	t = listed(out, "ws-junk");
	assert_int_equal(strncmp(t, "-  refused: host-key-bad: ", 26), 0);
	free(t);
	/* A name that is not NAME.pem, shown without its control character. */
	t = listed(out, "Notes\\x0a.txt");
	assert_int_equal(strncmp(t, "-  refused: bad-name: ", 22), 0);
	free(t);
	t = listed(out, "ws-h1");
	assert_string_equal(t, thumbs[0]);
	free(t);
	free(out);
	assert_int_equal(run_ctl(&out, json_args), 1);
	assert_non_null(doc = json_loads(out, 0, NULL));
	assert_true(json_is_false(json_object_get(doc, "ok")));
	assert_int_equal(json_integer_value(json_object_get(doc, "enrolled")), 2);
	assert_int_equal(json_integer_value(json_object_get(doc, "refused")), 3);
	json_array_foreach(json_object_get(doc, "hosts"), i, h)
	{
		const char *file = json_string_value(json_object_get(h, "file"));
		if (strcmp(file, "ws-open.pem") == 0) {
			assert_true(json_is_false(json_object_get(h, "ok")));
			assert_string_equal(json_string_value(json_object_get(h, "problem")), "hosts-unsafe");
			assert_null(json_object_get(h, "thumbprint"));
		}
	}
	json_decref(doc);
	free(out);
	/* Fixed, it is listed like the others. */
	snprintf(path, sizeof(path), "%s/ws-open.pem", dir);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(run_ctl(&out, args), 1);
	t = listed(out, "ws-open");
	assert_int_equal(strlen(t), 43);
	free(t);
	free(out);
	free(pem);
}

static void test_hosts_refuses_an_unsafe_or_missing_directory_and_bad_usage(void **state)
{
	char dir[256], thumbs[2][64], missing[300], *out = NULL;
	const char *args[] = {"hosts", "--dir", dir, NULL};
	const char *gone[] = {"hosts", "--dir", missing, NULL};
	const char *relative[] = {"hosts", "--dir", "hosts", NULL};
	const char *extra[] = {"hosts", "ws-h1", NULL};
	(void)state;

	enrolled_dir("hosts-dir", dir, sizeof(dir), thumbs);
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(run_ctl(&out, args), 1);
	assert_null(strstr(out, thumbs[0]));
	free(out);
	assert_int_equal(chmod(dir, 0755), 0);
	snprintf(missing, sizeof(missing), "%s/none", dir);
	assert_int_equal(run_ctl(&out, gone), 1);
	free(out);
	assert_int_equal(run_ctl(&out, relative), 2);
	free(out);
	assert_int_equal(run_ctl(&out, extra), 2);
	free(out);
}

/* The listing is bounded, sorted, and says when it was cut. */
static void test_hosts_list_is_sorted_and_cut_at_its_bound(void **state)
{
	char dir[256], thumbs[2][64], path[512], **files = NULL;
	struct nl_hostauth_hosts *h = NULL;
	struct nl_hostauth_error err;
	size_t n = 0;
	bool cut = true;
	(void)state;

	enrolled_dir("hosts-cut", dir, sizeof(dir), thumbs);
	snprintf(path, sizeof(path), "%s/ws-h0.pem", dir);
	assert_int_equal(test_write_file(path, 0644, "x"), 0);
	assert_int_equal(nl_hostauth_hosts_new(dir, 1, &h), 0);
	assert_int_equal(nl_hostauth_hosts_list(h, 3, &files, &n, &cut, &err), 0);
	assert_int_equal(n, 3);
	assert_false(cut);
	assert_string_equal(files[0], "ws-h0.pem");
	assert_string_equal(files[2], "ws-h2.pem");
	nl_hostauth_files_free(files, n);
	assert_int_equal(nl_hostauth_hosts_list(h, 2, &files, &n, &cut, &err), 0);
	assert_int_equal(n, 2);
	assert_true(cut);
	nl_hostauth_files_free(files, n);
	nl_hostauth_hosts_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_enroll_creates_a_0600_key_and_prints_the_registration),
	    cmocka_unit_test(test_enroll_again_keeps_the_key_and_prints_the_same),
	    cmocka_unit_test(test_enroll_force_replaces_the_key),
	    cmocka_unit_test(test_enroll_refuses_a_bad_name),
	    cmocka_unit_test(test_enroll_refuses_an_unsafe_key_place),
	    cmocka_unit_test(test_enroll_as_root_makes_a_root_owned_key),
	    cmocka_unit_test(test_enroll_registration_lets_the_agent_in),
	    cmocka_unit_test(test_hosts_lists_each_workstation_with_the_thumbprint_enroll_printed),
	    cmocka_unit_test(test_hosts_reports_unsafe_and_garbage_files_as_refused),
	    cmocka_unit_test(test_hosts_refuses_an_unsafe_or_missing_directory_and_bad_usage),
	    cmocka_unit_test(test_hosts_list_is_sorted_and_cut_at_its_bound),
	};

	return cmocka_run_group_tests_name("hostauth_ctl", tests, group_setup, group_teardown);
}
