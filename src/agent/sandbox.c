/* sandbox.c -- confining a scan worker (see sandbox.h). */
#include "agent/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/landlock.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/util.h"

/* Rights newer than the kernel headers Debian 12 ships. */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#define NET_BIND_TCP (1ULL << 0)
#define NET_CONNECT_TCP (1ULL << 1)
#define SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define SCOPE_SIGNAL (1ULL << 1)

/* struct landlock_ruleset_attr as of Landlock ABI 6; the kernel is told
 * how much of it its ABI reads. */
struct ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

int sandbox_lookup_user(const char *name, struct sandbox_config *cfg, char *errbuf,
			size_t errlen)
{
	struct passwd pw, *found = NULL;
	char buf[4096];
	int rc = getpwnam_r(name, &pw, buf, sizeof(buf), &found);

	if (rc != 0 || !found) {
		util_set_msg(errbuf, errlen, "scan worker user '%s': %s", name,
			     rc ? strerror(rc) : "no such user");
		return -1;
	}
	if (pw.pw_uid == 0 || pw.pw_gid == 0) {
		util_set_msg(errbuf, errlen, "scan worker user '%s': is root or in group root; "
			     "the workers need a user of their own", name);
		return -1;
	}
	cfg->set_user = true;
	cfg->uid = pw.pw_uid;
	cfg->gid = pw.pw_gid;
	return 0;
}

/* Drops every capability from the bounding and ambient sets (the bounding
 * set only with CAP_SETPCAP, which a process not started as root lacks:
 * no_new_privs then keeps it from mattering). */
static int drop_bounding(char *errbuf, size_t errlen)
{
	int cap;

	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
		util_set_msg(errbuf, errlen, "clearing the ambient capabilities: %s",
			     strerror(errno));
		return -1;
	}
	for (cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EPERM) {
			util_set_msg(errbuf, errlen, "dropping capability %d from the bounding "
				     "set: %s", cap, strerror(errno));
			return -1;
		}
	return 0;
}

/* Empties the effective, permitted and inheritable sets. */
static int drop_capabilities(char *errbuf, size_t errlen)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &hdr, data) != 0) {
		util_set_msg(errbuf, errlen, "clearing the capabilities: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int set_user(const struct sandbox_config *cfg, char *errbuf, size_t errlen)
{
	if (!cfg->set_user)
		return 0;
	if (cfg->uid == 0 || cfg->gid == 0) {
		util_set_msg(errbuf, errlen, "the scan worker may not run as root");
		return -1;
	}
	if (setgroups(0, NULL) != 0 || setresgid(cfg->gid, cfg->gid, cfg->gid) != 0 ||
	    setresuid(cfg->uid, cfg->uid, cfg->uid) != 0) {
		util_set_msg(errbuf, errlen, "switching to uid %u gid %u: %s",
			     (unsigned)cfg->uid, (unsigned)cfg->gid, strerror(errno));
		return -1;
	}
	return 0;
}

/* Every file system right Landlock ABI abi knows. */
static uint64_t fs_rights(int abi)
{
	uint64_t r = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;  /* ABI 1 */

	if (abi >= 2)
		r |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		r |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		r |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return r;
}

/* Allows file access beneath cfg->scratch only (none without it), no TCP,
 * no abstract sockets or signals outside the process. A kernel without
 * Landlock leaves the report saying why. */
static int landlock(const struct sandbox_config *cfg, struct sandbox_report *rep,
		    char *errbuf, size_t errlen)
{
	struct ruleset_attr attr = { 0 };
	struct landlock_path_beneath_attr rule = { 0 };
	size_t size = sizeof(attr.handled_access_fs);
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
			   LANDLOCK_CREATE_RULESET_VERSION);
	int rs = -1, dir = -1, rc = -1;

	if (abi < 0) {
		snprintf(rep->landlock_why, sizeof(rep->landlock_why), "%s",
			 errno == ENOSYS ? "the kernel is built without Landlock" :
			 errno == EOPNOTSUPP ? "Landlock is disabled at boot (lsm=)" :
			 strerror(errno));
		return 0;
	}
	attr.handled_access_fs = fs_rights((int)abi);
	if (abi >= 4) {
		attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP;
		size = offsetof(struct ruleset_attr, scoped);
	}
	if (abi >= 6) {
		attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL;
		size = sizeof(attr);
	}
	rs = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
	if (rs < 0) {
		util_set_msg(errbuf, errlen, "Landlock ruleset (ABI %ld): %s", abi,
			     strerror(errno));
		goto out;
	}
	if (cfg->scratch) {
		dir = open(cfg->scratch, O_PATH | O_DIRECTORY | O_CLOEXEC);
		rule.parent_fd = dir;
		rule.allowed_access = attr.handled_access_fs &
			(LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE |
			 LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR |
			 LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR |
			 LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_TRUNCATE);
		if (dir < 0 || syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH,
				       &rule, 0) != 0) {
			util_set_msg(errbuf, errlen, "Landlock rule for %s: %s", cfg->scratch,
				     strerror(errno));
			goto out;
		}
	}
	if (syscall(SYS_landlock_restrict_self, rs, 0) != 0) {
		util_set_msg(errbuf, errlen, "Landlock: %s", strerror(errno));
		goto out;
	}
	rep->landlock_abi = (int)abi;
	rc = 0;
out:
	if (dir >= 0)
		close(dir);
	if (rs >= 0)
		close(rs);
	return rc;
}

