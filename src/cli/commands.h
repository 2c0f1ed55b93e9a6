/* commands.h -- the ward command table's entry points. */
#ifndef WARD_CLI_COMMANDS_H
#define WARD_CLI_COMMANDS_H

/* Each command takes the arguments after its name (argv[0] is the command
 * name) and returns the process exit status. */
int scan_cmd_main(int argc, char **argv);

#endif
