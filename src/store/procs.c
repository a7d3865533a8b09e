/*
 * procs.c — ending what a crashed run left running on this machine. Its
 * tasks' process groups are recorded with when they started; a group is
 * ended only when its leader is still that process (same boot, started
 * within a second of the record) or carries the run's BATON_RUN_ID, so a
 * reused process id is never touched. Processes with the run's BATON_RUN_ID
 * whose group was not recorded yet (a start in the last moment before the
 * crash) are found by their environment, among this user's processes.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/internal.h"
#include "util/util.h"

/* True when process pid's environment holds BATON_RUN_ID=run_id. */
static bool has_run_env(long pid, const char *run_id)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%ld/environ", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	struct buf b = {0};
	char tmp[4096];
	ssize_t n;
	while ((n = read(fd, tmp, sizeof tmp)) > 0 && b.len < (4u << 20))
		buf_add(&b, tmp, (size_t)n);
	close(fd);
	char *want = xasprintf("BATON_RUN_ID=%s", run_id);
	size_t wl = strlen(want);
	bool found = false;
	for (size_t i = 0; i < b.len && !found;) {
		size_t l = strnlen(b.data + i, b.len - i);
		found = l == wl && !memcmp(b.data + i, want, wl);
		i += l + 1;
	}
	free(want);
	buf_free(&b);
	return found;
}

/* The process group of pid, or 0. */
static long pgid_of(long pid)
{
	long g = (long)getpgid((pid_t)pid);
	return g > 0 ? g : 0;
}

/* When this machine booted, in ms since the epoch; 0 if unknown. */
static uint64_t boot_ms(void)
{
	FILE *f = fopen("/proc/stat", "re");
	if (!f)
		return 0;
	char line[256];
	unsigned long long bt = 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "btime %llu", &bt) == 1)
			break;
	fclose(f);
	return (uint64_t)bt * 1000;
}

/* True when process pid started within 2 s of at_ms (wall clock). */
static bool started_near(long pid, uint64_t at_ms)
{
	uint64_t ticks = store_proc_start(pid), boot = boot_ms();
	long hz = sysconf(_SC_CLK_TCK);
	if (!ticks || !boot || hz <= 0)
		return false;
	uint64_t ms = boot + ticks * 1000 / (uint64_t)hz;
	return (ms > at_ms ? ms - at_ms : at_ms - ms) <= 2000;
}

static void add_group(long **v, size_t *n, long g)
{
	if (g <= 1 || g == (long)getpgrp())
		return;
	for (size_t i = 0; i < *n; i++)
		if ((*v)[i] == g)
			return;
	*v = xrealloc(*v, (*n + 1) * sizeof **v);
	(*v)[(*n)++] = g;
}

/* The state letter and process group of pid (/proc/PID/stat); false when it is gone. */
static bool proc_state(long pid, char *state, long *pgrp)
{
	char path[64], b[1024];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, b, sizeof b - 1);
	close(fd);
	if (n <= 0)
		return false;
	b[n] = 0;
	/* after the command name's last ')': state (field 3), ppid, pgrp (field 5) */
	const char *p = strrchr(b, ')');
	long ppid;
	return p && sscanf(p + 1, " %c %ld %ld", state, &ppid, pgrp) == 3;
}

/*
 * True while some process of group g lives. kill(2) answers for zombies
 * too, and the orphans of a dead run are reaped by init, which may do it
 * late (some containers' first process reaps once a second or so): a group
 * of zombies only has ended.
 */
static bool group_alive(long g)
{
	if (kill((pid_t)-g, 0) != 0 && errno != EPERM)
		return false;
	DIR *d = opendir("/proc");
	if (!d)
		return true;
	bool alive = false;
	struct dirent *e;
	while (!alive && (e = readdir(d))) {
		char st;
		long pgrp;
		if (isdigit((unsigned char)e->d_name[0]) && proc_state(strtol(e->d_name, NULL, 10), &st, &pgrp))
			alive = pgrp == g && st != 'Z' && st != 'X';
	}
	closedir(d);
	return alive;
}

size_t store_end_local(const struct store_run *r, const struct store_task *t, size_t n)
{
	if (r->boot_id && *r->boot_id && strcmp(r->boot_id, store_boot_id()))
		return 0; /* another boot: nothing of it runs */
	long *groups = NULL;
	size_t ng = 0;
	for (size_t i = 0; i < n; i++) {
		if (t[i].kind || !t[i].status || strcmp(t[i].status, "running") || t[i].pgid <= 1)
			continue;
		long g = t[i].pgid;
		if ((group_alive(g) && started_near(g, t[i].pgid_start_ms)) || has_run_env(g, r->id))
			add_group(&groups, &ng, g);
	}
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		long pid = strtol(e->d_name, NULL, 10);
		/* only this user's: a run's local commands run as the user who ran it */
		struct stat sb;
		char path[64];
		snprintf(path, sizeof path, "/proc/%ld", pid);
		if (stat(path, &sb) != 0 || sb.st_uid != geteuid())
			continue;
		if (pid != (long)getpid() && has_run_env(pid, r->id))
			add_group(&groups, &ng, pgid_of(pid));
	}
	if (d)
		closedir(d);
	for (size_t i = 0; i < ng; i++)
		kill((pid_t)-groups[i], SIGTERM);
	/* a grace of 2 s to end cleanly, in steps of 50 ms; then SIGKILL */
	for (int k = 0; k < 40; k++) {
		bool any = false;
		for (size_t i = 0; i < ng && !any; i++)
			any = group_alive(groups[i]);
		if (!any)
			break;
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
	}
	for (size_t i = 0; i < ng; i++)
		if (group_alive(groups[i]))
			kill((pid_t)-groups[i], SIGKILL);
	free(groups);
	return ng;
}
