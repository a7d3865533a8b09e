/* version.c — `baton version`. */
#include <stdio.h>
#include <string.h>
#include <uv.h>
#include <yaml.h>
#include <jansson.h>

#include "cmd.h"

int cmd_version(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: baton version\n\nPrints baton's version and the versions of the libraries it runs on.\n");
			return 0;
		}
	printf("baton %s (libuv %s, libyaml %s, jansson %s)\n", BATON_VERSION, uv_version_string(),
	       yaml_get_version_string(), JANSSON_VERSION);
	return 0;
}
