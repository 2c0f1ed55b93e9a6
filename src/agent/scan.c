/* scan.c -- ward-agent's scans (see scan.h). */
#include "agent/scan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/components.h"
#include "agent/scanner.h"
#include "common/log.h"
#include "common/util.h"
#include "scan/job.h"

/* What the report callback needs. */
struct run {
	const struct ascan_opts *o;
	ascan_emit_fn emit;
	void *emit_arg;
	json_t *unverified;
	json_t *found;
	const char *method;
	struct ascan_totals *t;
	const struct components_handle *h;
	bool low;
};

/* Each file through the scan workers of the generation held. */
static int scan_in_worker(void *arg, int fd, const char *name, struct engine_result *res,
			  struct smart_outcome *out, char *errbuf, size_t errlen)
{
	const struct run *run = arg;

	return components_scan_fd(run->h, fd, name, run->low ? SCANNER_LOW : 0, res, out, errbuf,
				  errlen);
}

json_t *ascan_unverified_entry(const char *path, enum quarantine_source source)
{
	return json_pack("{ss ss}", "path", path, "source", quarantine_source_name(source));
}

const char *ascan_unverified_path(const json_t *entry, enum quarantine_source *source)
{
	const char *name;
	enum quarantine_source s;

	*source = QUARANTINE_SOURCE_MANUAL;
	if (json_is_string(entry))
		return json_string_value(entry);
	name = json_string_value(json_object_get(entry, "source"));
	for (s = QUARANTINE_SOURCE_REALTIME; name && s <= QUARANTINE_SOURCE_MANUAL; s++)
		if (strcmp(name, quarantine_source_name(s)) == 0)
			*source = s;
	return json_string_value(json_object_get(entry, "path"));
}

/* Removes path from list, if it is there. */
static void list_remove(json_t *list, const char *path)
{
	enum quarantine_source source;
	const char *p;
	size_t i;

	for (i = 0; i < json_array_size(list); i++) {
		p = ascan_unverified_path(json_array_get(list, i), &source);
		if (p && strcmp(p, path) == 0) {
			json_array_remove(list, i);
			return;
		}
	}
}

static void on_report(const struct sjob_report *r, void *arg)
{
	struct run *run = arg;
	size_t i;

	switch (r->kind) {
	case SJOB_FILE:
		run->t->files++;
		run->t->bytes += r->size;
		list_remove(run->unverified, r->path);
		if (r->infected) {
			json_t *det = run->o->act ? run->o->act(r->path, r->dev, r->ino,
							       (const char *const *)r->names,
							       r->nnames, run->o->act_arg) : NULL;

			run->t->infected++;
			if (det && run->found)
				json_array_append(run->found, det);
			json_decref(det);
			for (i = 0; i < r->nnames; i++) {
				log_msg(LOG_LVL_WARN, "scan: %s: %s found", r->path, r->names[i]);
				if (run->found && !det)
					json_array_append_new(run->found, json_pack(
						"{sI so ss ss ss}", "time", (json_int_t)time(NULL),
						"path", util_json_bytes(r->path),
						"name", r->names[i], "method", run->method,
						"source", quarantine_source_name(run->o->source)));
				if (run->emit)
					run->emit(r->path, ASCAN_FOUND, r->names[i],
						  run->emit_arg);
			}
		} else if (r->unverified) {
			run->t->unverified++;
			json_array_append_new(run->unverified,
					      ascan_unverified_entry(r->path, run->o->source));
			if (run->emit)
				run->emit(r->path, ASCAN_UNVERIFIED, NULL, run->emit_arg);
		} else if (run->emit) {
			run->emit(r->path, ASCAN_OK, NULL, run->emit_arg);
		}
		break;
	case SJOB_ERROR:
	case SJOB_UNSCANNABLE:
		run->t->errors++;
		/* Gone or unreadable: nothing left to verify. */
		list_remove(run->unverified, r->path);
		log_msg(LOG_LVL_ERROR, "scan: %s: %s", r->path, r->message);
		if (run->emit)
			run->emit(r->path, ASCAN_ERROR, r->message, run->emit_arg);
		break;
	default:
		break;
	}
	if (run->o->progress && r->kind != SJOB_EXCLUDED)
		run->o->progress(run->t, run->o->progress_arg);
}

/* Compiles the paths to leave out as patterns matching each path and what
 * is under it. Returns how many were compiled. */
static size_t compile_excludes(const struct ascan_opts *o, struct sjob_pattern *pat)
{
	size_t i, n = 0, len;
	const char *p;
	char *re, *w;

	for (i = 0; i < o->nexclude; i++) {
		p = o->exclude[i];
		len = strlen(p);
		if (len && p[len - 1] == '/')
			len--; /* "/": everything */
		re = malloc(len * 2 + 16);
		if (!re)
			continue;
		w = re;
		*w++ = '^';
		for (; len; len--, p++) {
			if (strchr(".[]{}()\\*+?^$|", *p))
				*w++ = '\\';
			*w++ = *p;
		}
		memcpy(w, "(/.*)?$", sizeof("(/.*)?$"));
		memset(&pat[n], 0, sizeof(pat[n]));
		if (regcomp(&pat[n].re, re, REG_EXTENDED | REG_NOSUB) == 0)
			n++;
		free(re);
	}
	return n;
}

int ascan_run(const struct components_handle *h, const char *const *paths, size_t n,
	      const struct ascan_opts *o, json_t *unverified, json_t *found,
	      struct ascan_totals *t, char *errbuf, size_t errlen)
{
	static const struct ascan_opts none;
	const struct ascan_opts *opts = o ? o : &none;
	struct run run = { opts, opts->emit, opts->emit_arg, unverified, found,
			   h->smart ? "smart" : "conventional", t, h, opts->low };
	struct sjob_config cfg = { 0 };
	struct sjob_pattern *pat = NULL;
	struct sjob_stats stats;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	size_t npat = 0, i;
	int rc;

	memset(t, 0, sizeof(*t));
	if (opts->nexclude) {
		pat = calloc(opts->nexclude, sizeof(*pat));
		if (!pat) {
			snprintf(errbuf, errlen, "out of memory");
			return -1;
		}
		npat = compile_excludes(opts, pat);
	}
	cfg.exclude = pat;
	cfg.nexclude = npat;
	cfg.exclude_dir = pat;
	cfg.nexclude_dir = npat;
	cfg.jobs = opts->jobs ? opts->jobs : ncpu > 0 ? (unsigned)ncpu : 1;
	cfg.recursive = true;
	cfg.max_depth = 15;
	cfg.follow_dirs = SJOB_FOLLOW_ARGS;
	cfg.follow_files = SJOB_FOLLOW_ARGS;
	cfg.scan = scan_in_worker;
	cfg.scan_arg = &run;
	cfg.report = on_report;
	cfg.report_arg = &run;
	cfg.cancel = opts->cancel;
	rc = sjob_run(&cfg, paths, n, &stats, errbuf, errlen) == SCAN_OK ? 0 : -1;
	for (i = 0; i < npat; i++)
		regfree(&pat[i].re);
	free(pat);
	return rc;
}
