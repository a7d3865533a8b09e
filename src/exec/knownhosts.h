/*
 * knownhosts.h — the known_hosts file as OpenSSH reads it, for the SSH
 * executor (internal to src/exec/): patterns, hashed names, [host]:port,
 * @revoked; what it cannot read it skips and reports, line by line.
 */
#ifndef BATON_EXEC_KNOWNHOSTS_H
#define BATON_EXEC_KNOWNHOSTS_H

#include <stdbool.h>
#include <stddef.h>

struct exec_kh;

/* Called once for each line that is skipped: "FILE:LINE: why; skipped". */
typedef void exec_kh_warn_fn(void *ud, const char *msg);

/*
 * Reads the file at path (caller frees with exec_kh_free). A file that does
 * not exist is an empty one; a file that exists but cannot be read gives
 * NULL and *err (caller frees), naming the file and the errno.
 */
struct exec_kh *exec_kh_load(const char *path, exec_kh_warn_fn *warn, void *ud, char **err);
void exec_kh_free(struct exec_kh *kh);

enum exec_kh_status {
	EXEC_KH_MATCH,   /* a line holds this key for the host */
	EXEC_KH_UNKNOWN, /* no line names the host */
	EXEC_KH_CHANGED, /* lines name the host, none with this key */
	EXEC_KH_REVOKED, /* an @revoked line holds this key (checked first) */
};

/* What a lookup found: the line that decided it (0: none) and, for a changed
 * key, the type of the key on that line. */
struct exec_kh_found {
	long line;
	char type[64];
};

/*
 * Checks the key blob (SSH wire format) a server at address:port offered.
 * The host is looked up as OpenSSH does: "[address]:port" for a port other
 * than 22, and then the bare address, which counts only if it holds this key.
 */
enum exec_kh_status exec_kh_check(const struct exec_kh *kh, const char *address, int port,
				  const unsigned char *key, size_t len, struct exec_kh_found *found);

/* The key types known for address:port, comma-separated, first seen first
 * (caller frees; "" when none). */
char *exec_kh_known_types(const struct exec_kh *kh, const char *address, int port);

/*
 * Appends "NAME TYPE BASE64" to the file (created with mode 0600) and to kh.
 * NULL on success, else why not (caller frees).
 */
char *exec_kh_append(struct exec_kh *kh, const char *address, int port, const unsigned char *key, size_t len);

/* The lines skipped while reading: how many, and the first one's number. */
size_t exec_kh_skipped(const struct exec_kh *kh, long *first);

/* HMAC-SHA1 (RFC 2104) of data under key: what hashed host names are. */
void exec_kh_hmac_sha1(const unsigned char *key, size_t klen, const void *data, size_t len, unsigned char out[20]);

/* OpenSSH's host pattern lists: 1 a match, -1 a negated match, 0 none. */
int exec_kh_match_list(const char *host, const char *patterns);

#endif
