/*
 * Cross-run locks: the plan's `lock:` key (name, or {name, wait}) and its
 * checks, and store_lock_take/release. flock locks belong to an open file
 * description, so two takes in one process contend as two runs would.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "store/store.h"

/* ---- the loader ---- */

Test(lock_plan, a_name_alone_waits_zero)
{
	struct plan *p = th_load_ok("lock: deploy-web_1.2\nsteps: [echo]\n");
	cr_assert_str_eq(p->lock, "deploy-web_1.2");
	cr_assert_eq(p->lock_wait_ms, 0);
	plan_free(p);
}

Test(lock_plan, a_map_gives_name_and_wait)
{
	struct plan *p = th_load_ok("lock: {name: db, wait: 1m30s}\nsteps: [echo]\n");
	cr_assert_str_eq(p->lock, "db");
	cr_assert_eq(p->lock_wait_ms, 90000);
	plan_free(p);
}

Test(lock_plan, no_lock_key_no_lock)
{
	struct plan *p = th_load_ok("steps: [echo]\n");
	cr_assert_null(p->lock);
	plan_free(p);
}

Test(lock_plan, a_name_of_128_characters_is_allowed_129_is_not)
{
	char yaml[512];
	char name[130];
	memset(name, 'a', 128);
	name[128] = '\0';
	snprintf(yaml, sizeof yaml, "lock: %s\nsteps: [echo]\n", name);
	struct plan *p = th_load_ok(yaml);
	cr_assert_eq(strlen(p->lock), 128);
	plan_free(p);
	snprintf(yaml, sizeof yaml, "lock: %sb\nsteps: [echo]\n", name);
	struct diags d = {0};
	th_load_fail(yaml, &d);
	TH_ASSERT_DIAG(&d, "too long: 129 characters", 1, 7);
	diags_free(&d);
}

static void bad(const char *yaml, const char *msg, int line, int col)
{
	struct diags d = {0};
	th_load_fail(yaml, &d);
	TH_ASSERT_DIAG(&d, msg, line, col);
	diags_free(&d);
}

Test(lock_plan, bad_names_point_at_the_offending_character)
{
	bad("lock: a/b\nsteps: [echo]\n", "only letters, digits", 1, 8);
	bad("lock: \"../x\"\nsteps: [echo]\n", "only letters, digits", 1, 10);
	bad("steps: [echo]\nlock: {name: 'a b'}\n", "only letters, digits", 2, 16);
	bad("lock: .hidden\nsteps: [echo]\n", "may not start with '.'", 1, 7);
	bad("lock: ''\nsteps: [echo]\n", "'lock' needs a name", 1, 7);
	bad("lock:\nsteps: [echo]\n", "'lock' needs a name", 1, 6);
	bad("lock: {name: ~}\nsteps: [echo]\n", "'lock' needs a name", 1, 14);
}

Test(lock_plan, a_name_is_plain_text_with_no_expressions)
{
	bad("lock: 'deploy-${{ vars.env }}'\nvars: {env: prod}\nsteps: [echo]\n", "${{ }} is not allowed", 1, 15);
}

Test(lock_plan, bad_shapes_and_waits)
{
	bad("lock: [a, b]\nsteps: [echo]\n", "'lock' must be a name or {name, wait}, not a list", 1, 7);
	bad("lock: {wait: 5s}\nsteps: [echo]\n", "'lock' needs a 'name'", 1, 7);
	bad("lock: {name: x, wait: soon}\nsteps: [echo]\n", "'wait': bad duration 'soon'", 1, 23);
	bad("lock: {name: x, wiat: 5s}\nsteps: [echo]\n", "did you mean 'wait'", 1, 17);
	bad("lock: {name: [x]}\nsteps: [echo]\n", "'name' must be a lock name", 1, 14);
	bad("lok: x\nsteps: [echo]\n", "did you mean 'lock'", 1, 1);
}

/* ---- the store ---- */

static char *tmpdir(void)
{
	char t[] = "/tmp/baton-lock-test-XXXXXX";
	cr_assert_not_null(mkdtemp(t));
	return xstrdup(t);
}

static void rm_rf(const char *dir)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
	free(cmd);
}

/* What store_lock_take said on err, as a string (caller frees). */
struct said {
	char *text;
	size_t len;
	FILE *f;
};

