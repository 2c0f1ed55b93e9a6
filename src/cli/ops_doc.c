/* ops_doc.c -- what the operation table (src/common/ops.def) says to people:
 * `ward COMMAND --help`, the command list of `ward --help`, and the
 * reference parts of docs/api.md and man/ward.1 (`ward --print-reference`),
 * which tests/cli/test_reference.py compares with the committed files. */
#include "cli/ops_doc.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>


/* Who may call an operation, in words. */
static const char *auth_text(enum ops_auth auth)
{
	switch (auth) {
	case OPS_AUTH_NONE:
		return "anyone";
	case OPS_AUTH_ADMIN:
		return "an administrator of role admin";
	case OPS_AUTH_READ:
		return "any administrator (read-only too)";
	case OPS_AUTH_ENROLL:
		return "an agent enrollment token";
	case OPS_AUTH_SPS_ENROLL:
		return "a smart protection server's enrollment token";
	case OPS_AUTH_AGENT:
		return "an agent";
	case OPS_AUTH_SPS:
		return "a smart protection server";
	case OPS_AUTH_COMPONENTS:
		return "an agent or a smart protection server";
	case OPS_AUTH_POSTURE:
		return "a posture token (a policy server's), or any administrator";
	case OPS_AUTH_DEPLOY:
		return "an agent enrollment token, in the path";
	}
	return "?";
}

static const char *type_text(enum ops_type type)
{
	switch (type) {
	case OPS_STRING:
		return "string";
	case OPS_SECRET:
		return "string, asked for";
	case OPS_INT:
		return "integer";
	case OPS_JSON:
		return "JSON";
	case OPS_IDS:
		return "client ids";
	case OPS_TIME:
		return "time";
	}
	return "?";
}

/* An argument's name in capitals (its placeholder on the command line). */
static void meta_name(char *out, size_t len, const char *name)
{
	size_t i;

	for (i = 0; name[i] && i + 1 < len; i++)
		out[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 32 : name[i]);
	out[i] = '\0';
}

/* An argument as given on the command line: NAME or --name NAME. */
static void arg_form(char *out, size_t len, const struct ops_arg *a)
{
	char meta[64];

	meta_name(meta, sizeof(meta), a->name);
	if (a->positional)
		snprintf(out, len, "%s", meta);
	else
		snprintf(out, len, "--%s %s", a->name, meta);
}

void ops_doc_usage(char *out, size_t len, const struct ops_op *op)
{
	char form[96];
	size_t j, n;

	snprintf(out, len, "%s", op->cli);
	for (j = 0; op->args[j].name; j++) {
		if (op->args[j].type == OPS_SECRET)
			continue; /* asked for, never given on the command line */
		arg_form(form, sizeof(form), &op->args[j]);
		n = strlen(out);
		snprintf(out + n, len - n, op->args[j].required ? " %s" : " [%s]", form);
	}
}

/* Prints op's usage as ops_doc_usage() makes it, from column at, going
 * on at column indent before column 80 between arguments, never in one. */
static void print_usage(FILE *f, const struct ops_op *op, int indent, int at)
{
	char form[96], piece[100];
	int col = at + (int)strlen(op->cli);
	size_t j;

	fputs(op->cli, f);
	for (j = 0; op->args[j].name; j++) {
		if (op->args[j].type == OPS_SECRET)
			continue;
		arg_form(form, sizeof(form), &op->args[j]);
		snprintf(piece, sizeof(piece), op->args[j].required ? "%s" : "[%s]", form);
		if (col + 1 + (int)strlen(piece) > 79) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		} else {
			fputc(' ', f);
			col++;
		}
		fputs(piece, f);
		col += (int)strlen(piece);
	}
	fputc('\n', f);
}

/* Prints text from column indent, wrapped before column 80; the first
 * line continues where the cursor is (at column at). */
static void wrap(FILE *f, const char *text, int indent, int at)
{
	const char *p = text, *space;
	int col = at, word;
	bool first = true;

	while (*p) {
		space = strchr(p, ' ');
		word = space ? (int)(space - p) : (int)strlen(p);
		if (!first && col + 1 + word > 79) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		} else if (!first) {
			fputc(' ', f);
			col++;
		}
		first = false;
		fprintf(f, "%.*s", word, p);
		col += word;
		p += word;
		while (*p == ' ')
			p++;
	}
	fputc('\n', f);
}

