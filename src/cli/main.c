/* main.c -- the ward command line: dispatches to the command table. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/ops_doc.h"
#include "engine/engine.h"

struct cli_command {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);
};

static int version_main(int argc, char **argv);
static int help_main(int argc, char **argv);

/* Every ward command, once: dispatch, help and the man page follow it. */
static const struct cli_command commands[] = {
	{ "scan", "scan files and directories (clamscan-compatible)", scan_cmd_main },
	{ "login", "start a session with a wardd (see below)", admin_cmd_login },
	{ "license-issuer", "make an issuer's key pair and sign license files (offline)",
	  license_cmd_main },
	{ "version", "print the versions of ward and of libclamav", version_main },
	{ "help", "list the commands", help_main },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	size_t i;

	fputs("usage: ward COMMAND [ARGS]\n\ncommands:\n", f);
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
	admin_cmd_usage(f);
	fputs("\n'ward COMMAND --help' describes a command.\n", f);
}

static int version_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("ward %s (libclamav %s)\n", WARD_VERSION, engine_version());
	return 0;
}

static int help_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	usage(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return help_main(argc - 1, argv + 1);
	/* The generated parts of docs/api.md and man/ward.1. */
	if (strcmp(argv[1], "--print-reference") == 0 && argc == 3 &&
	    ops_doc_reference(stdout, argv[2]) == 0)
		return 0;
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
		return version_main(argc - 1, argv + 1);
	for (i = 0; i < NCOMMANDS; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	if (admin_cmd_known(argv[1]))
		return admin_cmd_main(argc - 1, argv + 1);
	fprintf(stderr, "ward: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