/* System calls scanning needs, allowed whatever their arguments. Opening,
 * creating and removing files are here because Landlock confines them to
 * the scratch directory; the stat family reveals metadata only. */
static const char *const allowed[] = {
	"read", "readv", "pread64", "preadv", "write", "writev", "pwrite64", "pwritev",
	"lseek", "fstat", "newfstatat", "statx", "fstatfs", "faccessat", "faccessat2",
	"munmap", "mremap", "madvise", "brk", "futex", "set_robust_list", "rseq",
	"clock_gettime", "clock_getres", "gettimeofday", "time", "nanosleep",
	"clock_nanosleep", "restart_syscall", "sched_yield", "sched_getaffinity",
	"getrandom", "sysinfo",
	"getpid", "gettid", "getuid", "geteuid", "getgid", "getegid",
	"rt_sigprocmask", "rt_sigaction", "rt_sigreturn", "sigaltstack",
	"recvmsg", "sendmsg", "sendto", "poll", "ppoll", "close", "exit", "exit_group",
	"openat", "unlink", "unlinkat", "mkdir", "mkdirat", "rmdir", "getdents64",
	"ftruncate", "fcntl", "dup", "fsync", "fdatasync", "getcwd",
	"membarrier",
};

/* System calls that only an attack would make: the process is killed. */
static const char *const fatal[] = {
	"socket", "socketpair", "connect", "bind", "listen", "accept", "accept4",
	"execve", "execveat", "fork", "vfork", "ptrace", "process_vm_readv",
	"process_vm_writev", "kill", "tkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
	"pidfd_open", "pidfd_getfd", "pidfd_send_signal", "setuid", "setgid", "setreuid",
	"setregid", "setresuid", "setresgid", "setgroups", "setfsuid", "setfsgid", "capset",
	"mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "bpf",
	"perf_event_open", "init_module", "finit_module", "delete_module", "kexec_load",
	"kexec_file_load", "keyctl", "add_key", "request_key", "userfaultfd",
	"io_uring_setup", "io_uring_enter", "io_uring_register", "open_by_handle_at",
	"name_to_handle_at", "personality",
};

/* Adds rules for names with action; a name this architecture lacks is
 * passed over. */
static int add_rules(scmp_filter_ctx ctx, const char *const *names, size_t n, uint32_t action)
{
	size_t i;
	int nr;

	for (i = 0; i < n; i++) {
		nr = seccomp_syscall_resolve_name(names[i]);
		if (nr != __NR_SCMP_ERROR && seccomp_rule_add(ctx, action, nr, 0) != 0)
			return -1;
	}
	return 0;
}

