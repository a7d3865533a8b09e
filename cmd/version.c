/* version.c — `baton version`. */
#include <stdio.h>
#include <uv.h>
#include <yaml.h>
#include <jansson.h>

#include "cmd.h"

int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("baton %s (libuv %s, libyaml %s, jansson %s)\n", BATON_VERSION, uv_version_string(),
	       yaml_get_version_string(), JANSSON_VERSION);
	return 0;
}
