/* store/internal.h — what the store's files share; not for the rest of baton. */
#ifndef BATON_STORE_INTERNAL_H
#define BATON_STORE_INTERNAL_H

#include <sqlite3.h>

#include "store/store.h"

#define STORE_SCHEMA 4 /* PRAGMA user_version; 2 added tasks.outputs, 3 tasks.label, 4 tasks.tolerated and runs.n_tolerated */

struct store {
	sqlite3 *db;
	char *dir;
	bool writer;
	int schema; /* the store's PRAGMA user_version: a reader may find an older one */
};

/* Runs sql (no result rows); false with *err (caller frees) naming what failed. */
bool db_exec(struct store *st, const char *sql, char **err);
/* Prepares sql, or NULL with *err. */
sqlite3_stmt *db_prepare(struct store *st, const char *sql, char **err);
/* A column as a malloc'd string (NULL for NULL). */
char *db_text(sqlite3_stmt *q, int col);

/* This boot's id (/proc/sys/kernel/random/boot_id), or "" — static storage. */
const char *store_boot_id(void);
/* Start time of process pid in clock ticks since boot (field 22 of /proc/PID/stat), 0 if gone or a zombie. */
uint64_t store_proc_start(long pid);
/* A 128-bit hash of data, in hex (33 bytes): for comparing a task's environment between runs. */
void store_text_hash(const char *data, size_t n, char out[33]);
/* Wall clock now, in ms since the epoch. */
uint64_t store_now_ms(void);

#endif