Test(lock_store, take_creates_the_directories_and_records_the_holder)
{
	char *tmp = tmpdir();
	char *dir = xasprintf("%s/a/b", tmp);
	char *why = NULL;
	struct store_lock *l = store_lock_take(dir, "deploy", 0, "RUN-1", stderr, &why);
	cr_assert_not_null(l, "%s", why);
	struct stat st;
	char *locks = xasprintf("%s/locks", dir);
	cr_assert_eq(stat(dir, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0700);
	cr_assert_eq(stat(locks, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0700);
	char *file = xasprintf("%s/deploy", locks);
	cr_assert_eq(stat(file, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	FILE *f = fopen(file, "r");
	char line[256] = "";
	cr_assert_not_null(fgets(line, sizeof line, f));
	fclose(f);
	cr_assert(str_has_prefix(line, "RUN-1\t"), "holder line: %s", line);
	char *pid = xasprintf("\t%ld\n", (long)getpid());
	cr_assert_not_null(strstr(line, pid), "holder line: %s", line);
	store_lock_release(l);
	free(pid);
	free(file);
	free(locks);
	free(dir);
	rm_rf(tmp);
	free(tmp);
}

Test(lock_store, a_held_lock_fails_at_once_naming_the_holder)
{
	char *dir = tmpdir();
	char *why = NULL;
	struct store_lock *a = store_lock_take(dir, "x", 0, "RUN-A", stderr, &why);
	cr_assert_not_null(a, "%s", why);
	struct said s = {0};
	s.f = open_memstream(&s.text, &s.len);
	uint64_t t0 = clock_ms();
	cr_assert_null(store_lock_take(dir, "x", 0, "RUN-B", s.f, &why));
	cr_assert_lt(clock_ms() - t0, 50, "wait 0 must not wait");
	fclose(s.f);
	cr_assert_not_null(why);
	cr_assert_not_null(strstr(why, "lock x is held by run RUN-A (user "), "%s", why);
	cr_assert_not_null(strstr(why, ", since 20"), "%s", why);
	cr_assert_str_eq(s.text, "", "no waiting message without a wait");
	free(why);
	free(s.text);
	/* another name is another lock */
	struct store_lock *b = store_lock_take(dir, "y", 0, "RUN-B", stderr, &why);
	cr_assert_not_null(b, "%s", why);
	store_lock_release(b);
	/* released: the next one takes it */
	store_lock_release(a);
	a = store_lock_take(dir, "x", 0, "RUN-C", stderr, &why);
	cr_assert_not_null(a, "%s", why);
	store_lock_release(a);
	rm_rf(dir);
	free(dir);
}

Test(lock_store, a_wait_says_who_holds_it_once_then_gives_up_after_the_wait)
{
	char *dir = tmpdir();
	char *why = NULL;
	struct store_lock *a = store_lock_take(dir, "x", 0, "RUN-A", stderr, &why);
	cr_assert_not_null(a, "%s", why);
	struct said s = {0};
	s.f = open_memstream(&s.text, &s.len);
	uint64_t t0 = clock_ms();
	cr_assert_null(store_lock_take(dir, "x", 300, "RUN-B", s.f, &why));
	uint64_t took = clock_ms() - t0;
	fclose(s.f);
	cr_assert_geq(took, 300);
	cr_assert_lt(took, 1000);
	cr_assert_not_null(strstr(s.text, "baton: lock x is held by run RUN-A (user "), "%s", s.text);
	cr_assert_not_null(strstr(s.text, "; waiting up to 300ms\n"), "%s", s.text);
	cr_assert_eq(strchr(s.text, '\n') + 1, s.text + s.len, "said once: %s", s.text);
	cr_assert_not_null(strstr(why, "held by run RUN-A"), "%s", why);
	free(why);
	free(s.text);
	store_lock_release(a);
	rm_rf(dir);
	free(dir);
}

Test(lock_store, a_waiter_gets_the_lock_when_the_holder_lets_go)
{
	char *dir = tmpdir();
	char *why = NULL;
	struct store_lock *a = store_lock_take(dir, "x", 0, "RUN-A", stderr, &why);
	cr_assert_not_null(a, "%s", why);
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) { /* the holder is another process that ends after 200 ms */
		usleep(200000);
		_exit(0);
	}
	/* the parent's copy of the lock's descriptor goes; the child's copy holds it until it exits */
	store_lock_release(a);
	struct said s = {0};
	s.f = open_memstream(&s.text, &s.len);
	uint64_t t0 = clock_ms();
	struct store_lock *b = store_lock_take(dir, "x", 5000, "RUN-B", s.f, &why);
	uint64_t took = clock_ms() - t0;
	fclose(s.f);
	cr_assert_not_null(b, "%s", why);
	cr_assert_geq(took, 100, "took %llu ms", (unsigned long long)took);
	cr_assert_lt(took, 2000);
	cr_assert_not_null(strstr(s.text, "waiting up to 5.0s\n"), "%s", s.text);
	cr_assert_not_null(strstr(s.text, "baton: took lock x after "), "%s", s.text);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	store_lock_release(b);
	free(s.text);
	rm_rf(dir);
	free(dir);
}

Test(lock_store, the_descriptor_is_close_on_exec)
{
	char *dir = tmpdir();
	char *why = NULL;
	/* the only descriptor opened by the take is the lowest free one */
	int probe = open("/dev/null", O_RDONLY);
	cr_assert_geq(probe, 0);
	close(probe);
	struct store_lock *a = store_lock_take(dir, "x", 0, "RUN-A", stderr, &why);
	cr_assert_not_null(a, "%s", why);
	int flags = fcntl(probe, F_GETFD);
	cr_assert_neq(flags, -1);
	cr_assert(flags & FD_CLOEXEC);
	store_lock_release(a);
	rm_rf(dir);
	free(dir);
}

Test(lock_store, errors_name_the_path)
{
	char *dir = tmpdir();
	char *file = xasprintf("%s/file", dir);
	FILE *f = fopen(file, "w");
	cr_assert_not_null(f);
	fclose(f);
	char *why = NULL;
	/* the state directory is a file */
	cr_assert_null(store_lock_take(file, "x", 0, "R", stderr, &why));
	cr_assert_not_null(strstr(why, file), "%s", why);
	cr_assert_not_null(strstr(why, strerror(ENOTDIR)), "%s", why);
	free(why);
	/* a name that is not one file is refused even if the loader was bypassed */
	cr_assert_null(store_lock_take(dir, "../x", 0, "R", stderr, &why));
	free(why);
	cr_assert_null(store_lock_take(dir, "", 0, "R", stderr, &why));
	free(why);
	free(file);
	rm_rf(dir);
	free(dir);
}
