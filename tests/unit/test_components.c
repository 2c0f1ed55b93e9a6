/* test_components.c -- the component holder: a handle keeps the
 * generation of scan workers it was given, scanning, while newer ones are
 * installed; each is retired with its last holder, its worker gone (the
 * sanitizer build sees a leak or a use after free). */
#include <fcntl.h>
#include <pthread.h>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/components.h"
#include "agent/scanner.h"
#include "common/util.h"
#include "check.h"

static const char eicar[] =
	"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

static char *infected;

static char *scratch;

/* A generation of one scan worker with the built-in signature. */
static struct scanner *builtin(void)
{
	struct scanner_config cfg = { .program = WARD_AGENT, .builtin = true, .threads = 1,
				      .scratch = scratch };
	char msg[512];
	struct scanner *g;

	engine_limits_default(&cfg.limits);
	if (geteuid() == 0)
		cfg.user = "nobody";
	g = scanner_start(&cfg, msg, sizeof(msg));
	if (!g) {
		fprintf(stderr, "scanner: %s\n", msg);
		exit(1);
	}
	return g;
}

/* Whether h's worker finds EICAR. */
static bool detects(const struct components_handle *h)
{
	struct engine_result res = { 0 };
	struct smart_outcome out;
	char msg[512];
	int fd = open(infected, O_RDONLY | O_CLOEXEC);
	bool found;

	found = fd >= 0 && components_scan_fd(h, fd, infected, 0, &res, &out, msg,
					      sizeof(msg)) == 0 && res.infected;
	engine_result_clear(&res);
	if (fd >= 0)
		close(fd);
	return found;
}

static struct components *holder;

/* Many threads take and give back handles while updates are installed. */
static void *churn(void *arg)
{
	const struct components_handle *h;
	int i, *bad = arg;

	for (i = 0; i < 2000; i++) {
		h = components_acquire(holder);
		if (!h || h->version < 1)
			(*bad)++;
		components_release(holder, h);
	}
	return NULL;
}

int main(void)
{
	const struct components_handle *h1, *h2, *h3;
	int bad[4] = { 0 }, i;
	pthread_t th[4];

	pid_t pid1;

	infected = test_write(test_tmpdir(), "eicar.com", eicar, sizeof(eicar) - 1);
	scratch = util_path_join(test_tmpdir(), "scratch");
	/* The worker's user reaches the file through the descriptor only. */
	chmod(test_tmpdir(), 0711);
	holder = components_new();
	CHECK(holder != NULL);
	CHECK(components_acquire(holder) == NULL);
	components_release(holder, NULL);
	CHECK(components_install(holder, builtin(), NULL, "virus-pattern", 1) == 0);
	h1 = components_acquire(holder);
	CHECK(h1 && h1->version == 1 && h1->smart == NULL);
	CHECK_STR_EQ(h1->name, "virus-pattern");
	/* An update: new scans get version 2, the scan holding 1 goes on. */
	CHECK(components_install(holder, builtin(), NULL, "virus-pattern", 2) == 0);
	h2 = components_acquire(holder);
	CHECK(h2 && h2->version == 2 && h2 != h1);
	CHECK(h1->version == 1 && detects(h1));
	pid1 = scanner_pid(h1->scanner);
	CHECK(pid1 > 0 && kill(pid1, 0) == 0);
	components_release(holder, h1);      /* version 1 is retired here */
	CHECK(kill(pid1, 0) != 0);           /* its worker is gone, reaped */
	CHECK(detects(h2));
	/* Installed while version 2 is held, twice: 3 is freed unused. */
	CHECK(components_install(holder, builtin(), NULL, "virus-pattern", 3) == 0);
	CHECK(components_install(holder, builtin(), NULL, "virus-pattern", 4) == 0);
	h3 = components_acquire(holder);
	CHECK(h3 && h3->version == 4 && detects(h2) && detects(h3));
	components_release(holder, h2);
	components_release(holder, h3);
	for (i = 0; i < 4; i++)
		CHECK(pthread_create(&th[i], NULL, churn, &bad[i]) == 0);
	for (i = 5; i < 8; i++)
		CHECK(components_install(holder, builtin(), NULL, "virus-pattern", i) == 0);
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK(bad[i] == 0);
	}
	h1 = components_acquire(holder);
	CHECK(h1 && h1->version == 7 && detects(h1));
	components_release(holder, h1);
	/* Freed with a component in use and no handle out. */
	components_free(holder);
	free(infected);
	free(scratch);
	return check_finish();
}