/* Argument arg of a call, masked with mask, equals value. */
static struct scmp_arg_cmp masked(unsigned arg, scmp_datum_t mask, scmp_datum_t value)
{
	return (struct scmp_arg_cmp){ .arg = arg, .op = SCMP_CMP_MASKED_EQ, .datum_a = mask,
				      .datum_b = value };
}

/* The seccomp filter: the allow list, the fatal list, and the rest
 * failing with EPERM (so that an unexpected call in libclamav is an error
 * of one scan, not a dead worker). */
static int seccomp_filter(char *errbuf, size_t errlen)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	int rc = -1;

	if (!ctx) {
		util_set_msg(errbuf, errlen, "seccomp: out of memory");
		return -1;
	}
	if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1) != 0 ||
	    add_rules(ctx, allowed, sizeof(allowed) / sizeof(*allowed), SCMP_ACT_ALLOW) != 0 ||
	    add_rules(ctx, fatal, sizeof(fatal) / sizeof(*fatal), SCMP_ACT_KILL_PROCESS) != 0 ||
	    /* Memory, never executable: no code is made at run time. */
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
			     masked(2, PROT_EXEC, 0)) != 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
			     masked(2, PROT_EXEC, 0)) != 0 ||
	    /* Threads, not processes. clone3 passes its flags in memory, which
	     * a filter cannot read: ENOSYS makes glibc use clone. */
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
			     masked(0, CLONE_THREAD, CLONE_THREAD)) != 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, SCMP_SYS(clone), 1,
			     masked(0, CLONE_THREAD, 0)) != 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) != 0 ||
	    /* Its own resource limits only (getrlimit and setrlimit). */
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1,
			     masked(0, ~(scmp_datum_t)0, 0)) != 0 ||
	    /* Its own thread's priority lowered (scan.cpu=low), nothing else. */
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setpriority), 3,
			     masked(0, ~(scmp_datum_t)0, PRIO_PROCESS),
			     masked(1, ~(scmp_datum_t)0, 0),
			     masked(2, ~(scmp_datum_t)0, 19)) != 0 ||
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioprio_set), 3,
			     masked(0, ~(scmp_datum_t)0, SANDBOX_IOPRIO_WHO_PROCESS),
			     masked(1, ~(scmp_datum_t)0, 0),
			     masked(2, ~(scmp_datum_t)0, SANDBOX_IOPRIO_IDLE)) != 0 ||
	    /* A signal to its own threads (abort() raises one). */
	    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
			     masked(0, ~(scmp_datum_t)0, (scmp_datum_t)getpid())) != 0) {
		util_set_msg(errbuf, errlen, "seccomp: a rule was refused");
		goto out;
	}
	if (seccomp_load(ctx) != 0) {
		util_set_msg(errbuf, errlen, "seccomp: the filter could not be loaded");
		goto out;
	}
	rc = 0;
out:
	seccomp_release(ctx);
	return rc;
}

int sandbox_apply(const struct sandbox_config *cfg, struct sandbox_report *rep, char *errbuf,
		  size_t errlen)
{
	memset(rep, 0, sizeof(*rep));
	if (cfg->set_user && geteuid() != 0) {
		util_set_msg(errbuf, errlen, "switching to uid %u needs root",
			     (unsigned)cfg->uid);
		return -1;
	}
	/* The bounding set first, while CAP_SETPCAP is still there; the
	 * switch of user then empties the other sets, and capset makes sure. */
	if (drop_bounding(errbuf, errlen) != 0 || set_user(cfg, errbuf, errlen) != 0 ||
	    drop_capabilities(errbuf, errlen) != 0)
		return -1;
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		util_set_msg(errbuf, errlen, "no_new_privs: %s", strerror(errno));
		return -1;
	}
	if (landlock(cfg, rep, errbuf, errlen) != 0)
		return -1;
	return seccomp_filter(errbuf, errlen);
}
