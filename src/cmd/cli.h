/* What every Berth program's command line has in common. */
#ifndef BRT_CLI_H
#define BRT_CLI_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berth/version.h"

/* --help / -h (print `usage` to stdout) and --version: answer and exit 0.
 * Any other argument returns. */
static inline void brt_cli_help_or_version(const char *arg, const char *program, void (*usage)(FILE *out))
{
	if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
		usage(stdout);
		exit(0);
	}
	if (strcmp(arg, "--version") == 0) {
		printf("%s %s%s%s\n", program, BRT_VERSION_STRING, BRT_GIT_REVISION[0] ? " " : "",
		       BRT_GIT_REVISION);
		exit(0);
	}
}

#endif
