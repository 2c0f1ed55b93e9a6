/* commands.h -- the ward command table's entry points. */
#ifndef WARD_CLI_COMMANDS_H
#define WARD_CLI_COMMANDS_H

#include <stdbool.h>
#include <stdio.h>

/* Each command takes the arguments after its name (argv[0] is the command
 * name) and returns the process exit status. */
int scan_cmd_main(int argc, char **argv);

/* ward license-issuer keygen|issue: an issuer's key and license files. */
int license_cmd_main(int argc, char **argv);

/* ward login --server URL --ca FILE [--user NAME]: starts a session. */
int admin_cmd_login(int argc, char **argv);

/* Runs the administration command that argv (its words first) names,
 * from the operation table. */
int admin_cmd_main(int argc, char **argv);

/* Returns whether word starts an administration command. */
bool admin_cmd_known(const char *word);

/* Lists the administration commands. */
void admin_cmd_usage(FILE *f);

#endif