void ops_doc_help(FILE *f, const struct ops_op *op)
{
	char usage[512], form[96], where[160];
	const struct ops_arg *a;
	size_t j;

	fputs("usage: ward ", f);
	print_usage(f, op, 8, 12);
	fputc('\n', f);
	wrap(f, op->summary, 0, 0);
	fputs("\narguments:\n", f);
	for (j = 0; op->args[j].name; j++) {
		a = &op->args[j];
		if (a->type == OPS_SECRET) {
			meta_name(form, sizeof(form), a->name);
			snprintf(where, sizeof(where), "from $WARD_%s, else the terminal or "
				 "standard input; body \"%s\"", form, a->name);
			snprintf(form, sizeof(form), "(asked) %s", a->name);
		} else {
			arg_form(form, sizeof(form), a);
			snprintf(where, sizeof(where), "%s%s; %s \"%s\"", type_text(a->type),
				 a->required ? "" : ", optional",
				 a->in == OPS_IN_QUERY ? "query" : "body", a->name);
		}
		fprintf(f, "  %-22s", form);
		if (strlen(form) > 22)
			fprintf(f, "\n%24s", "");
		fprintf(f, " ");
		snprintf(usage, sizeof(usage), "%s (%s)", a->help, where);
		wrap(f, usage, 25, 25);
	}
	fprintf(f, "  %-22s print the server's answer as JSON\n", "--json");
	fprintf(f, "  %-22s print this help\n", "-h, --help");
	snprintf(usage, sizeof(usage), "request: %s %s, as %s", op->method, op->path,
		 auth_text(op->auth));
	fputc('\n', f);
	wrap(f, usage, 2, 0);
}

void ops_doc_list(FILE *f, const char *group)
{
	const struct ops_op *ops = ops_table();
	size_t i, n = group ? strlen(group) : 0;
	char usage[512];

	for (i = 0; i < OPS_COUNT; i++) {
		if (!ops[i].cli || (group && (strncmp(ops[i].cli, group, n) != 0 ||
					      (ops[i].cli[n] != ' ' && ops[i].cli[n] != '\0'))))
			continue;
		ops_doc_usage(usage, sizeof(usage), &ops[i]);
		/* A long usage takes lines of its own, never cut. */
		if (strlen(usage) > 42) {
			fputs("  ", f);
			print_usage(f, &ops[i], 6, 2);
			fprintf(f, "  %-42s %s\n", "", ops[i].summary);
		} else {
			fprintf(f, "  %-42s %s\n", usage, ops[i].summary);
		}
	}
}

/* Prints text for a man page: dashes and backslashes escaped. */
static void man_text(FILE *f, const char *text)
{
	const char *p;

	for (p = text; *p; p++) {
		if (*p == '-' || *p == '\\')
			fputc('\\', f);
		fputc(*p, f);
	}
}

static void print_man(FILE *f)
{
	const struct ops_op *ops = ops_table(), *op;
	char usage[512], form[96];
	size_t i, j;

	for (i = 0; i < OPS_COUNT; i++) {
		op = &ops[i];
		if (!op->cli)
			continue;
		ops_doc_usage(usage, sizeof(usage), op);
		fputs(".TP\n.B ", f);
		man_text(f, usage);
		fputc('\n', f);
		man_text(f, op->summary);
		fputc('\n', f);
		for (j = 0; op->args[j].name; j++) {
			if (op->args[j].type == OPS_SECRET)
				meta_name(form, sizeof(form), op->args[j].name);
			else
				arg_form(form, sizeof(form), &op->args[j]);
			fputs(".br\n", f);
			fputs(op->args[j].type == OPS_SECRET ? "\\fB$WARD_" : "\\fB", f);
			man_text(f, form);
			fputs("\\fR: ", f);
			man_text(f, op->args[j].help);
			fputc('\n', f);
		}
	}
}

/* Prints text for a cell of a Markdown table: '|' escaped. */
static void md_cell(FILE *f, const char *text)
{
	const char *p;

	for (p = text; *p; p++) {
		if (*p == '|')
			fputc('\\', f);
		fputc(*p, f);
	}
}

static void print_api(FILE *f)
{
	const struct ops_op *ops = ops_table(), *op;
	const struct ops_arg *a;
	size_t i, j;

	fputs("| route | who may call | `ward` command | arguments | what it does |\n"
	      "|---|---|---|---|---|\n", f);
	for (i = 0; i < OPS_COUNT; i++) {
		op = &ops[i];
		fprintf(f, "| `%s %s` | %s | %s%s%s | ", op->method, op->path, auth_text(op->auth),
			op->cli ? "`" : "", op->cli ? op->cli : "", op->cli ? "`" : "");
		for (j = 0; op->args[j].name; j++) {
			a = &op->args[j];
			fprintf(f, "%s`%s` (%s, %s%s): ", j ? "<br>" : "", a->name,
				a->in == OPS_IN_QUERY ? "query" : "body",
				a->type == OPS_SECRET ? "string" : type_text(a->type),
				a->required ? "" : ", optional");
			md_cell(f, a->help);
		}
		fputs(" | ", f);
		md_cell(f, op->summary);
		fputs(" |\n", f);
	}
}

int ops_doc_reference(FILE *f, const char *what)
{
	if (strcmp(what, "api") == 0)
		print_api(f);
	else if (strcmp(what, "man") == 0)
		print_man(f);
	else
		return -1;
	return 0;
}
