/* test_sandbox.c -- a process confined by sandbox_apply() can read the
 * descriptors it was given and write in its scratch directory, and nothing
 * else: no other file, no socket, no exec; /proc shows no capability,
 * no_new_privs and a seccomp filter.
 *
 * "test_sandbox root" (ctest label root) also switches to the user nobody
 * and checks that the bounding set is empty; without root it exits 77. */
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "agent/sandbox.h"
#include "check.h"

#define NOBODY 65534

static bool as_root;

/* Confines the calling (child) process with scratch as its directory;
 * exits 100 when that fails. */
static void confine(const char *scratch)
{
	struct sandbox_config cfg = { .scratch = scratch };
	struct sandbox_report rep;
	char err[512];

	if (as_root) {
		cfg.set_user = true;
		cfg.uid = NOBODY;
		cfg.gid = NOBODY;
	}
	if (sandbox_apply(&cfg, &rep, err, sizeof(err)) != 0) {
		fprintf(stderr, "sandbox_apply: %s\n", err);
		_exit(100);
	}
	if (!rep.landlock_abi) {
		fprintf(stderr, "no Landlock: %s\n", rep.landlock_why);
		_exit(101);
	}
}

/* Forks a child that confines itself and calls what; returns its wait
 * status. */
static int run_confined(const char *scratch, void (*what)(void))
{
	int status = 0;
	pid_t pid = fork();

	if (pid == 0) {
		confine(scratch);
		what();
		_exit(0);
	}
	waitpid(pid, &status, 0);
	return status;
}

static void make_socket(void)
{
	(void)socket(AF_UNIX, SOCK_STREAM, 0);
}

static void run_exec(void)
{
	char *argv[] = { "true", NULL };

	execv("/bin/true", argv);
}

static void run_fork(void)
{
	(void)fork();
}

int main(int argc, char **argv)
{
	const char *scratch, *outside_dir;
	char *outside, *given_path, results[8] = "", want_uid[64];
	int given, res[2], go[2], status;
	pid_t pid;

	as_root = argc > 1 && strcmp(argv[1], "root") == 0;
	if (as_root && geteuid() != 0) {
		printf("not root: skipped\n");
		return 77;
	}
	outside_dir = test_tmpdir();
	outside = test_write(outside_dir, "outside", "secret", 6);
	given_path = test_write(outside_dir, "given", "hello", 5);
	scratch = test_tmpdir();
	if (as_root) {
		CHECK(chown(scratch, NOBODY, NOBODY) == 0);
		/* The scratch directory is reached from the working directory. */
	}
	given = open(given_path, O_RDONLY | O_CLOEXEC);
	CHECK(given >= 0);
	CHECK(pipe(res) == 0 && pipe(go) == 0);

	pid = fork();
	if (pid == 0) {
		char buf[8] = "";
		int fd;

		close(res[0]);
		close(go[1]);
		if (chdir(scratch) != 0)
			_exit(102);
		confine(".");
		/* 0: /etc/passwd is out of reach; 1: so is a file of another
		 * directory; 2: the descriptor given reads; 3: a file is made,
		 * written and removed in the scratch directory; 4: a directory
		 * too; 5: a file above the scratch directory is out of reach. */
		results[0] = open("/etc/passwd", O_RDONLY) < 0 ? '1' : '0';
		results[1] = open(outside, O_RDONLY) < 0 ? '1' : '0';
		results[2] = pread(given, buf, sizeof(buf), 0) == 5 &&
			     memcmp(buf, "hello", 5) == 0 ? '1' : '0';
		fd = open("tmpfile", O_CREAT | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
		results[3] = fd >= 0 && write(fd, "x", 1) == 1 && pread(fd, buf, 1, 0) == 1 &&
			     close(fd) == 0 && unlink("tmpfile") == 0 ? '1' : '0';
		results[4] = mkdir("sub", 0700) == 0 && rmdir("sub") == 0 ? '1' : '0';
		results[5] = open("../", O_RDONLY | O_DIRECTORY) < 0 ? '1' : '0';
		if (write(res[1], results, 6) != 6)
			_exit(103);
		/* Wait while the parent reads /proc. */
		(void)read(go[0], buf, 1);
		_exit(0);
	}
	close(res[1]);
	close(go[0]);
	CHECK(read(res[0], results, 6) == 6);
	CHECK_STR_EQ(results, "111111");
	CHECK_STR_EQ(test_status_field(pid, "CapEff"), "0000000000000000");
	CHECK_STR_EQ(test_status_field(pid, "CapPrm"), "0000000000000000");
	CHECK_STR_EQ(test_status_field(pid, "CapInh"), "0000000000000000");
	CHECK_STR_EQ(test_status_field(pid, "CapAmb"), "0000000000000000");
	CHECK_STR_EQ(test_status_field(pid, "NoNewPrivs"), "1");
	CHECK_STR_EQ(test_status_field(pid, "Seccomp"), "2");
	if (as_root) {
		CHECK_STR_EQ(test_status_field(pid, "CapBnd"), "0000000000000000");
		snprintf(want_uid, sizeof(want_uid), "%d\t%d\t%d\t%d", NOBODY, NOBODY, NOBODY,
			 NOBODY);
		CHECK_STR_EQ(test_status_field(pid, "Uid"), want_uid);
		CHECK_STR_EQ(test_status_field(pid, "Gid"), want_uid);
		CHECK_STR_EQ(test_status_field(pid, "Groups"), "");
	}
	close(go[1]);
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);

	/* What only an attack does kills the process. */
	status = run_confined(scratch, make_socket);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS);
	status = run_confined(scratch, run_exec);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS);
	status = run_confined(scratch, run_fork);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS);

	/* A user switch without root is refused, not ignored. */
	if (!as_root && geteuid() != 0) {
		struct sandbox_config cfg = { .set_user = true, .uid = NOBODY, .gid = NOBODY };
		struct sandbox_report rep;
		char err[256];

		pid = fork();
		if (pid == 0)
			_exit(sandbox_apply(&cfg, &rep, err, sizeof(err)) == -1 ? 0 : 1);
		CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		      WEXITSTATUS(status) == 0);
	}
	close(given);
	free(outside);
	free(given_path);
	return check_finish();
}
