/* test_components.c -- the component holder: a handle keeps the component
 * it was given, with a working engine, while newer ones are installed; each
 * is freed with its last holder (the sanitizer build sees a leak or a use
 * after free). */
#include <fcntl.h>
#include <pthread.h>

#include "agent/components.h"
#include "check.h"

static const char eicar[] =
	"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

static char *infected;

static struct engine *builtin(void)
{
	struct engine_config cfg = { 0 };
	enum engine_err err;
	char msg[ENGINE_ERRLEN];
	struct engine *e;

	engine_limits_default(&cfg.limits);
	e = engine_new(&cfg, &err, msg, sizeof(msg));
	if (!e || engine_load_builtin(e, msg, sizeof(msg)) != ENGINE_OK ||
	    engine_compile(e, msg, sizeof(msg)) != ENGINE_OK) {
		fprintf(stderr, "engine: %s\n", msg);
		exit(1);
	}
	return e;
}

/* Whether h's engine finds EICAR. */
static bool detects(const struct components_handle *h)
{
	struct engine_result res = { 0 };
	char msg[ENGINE_ERRLEN];
	int fd = open(infected, O_RDONLY | O_CLOEXEC);
	bool found;

	found = fd >= 0 && engine_scan_fd(h->engine, fd, infected, NULL, NULL, &res, msg,
					  sizeof(msg)) == ENGINE_OK && res.infected;
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

	infected = test_write(test_tmpdir(), "eicar.com", eicar, sizeof(eicar) - 1);
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
	components_release(holder, h1);      /* version 1 is freed here */
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
	for (i = 5; i < 10; i++)
		CHECK(components_install(holder, builtin(), NULL, "virus-pattern", i) == 0);
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK(bad[i] == 0);
	}
	h1 = components_acquire(holder);
	CHECK(h1 && h1->version == 9);
	components_release(holder, h1);
	/* Freed with a component in use and no handle out. */
	components_free(holder);
	free(infected);
	return check_finish();
}
