/* sandbox.h -- confining a scan worker (docs/architecture.md, "Scan
 * workers").
 *
 * sandbox_apply() takes from the calling process every right it does not
 * need to scan descriptors it is given: its user becomes an unprivileged
 * one, every capability goes from every set (bounding and ambient
 * included), no_new_privs is set, Landlock limits its file access to one
 * scratch directory, and a seccomp filter allows only the system calls
 * scanning with libclamav needs. It cannot be undone.
 */
#ifndef WARD_AGENT_SANDBOX_H
#define WARD_AGENT_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* ioprio_set(2)'s "who" for one thread, and the idle I/O class (glibc has
 * no header for them), for scan.cpu=low. */
#define SANDBOX_IOPRIO_WHO_PROCESS 1
#define SANDBOX_IOPRIO_IDLE (3 << 13)

struct sandbox_config {
	bool set_user;        /* switch to uid/gid (needs root; else refused) */
	uid_t uid;
	gid_t gid;
	const char *scratch;  /* the one directory it may read and write
			       * (libclamav's temporary files); NULL: none */
};

/* What sandbox_apply() could put in place beyond what it requires. */
struct sandbox_report {
	int landlock_abi;     /* the kernel's Landlock ABI in use; 0: none */
	char landlock_why[128]; /* when 0: why not */
};

/* Looks up the user name's uid and primary gid into cfg (and sets
 * set_user). Call it before sandbox_apply(): it reads the user database.
 * Returns 0, or -1 with errbuf naming the user when it does not exist or
 * is root. Thread-safe. */
int sandbox_lookup_user(const char *name, struct sandbox_config *cfg, char *errbuf,
			size_t errlen);

/* Confines the calling process as cfg says. Call it on the only thread of
 * the process (threads started later inherit the confinement). A kernel
 * without Landlock is not an error: the report says so, and the caller
 * logs it. Returns 0, or -1 with errbuf naming the step that failed; the
 * process is then partly confined and must exit. */
int sandbox_apply(const struct sandbox_config *cfg, struct sandbox_report *rep, char *errbuf,
		  size_t errlen);

#endif
