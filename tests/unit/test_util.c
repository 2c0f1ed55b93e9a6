/* test_util.c -- util_escape(), which every log line and the CLI's tables
 * go through, util_pseudo_fs(), util_printf() and util_assert(). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "common/util.h"

static char out[256];

static const char *esc(const char *s)
{
	util_escape(out, sizeof(out), s);
	return out;
}

static void test_escape(void)
{
	CHECK_STR_EQ(esc("plain, UTF-8: \xc3\xa9t\xc3\xa9"), "plain, UTF-8: \xc3\xa9t\xc3\xa9");
	CHECK_STR_EQ(esc("a\nb\rc\td"), "a\\nb\\rc\\td");
	CHECK_STR_EQ(esc("\x1b[2J\x07\x7f"), "\\x1b[2J\\x07\\x7f");
	/* A backslash is doubled, so "\\n" in the text cannot pass for a newline. */
	CHECK_STR_EQ(esc("C:\\n"), "C:\\\\n");
	/* C1 controls in UTF-8 (U+009B is a CSI of its own); U+00A0 is not one. */
	CHECK_STR_EQ(esc("x\xc2\x9b" "31m\xc2\xa0"), "x\\xc2\\x9b31m\xc2\xa0");
}

static void test_escape_cut(void)
{
	char small[5];

	/* Cut short at a whole escape, always terminated. */
	CHECK(util_escape(small, sizeof(small), "ab\ncd") == 4);
	CHECK_STR_EQ(small, "ab\\n");
	CHECK(util_escape(small, sizeof(small), "abc\x1b") == 3);
	CHECK_STR_EQ(small, "abc");
	CHECK(util_escape(small, 1, "abc") == 0);
	CHECK_STR_EQ(small, "");
}

static void test_pseudo_fs(void)
{
	CHECK_STR_EQ(util_pseudo_fs("/proc/self"), "proc");
	CHECK(util_pseudo_fs("/") == NULL);
	CHECK(util_pseudo_fs(test_tmpdir()) == NULL);
	CHECK(util_pseudo_fs("/nonexistent/dir") == NULL);
}

static void test_printf(void)
{
	char *s = util_printf("%s:%d", "a", 42);

	CHECK_STR_EQ(s, "a:42");
	free(s);
}

/* A broken invariant stops the process with SIGABRT and says which and
 * where, in every build (NDEBUG does not remove it). */
static void test_assert(void)
{
	int fds[2], status = 0;
	char msg[256] = "";
	ssize_t n;
	pid_t pid;

	util_assert(1 + 1 == 2);
	CHECK(pipe(fds) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], 2);
		signal(SIGABRT, SIG_DFL);
		util_assert(1 + 1 == 3);
		_exit(0);
	}
	close(fds[1]);
	n = read(fds[0], msg, sizeof(msg) - 1);
	close(fds[0]);
	msg[n > 0 ? n : 0] = '\0';
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
	CHECK_STR_CONTAINS(msg, "invariant broken at");
	CHECK_STR_CONTAINS(msg, "test_assert(): 1 + 1 == 3");
}

/* Bytes that are not UTF-8 are reported as \xNN, UTF-8 as it is. */
static void test_json_bytes(void)
{
	json_t *a = util_json_bytes("/home/\xc3\xa9t\xc3\xa9");
	json_t *b = util_json_bytes("/tmp/\xff\x01x");

	CHECK_STR_EQ(json_string_value(a), "/home/\xc3\xa9t\xc3\xa9");
	CHECK_STR_EQ(json_string_value(b), "/tmp/\\xff\x01x");
	json_decref(a);
	json_decref(b);
}

int main(void)
{
	test_json_bytes();
	test_escape();
	test_escape_cut();
	test_pseudo_fs();
	test_printf();
	test_assert();
	return check_finish();
}
