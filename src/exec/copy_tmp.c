/*
 * copy_tmp.c — the temporary names of `copy` (.NAME.baton-BOOT-PID-N, beside
 * the destination, renamed over it at the end), on a host (sftp.c) or here
 * (copy_local.c), and the removal of those a baton that is gone left.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "exec/copy.h"
#include "util/util.h"

/*
 * A transfer cut halfway (the connection lost, baton killed) leaves its
 * temporary .NAME.baton-BOOT-PID-N on the host: the destination is never
 * touched, but the temporary stays. A later copy to the same destination
 * removes those of its files that a baton gone left: the name says which
 * machine boot (the first 8 hex digits of this controller's
 * /proc/sys/kernel/random/boot_id) and which process wrote it. One written
 * by this machine since its boot by a process that no longer runs is stale;
 * one of another controller (or boot) only once it has not been written for
 * COPY_STALE_MIN minutes, since its pid says nothing here. A live run's temporary
 * is never taken: its process runs, or it is being written.
 */
const char *copy_boot_id(void)
{
	static char id[9];
	if (id[0])
		return id;
	snprintf(id, sizeof id, "00000000"); /* none: the pid rule is off (copy_tmp_stale) */
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
	char line[64];
	if (f && fgets(line, sizeof line, f)) {
		size_t n = 0;
		for (const char *p = line; *p && n < 8; p++)
			if ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))
				id[n++] = *p;
		if (n < 8)
			snprintf(id, sizeof id, "00000000");
	}
	if (f)
		fclose(f);
	return id;
}

/* A file's temporary name beside its destination (caller frees). */
char *copy_tmp_name(const char *path)
{
	char *d = copy_dir_of(path), *base = copy_basename(path);
	static atomic_uint n; /* local copies name theirs on pool threads */
	/* unique among baton's runs (this machine's boot and pid) and within one (a count); EXCL refuses the rest */
	char *t = xasprintf("%s/.%s.baton-%s-%ld-%u", d, base, copy_boot_id(), (long)getpid(), atomic_fetch_add(&n, 1));
	free(d);
	free(base);
	return t;
}

/* True when a listed temporary (its path, and whether it is old) was left by a baton that is gone. */
bool copy_tmp_stale(const char *path, bool old)
{
	const char *slash = strrchr(path, '/'), *name = slash ? slash + 1 : path;
	const char *m = NULL;
	for (const char *p = name; (p = strstr(p, ".baton-")); p++)
		m = p; /* the last: NAME may hold .baton- itself */
	if (!m || name[0] != '.' || m == name)
		return false;
	const char *q = m + 7;
	for (int i = 0; i < 8; i++)
		if (!((q[i] >= '0' && q[i] <= '9') || (q[i] >= 'a' && q[i] <= 'f')))
			return false; /* not one of ours: never touched */
	if (q[8] != '-' || q[9] < '1' || q[9] > '9')
		return false;
	char *end;
	errno = 0;
	long pid = strtol(q + 9, &end, 10);
	if (errno || *end != '-' || pid <= 0 || !end[1])
		return false;
	if (old)
		return true;
	if (strncmp(q, copy_boot_id(), 8) != 0 || !strcmp(copy_boot_id(), "00000000") || pid == (long)getpid())
		return false; /* another machine's or boot's (its age decides), or this process's own */
	return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/*
 * Here, before a copy writes: the temporaries in the directory dir that a
 * baton gone left, beside the file base (.BASE.baton-*), or any
 * (.*.baton-*) when base is NULL, are removed — as the command stale_cmd
 * sends does on a host (sftp.c). On a pool thread: copy_boot_id was asked
 * on the loop first.
 */
void copy_sweep_local(const char *dir, const char *base)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	size_t bl = base ? strlen(base) : 0;
	time_t now = time(NULL);
	struct dirent *e;
	while ((e = readdir(d))) {
		const char *n = e->d_name;
		if (n[0] != '.' || !strstr(n, ".baton-"))
			continue;
		if (base && (strncmp(n + 1, base, bl) || strncmp(n + 1 + bl, ".baton-", 7)))
			continue;
		char *path = copy_join(dir, n);
		struct stat st;
		if (lstat(path, &st) == 0 && (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) &&
		    copy_tmp_stale(path, now - st.st_mtime > COPY_STALE_MIN * 60))
			unlink(path);
		free(path);
	}
	closedir(d);
}
