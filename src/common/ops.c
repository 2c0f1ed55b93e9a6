/* ops.c -- the table of API operations, made from ops.def (see ops.h). */
#include "common/ops.h"

#include <string.h>

static const struct ops_op table[OPS_COUNT] = {
#define OP(id, cli, method, path, auth, handler, summary) \
	{ OPS_##id, cli, #method, path, OPS_AUTH_##auth, summary, {
#define ARG(name, in, type, positional, required, help) \
	{ name, in, type, positional, required, help },
#define END_OP { NULL, OPS_IN_BODY, OPS_STRING, false, false, NULL } } },
#include "common/ops.def"
#undef OP
#undef ARG
#undef END_OP
};

const struct ops_op *ops_table(void)
{
	return table;
}

bool ops_path_param(const struct ops_op *op, const char *path, char *out, size_t len)
{
	const char *brace = strchr(op->path, '{'), *close, *mid;
	size_t n, suffix, plen = strlen(path), m;

	if (!brace || !(close = strchr(brace, '}')))
		return false;
	n = (size_t)(brace - op->path);
	suffix = strlen(close + 1);
	if (strncmp(op->path, path, n) != 0 || plen <= n + suffix ||
	    strcmp(path + plen - suffix, close + 1) != 0)
		return false;
	mid = path + n;
	m = plen - n - suffix;
	if (memchr(mid, '/', m) || m >= len)
		return false;
	memcpy(out, mid, m);
	out[m] = '\0';
	return true;
}

const struct ops_op *ops_route(const char *method, const char *path, bool *path_known)
{
	char param[OPS_MAX_PARAM];
	size_t i;

	*path_known = false;
	for (i = 0; i < OPS_COUNT; i++) {
		if (strcmp(table[i].path, path) != 0 &&
		    !ops_path_param(&table[i], path, param, sizeof(param)))
			continue;
		*path_known = true;
		if (strcmp(table[i].method, method) == 0)
			return &table[i];
	}
	return NULL;
}
