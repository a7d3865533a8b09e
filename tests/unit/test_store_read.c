/*
 * store: what the readers decide without a run — which ids a `logs TASK`
 * filter takes, and whether a run's controller is alive (its pid and that
 * pid's start time, so a reused pid is never taken for it).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/internal.h"

Test(store_id_matches, a_task_or_what_is_under_a_step)
{
	cr_assert(store_id_matches("build", "build"));
	cr_assert(store_id_matches("deploy", "deploy.push"));
	cr_assert(store_id_matches("deploy", "deploy.push#2"));
	cr_assert(store_id_matches("deploy", "deploy@web1"));
	cr_assert(store_id_matches("deploy", "deploy#0"));
	cr_assert(store_id_matches("deploy.push", "deploy.push#2"));
	cr_assert_not(store_id_matches("deploy", "deployer"));
	cr_assert_not(store_id_matches("deploy", "deploy-x.push"));
	cr_assert_not(store_id_matches("deploy.push", "deploy"));
	cr_assert_not(store_id_matches("deploy.push", "deploy.pusher"));
}

Test(store_id_matches, a_suffix_leads_the_ids_suffix)
{
	/* an item's steps carry its #INDEX at the end: deploy#2 holds deploy.push#2 */
	cr_assert(store_id_matches("deploy#2", "deploy#2"));
	cr_assert(store_id_matches("deploy#2", "deploy.push#2"));
	cr_assert(store_id_matches("deploy#2", "deploy.inner#2#1"));
	cr_assert_not(store_id_matches("deploy#2", "deploy#20"));
	cr_assert_not(store_id_matches("deploy#2", "deploy.push#1"));
	cr_assert_not(store_id_matches("deploy#2", "deploy"));
	cr_assert(store_id_matches("rollout@web1", "rollout.drain@web1"));
	cr_assert_not(store_id_matches("rollout@web1", "rollout.drain@web10"));
	cr_assert(store_id_matches("push@web1", "push@web1#3"));
	cr_assert(store_id_matches("h@db.example.com", "h.x@db.example.com"));
}

/* Field 22 of /proc/PID/stat, read independently of the store. */
static unsigned long long starttime(long pid)
{
	char path[64], b[1024];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	FILE *f = fopen(path, "r");
	cr_assert(f, "%s", path);
	size_t n = fread(b, 1, sizeof b - 1, f);
	fclose(f);
	b[n] = 0;
	char *p = strrchr(b, ')');
	cr_assert(p);
	unsigned long long v = 0;
	/* after ')': field 3 (state) up to 22 (starttime) */
	cr_assert_eq(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu", &v), 1);
	return v;
}

Test(store_proc_start, is_the_start_time_of_the_process)
{
	uint64_t s = store_proc_start(getpid());
	cr_assert_neq(s, 0u);
	cr_assert_eq(s, starttime(getpid()));
	cr_assert_eq(store_proc_start(0), 0u);
}

Test(store_proc_start, a_process_gone_or_a_zombie_has_none)
{
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0)
		_exit(0);
	/* exited, not reaped: a zombie */
	for (int i = 0; i < 200 && store_proc_start(pid); i++)
		usleep(10000);
	cr_assert_eq(store_proc_start(pid), 0u, "a zombie counts as gone");
	waitpid(pid, NULL, 0);
	cr_assert_eq(store_proc_start(pid), 0u);
}

Test(store_run_alive, needs_the_same_pid_and_start)
{
	struct store_run r = {.pid = getpid(), .pid_start = store_proc_start(getpid())};
	cr_assert(store_run_alive(&r));
	r.pid_start++;
	cr_assert_not(store_run_alive(&r), "a reused pid is not the run's controller");
	r.pid_start--;
	r.boot_id = (char *)"not-this-boot";
	cr_assert_not(store_run_alive(&r), "recorded before this boot");
}
