/* maint.h -- wardd's commands on its data directory (backup, backup
 * verify, restore), and the lock a running wardd holds on that directory
 * so that none of them, nor a second wardd, acts under it.
 *
 * The commands run as processes of their own, beside a running wardd or
 * without one; they print what they did to standard output and their
 * errors to standard error, and return the process's exit status.
 */
#ifndef WARD_MAINT_H
#define WARD_MAINT_H

#include <stdbool.h>
#include <stddef.h>

/* Takes the lock of data_dir (DATA_DIR/wardd.lock, with this process's
 * id in it) for the life of the process: the descriptor; -2 with a
 * message naming the process that holds it; -1 with the reason when the
 * lock file cannot be opened (no such directory, ...). */
int maint_lock(const char *data_dir, char *errbuf, size_t errlen);

/* Whether argv[1] names one of these commands. */
bool maint_is_command(int argc, char **argv);

/* Runs the command of argv ("backup", "backup verify", "restore"; see
 * usage in wardd.c and man/wardd.8): 0 on success, 1 on failure, 2 for a
 * usage error. */
int maint_main(int argc, char **argv);

#endif
