/*
 * ssh2.c — loads libssh2 (dlopen) and fills the table every libssh2 call of
 * the SSH executor goes through (see ssh2.h).
 */
#define EXEC_SSH2_TABLE /* the real names, to look them up */
#include <dlfcn.h>
#include <stdbool.h>

#include "exec/ssh2.h"

struct exec_ssh2_api exec_ssh2;

#define X(f) _Static_assert(sizeof(&f) == sizeof(void *), "function pointers fit in void *");
SSH2_FUNCS(X)
#undef X

/* Loads libssh2 once; NULL on success, else why not (static text). */
const char *exec_ssh2_load(void)
{
	static bool tried;
	static const char *why;
	if (tried)
		return why;
	tried = true;
	void *lib = dlopen("libssh2.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!lib)
		return why = "cannot load libssh2.so.1 (install the Debian package libssh2-1)";
#define X(f)                                                                                                           \
	if (!(*(void **)&exec_ssh2.f = dlsym(lib, #f)))                                                                \
		return why = "libssh2.so.1 lacks " #f " (libssh2 1.10 or later is needed)";
	SSH2_FUNCS(X)
#undef X
	return NULL; /* kept loaded until exit: its atexit-free state outlives every executor */
}

const char *exec_ssh_versions(const char **crypto, const char **why)
{
	*crypto = NULL;
	if ((*why = exec_ssh2_load()))
		return NULL;
	/* the libcrypto libssh2 brought in (OpenSSL 1.1 or later), if it is that one: not loaded anew */
	void *c = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
	if (!c)
		c = dlopen("libcrypto.so.1.1", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
	if (c) {
		const char *(*version)(int);
		_Static_assert(sizeof version == sizeof(void *), "function pointers fit in void *");
		*(void **)&version = dlsym(c, "OpenSSL_version");
		if (version)
			*crypto = version(0); /* OPENSSL_VERSION: "OpenSSL 3.0.15 3 Sep 2024" */
		dlclose(c); /* libssh2 still holds it */
	}
	return exec_ssh2.libssh2_version(0);
}
