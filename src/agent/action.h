/* action.h -- what the agent does to an infected file: a first action
 * and, when it fails, a second, chosen separately for malware and for
 * potentially unwanted applications (names starting "PUA.").
 *
 * Actions work through the directory descriptor and entry name the scan
 * used, check that the entry is still the file scanned (device, inode)
 * and never follow a symbolic link. A detection inside an archive acts on
 * the archive: the target is always the file the scan opened. Nothing is
 * ever done on a verdict other than infected (an error, a timeout, an
 * unverified or clean file), nor to a file in a quarantine vault. When
 * the first action finds the file changed, gone or not a regular file,
 * the second is not tried: it would act on another file.
 */
#ifndef WARD_AGENT_ACTION_H
#define WARD_AGENT_ACTION_H

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>

#include "agent/aerr.h"
#include "agent/quarantine.h"

/* The suffix the rename action appends. */
#define ACTION_SUFFIX ".ward-infected"

enum action_kind {
	ACTION_QUARANTINE,
	ACTION_DELETE,
	ACTION_RENAME,
	ACTION_PASS, /* log only */
};

/* The scan's verdict on the file; actions are taken on INFECTED only. */
enum action_verdict {
	ACTION_VERDICT_INFECTED,
	ACTION_VERDICT_CLEAN,
	ACTION_VERDICT_UNVERIFIED,
	ACTION_VERDICT_ERROR,
	ACTION_VERDICT_TIMEOUT,
};

/* The settings action.malware.first/second and action.pua.first/second. */
struct action_policy {
	enum action_kind malware_first, malware_second;
	enum action_kind pua_first, pua_second;
};

/* The file a scan found infected. */
struct action_target {
	int dirfd;        /* the directory the scan opened it through */
	const char *name; /* its entry name there (no slash) */
	const char *path; /* its path, for messages (NULL: name) */
	dev_t dev;        /* the file the scan read */
	ino_t ino;
};

/* What was done, for the detection report. */
struct action_outcome {
	bool pua;                 /* every name is a PUA name: the PUA policy applied */
	enum action_kind first;
	enum aerr first_result;
	char first_error[512];    /* when first_result is not AERR_OK */
	bool second_taken;
	enum action_kind second;
	enum aerr second_result;
	char second_error[512];
	char quarantine_id[QUARANTINE_ID_LEN + 1]; /* when quarantined, else "" */
};

/* The policy of the defaults: malware quarantine then delete, PUA
 * quarantine then pass. */
struct action_policy action_default_policy(void);

/* Reads a setting's value ("quarantine", "delete", "rename", "pass") into
 * *out. Returns false when s is none of them. */
bool action_parse(const char *s, enum action_kind *out);

/* The setting's spelling of k, as reports name it. */
const char *action_name(enum action_kind k);

/* True when every one of the n names starts "PUA.". */
bool action_is_pua(const char *const *names, size_t n);

/* Takes the policy's first action for a file with verdict v, and its
 * second when the first fails for a reason other than the file having
 * changed, gone or not being a regular file. q may be NULL (quarantine
 * then fails and the second action runs). det names the detection (and
 * the component, source) for the quarantine record and the log. Fills
 * *out. Returns AERR_OK when an action succeeded (pass always does),
 * AERR_REFUSED (nothing done) for a verdict other than infected or a file
 * in a vault, or the
 * last action's failure. Not thread-safe on one q. */
enum aerr action_take(const struct action_policy *p, struct quarantine *q, enum action_verdict v,
		      const struct action_target *t, const struct quarantine_detection *det,
		      struct action_outcome *out);

/* Adds what out says to det, a detection of the agent's report
 * (docs/protocol.md): "action", "action_result" ("ok" or "failed"),
 * "action_error" (the first action's failure, and the second's after
 * "; second: "), "second_action" and "second_result" when a second action
 * was taken, "quarantine" (the item id) when quarantined. A refused action
 * (not an infected verdict) adds nothing. Returns 0, or -1 when out of
 * memory. */
int action_outcome_json(const struct action_outcome *out, json_t *det);

#endif
