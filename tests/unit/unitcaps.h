/* unitcaps.h -- run a unit test with the capabilities of the agent's
 * systemd unit, read from packaging/ward-agent.service.in itself, so the
 * test follows the unit as it changes (included by the tests that act as
 * the agent does under its unit). */
#ifndef WARD_TEST_UNITCAPS_H
#define WARD_TEST_UNITCAPS_H

#include <linux/capability.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/util.h"

/* The capabilities by name, each at its number (linux/capability.h). */
static const char *const unitcaps_names[] = {
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
	"CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
	"CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
};

/* Fills keep[cap] for each capability of the unit's CapabilityBoundingSet=;
 * exits 1 naming what it cannot read or does not know. */
static inline void unitcaps_read(const char *unit, bool keep[64])
{
	char *text = util_read_file(unit, 1 << 20, NULL), *line, *name, *save = NULL;
	size_t i;

	line = text ? strstr(text, "\nCapabilityBoundingSet=") : NULL;
	if (!line) {
		fprintf(stderr, "%s: no CapabilityBoundingSet= line\n", unit);
		exit(1);
	}
	line += strlen("\nCapabilityBoundingSet=");
	line[strcspn(line, "\n")] = '\0';
	for (name = strtok_r(line, " ", &save); name; name = strtok_r(NULL, " ", &save)) {
		for (i = 0; i < sizeof(unitcaps_names) / sizeof(*unitcaps_names); i++)
			if (strcmp(name, unitcaps_names[i]) == 0)
				break;
		if (i == sizeof(unitcaps_names) / sizeof(*unitcaps_names)) {
			fprintf(stderr, "%s: unknown capability %s\n", unit, name);
			exit(1);
		}
		keep[i] = true;
	}
	free(text);
}

/* The unit's capabilities, once unitcaps_apply() has read them. */
static bool unitcaps_on;
static struct __user_cap_data_struct unitcaps_data[2];

/* Sets the effective capabilities: the unit's, or (fixture) all permitted. */
static inline void unitcaps_set(bool fixture)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	int i;

	if (syscall(SYS_capget, &hdr, data) != 0)
		abort();
	for (i = 0; i < 2; i++)
		data[i].effective = fixture ? data[i].permitted : unitcaps_data[i].effective;
	if (syscall(SYS_capset, &hdr, data) != 0)
		abort();
}

/* Runs the process with the capabilities the unit file gives the agent:
 * only those effective and in the bounding set (so the programs it
 * starts, the scan workers, get no others). The others stay permitted for
 * the test's own fixtures (unitcaps_fixture()). Aborts when the kernel
 * refuses. Not thread-safe: call it before any thread starts. */
static inline void unitcaps_apply(const char *unit)
{
	bool keep[64] = { false };
	int cap;

	unitcaps_read(unit, keep);
	for (cap = 0; cap < 64 && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) {
		if (keep[cap])
			unitcaps_data[cap / 32].effective |= 1u << (cap % 32);
		else if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0)
			abort();
	}
	unitcaps_on = true;
	unitcaps_set(false);
}

/* Around what a test does as itself, not as the agent (making a file with
 * attributes only root may set, a device node): on, every permitted
 * capability is effective; off, the unit's again. Does nothing unless
 * unitcaps_apply() ran. Not thread-safe. */
static inline void unitcaps_fixture(bool on)
{
	if (unitcaps_on)
		unitcaps_set(on);
}

#endif
