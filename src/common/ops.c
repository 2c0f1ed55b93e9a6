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

const char *ops_path_param(const struct ops_op *op, const char *path)
{
	const char *brace = strchr(op->path, '{');
	size_t n = brace ? (size_t)(brace - op->path) : 0;

	if (!brace || strncmp(op->path, path, n) != 0 || path[n] == '\0' ||
	    strchr(path + n, '/'))
		return NULL;
	return path + n;
}

const struct ops_op *ops_route(const char *method, const char *path, bool *path_known)
{
	size_t i;

	*path_known = false;
	for (i = 0; i < OPS_COUNT; i++) {
		if (strcmp(table[i].path, path) != 0 && !ops_path_param(&table[i], path))
			continue;
		*path_known = true;
		if (strcmp(table[i].method, method) == 0)
			return &table[i];
	}
	return NULL;
}
