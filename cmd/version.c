/* version.c — `baton version`: baton's version, and each library's as it runs (not as it was built). */
#include <stdio.h>
#include <string.h>
#include <uv.h>
#include <yaml.h>
#include <jansson.h>

#include "cmd.h"
#include "exec/exec.h"
#include "store/store.h"

int cmd_version(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: baton version\n\nPrints baton's version and the version of each library it runs on,\n"
			       "as loaded now: libyaml, libuv, jansson, SQLite, libssh2 (and its libcrypto)\n"
			       "and nettle, the last two loaded only when needed (\"not loadable: REASON\"\n"
			       "when one cannot be).\n");
			return 0;
		}
	printf("baton %s\n", BATON_VERSION);
	printf("  libyaml    %s\n", yaml_get_version_string());
	printf("  libuv      %s\n", uv_version_string());
	printf("  jansson    %s\n", jansson_version_str());
	printf("  SQLite     %s\n", store_sqlite_version());
	const char *crypto, *why;
	const char *ssh = exec_ssh_versions(&crypto, &why);
	if (ssh) {
		printf("  libssh2    %s\n", ssh);
		printf("  libcrypto  %s\n", crypto ? crypto : "unknown (not OpenSSL's, or not loaded with libssh2)");
	} else {
		printf("  libssh2    not loadable: %s\n", why);
	}
	int major, minor;
	if (store_nettle_version(&major, &minor, &why))
		printf("  nettle     %d.%d\n", major, minor);
	else
		printf("  nettle     not loadable: %s\n", why ? why : "libnettle.so.8");
	return 0;
}
