/*
 * Private to the copy executors (copy_local.c, sftp.c): paths, and the SFTP
 * entry of the SSH executor. Other modules see only exec.h.
 */
#ifndef BATON_EXEC_COPY_H
#define BATON_EXEC_COPY_H

#include "exec/exec.h"

struct exec_copy;

/* The last component of path, trailing slashes ignored (caller frees). */
char *copy_basename(const char *path);
/* The directory path is in ("." for a bare name; caller frees). */
char *copy_dir_of(const char *path);
/* dir/name (caller frees). */
char *copy_join(const char *dir, const char *name);
void copy_free(struct exec_copy *c);

/* Temporaries not written for this many minutes, of another controller or boot, are stale (copy_tmp.c). */
#define COPY_STALE_MIN 60
/* The first 8 hex digits of this machine's boot_id ("00000000" unknown); ask on the loop first. */
const char *copy_boot_id(void);
/* A temporary name for path, beside it: .NAME.baton-BOOT-PID-N (caller frees). */
char *copy_tmp_name(const char *path);
/* Was the temporary at path (old: not written for COPY_STALE_MIN minutes) left by a baton that is gone? */
bool copy_tmp_stale(const char *path, bool old);
/* Removes the stale temporaries of dir: beside base (.BASE.baton-*), or any when base is NULL. */
void copy_sweep_local(const char *dir, const char *base);

/*
 * A copy to (or fetch from) spec->host over SFTP on that host's connection of
 * the SSH executor ssh: a proc of that connection, counted among its sessions,
 * stopped by ssh's signal(); cb->done only. NULL with *err (caller frees).
 */
struct exec_proc *sftp_copy_start(struct executor *ssh, const struct exec_copy_spec *spec,
				  const struct exec_callbacks *cb, void *ud, char **err);

/*
 * The sha256 of the local file at path, in lowercase hex (filehash.c): 1 with
 * hex filled when known for the file as it is now; 0 when it is being
 * computed on a worker, cb(ud) called on the loop once it is (then ask
 * again); -1 when it cannot be had (unreadable, libnettle not loadable).
 */
int filehash_get(uv_loop_t *loop, const char *path, char hex[65], void (*cb)(void *ud), void *ud);
/* ud waits no longer (it is being freed). */
void filehash_forget(void *ud);
/* Forgets every hash (the SSH executor is going). */
void filehash_clear(void);

/* A running SFTP copy's progress (exec_copy_progress). */
void sftp_progress(const struct exec_proc *p, uint64_t *bytes, int64_t *total);

#endif
