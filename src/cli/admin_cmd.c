/* admin_cmd.c -- `ward login` and the administration commands, each built
 * from the operation table (src/common/ops.def): its words, its arguments
 * (positional, or --name VALUE) and where each goes in the request. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/values.h"
#include "cli/ops_doc.h"
#include "common/ops.h"
#include "common/rest.h"
#include "common/util.h"

/* The session `ward login` saves: $XDG_CONFIG_HOME/ward/cli.json. */
static char *session_path(void)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	char buf[4096];

	if (xdg && *xdg)
		snprintf(buf, sizeof(buf), "%s/ward", xdg);
	else if (home && *home)
		snprintf(buf, sizeof(buf), "%s/.config/ward", home);
	else
		return NULL;
	if (util_mkdir_p(buf, 0700) != 0)
		return NULL;
	return util_path_join(buf, "cli.json");
}

/* Reads a secret: $WARD_NAME (name in capitals), else a line from the
 * terminal (not echoed, after a prompt) or from standard input. An empty
 * one is refused here, before any request: a wrong password counts
 * toward the address's sign-in brake. Returns NULL after saying why. */
static char *read_secret(const char *name, const char *prompt)
{
	const char *env;
	struct termios old, quiet;
	char line[1100], var[64], *out;
	bool tty = isatty(STDIN_FILENO);
	size_t i;

	snprintf(var, sizeof(var), "WARD_%s", name);
	for (i = 5; var[i]; i++)
		if (var[i] >= 'a' && var[i] <= 'z')
			var[i] = (char)(var[i] - 32);
	env = getenv(var);
	if (env && *env)
		return strdup(env);
	if (env) {
		fprintf(stderr, "ward: $%s is empty; nothing was sent\n", var);
		return NULL;
	}
	if (tty) {
		fprintf(stderr, "%s (not echoed; or set $%s): ", prompt, var);
		tcgetattr(STDIN_FILENO, &old);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
	}
	if (!fgets(line, sizeof(line), stdin))
		line[0] = '\0';
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSANOW, &old);
		fputc('\n', stderr);
	}
	line[strcspn(line, "\r\n")] = '\0';
	if (line[0] == '\0') {
		fprintf(stderr, "ward: $%s is not set and %s; nothing was sent\n", var,
			tty ? "none was typed" :
			"standard input (not a terminal) gave an empty line");
		return NULL;
	}
	out = strdup(line);
	memset(line, 0, sizeof(line));
	return out;
}

/* Whether argv holds -h or --help. */
static bool wants_help(int argc, char **argv)
{
	int i;

	for (i = 0; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

static const char login_usage[] =
	"usage: ward login --server https://HOST:PORT --ca CA_FILE [--user NAME]\n"
	"  the password comes from $WARD_PASSWORD, else the terminal, else standard\n"
	"  input when it is not a terminal; an empty one is never sent\n";

int admin_cmd_login(int argc, char **argv)
{
	const char *server = NULL, *ca = NULL, *user = "admin";
	char *password = NULL, *path = NULL, msg[512], cafull[4096];
	struct rest_client *rc = NULL;
	json_t *answer = NULL, *session = NULL;
	long status;
	int i, ret = 1;

	if (wants_help(argc - 1, argv + 1)) {
		fputs(login_usage, stdout);
		return 0;
	}
	for (i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--server") == 0)
			server = argv[i + 1];
		else if (strcmp(argv[i], "--ca") == 0)
			ca = argv[i + 1];
		else if (strcmp(argv[i], "--user") == 0)
			user = argv[i + 1];
		else
			break;
	}
	if (i != argc || !server || !ca) {
		fputs(login_usage, stderr);
		return 2;
	}
	if (!realpath(ca, cafull)) {
		fprintf(stderr, "ward: %s: %s\n", ca, strerror(errno));
		return 2;
	}
	password = read_secret("password", "password");
	if (!password) {
		ret = 2;
		goto out;
	}
	rest_global_init();
	rc = rest_new(server, cafull);
	if (!rc)
		goto out;
	session = json_pack("{ss ss}", "user", user, "password", password);
	if (rest_call(rc, "POST", "/api/v1/login", session, 60, &status, &answer, msg,
		      sizeof(msg)) != ERR_OK) {
		fprintf(stderr, "ward: %s\n", msg);
		goto out;
	}
	json_decref(session);
	session = NULL;
	if (status != 200) {
		fprintf(stderr, "ward: login: %s\n",
			json_string_value(json_object_get(answer, "error")) ?
			json_string_value(json_object_get(answer, "error")) : "refused");
		goto out;
	}
	path = session_path();
	session = json_pack("{ss ss sO sO}", "server", server, "ca", cafull, "token",
			    json_object_get(answer, "token"), "expires",
			    json_object_get(answer, "expires"));
	if (!path || !session || json_dump_file(session, path, JSON_INDENT(2)) != 0 ||
	    chmod(path, 0600) != 0) {
		fprintf(stderr, "ward: cannot save the session in %s\n", path ? path : "~/.config");
		goto out;
	}
	printf("logged in to %s as %s (session saved in %s)\n", server, user, path);
	ret = 0;
out:
	if (password)
		memset(password, 0, strlen(password));
	free(password);
	free(path);
	json_decref(session);
	json_decref(answer);
	rest_free(rc);
	return ret;
}

/* Finds the operation whose words start argv, two words before one
 * ("posture token NAME" before "posture"); *used = how many words. */
static const struct ops_op *find_op(int argc, char **argv, int *used)
{
	const struct ops_op *ops = ops_table(), *one = NULL;
	char words[128];
	size_t i;

	words[0] = '\0';
	if (argc >= 1)
		snprintf(words, sizeof(words), "%s", argv[0]);
	*used = 1;
	for (i = 0; i < OPS_COUNT; i++) {
		if (!ops[i].cli)
			continue;
		if (strcmp(ops[i].cli, words) == 0)
			one = &ops[i];
		if (argc >= 2 && strncmp(ops[i].cli, words, strlen(words)) == 0 &&
		    ops[i].cli[strlen(words)] == ' ' &&
		    strcmp(ops[i].cli + strlen(words) + 1, argv[1]) == 0) {
			*used = 2;
			return &ops[i];
		}
	}
	return one;
}

bool admin_cmd_known(const char *word)
{
	const struct ops_op *ops = ops_table();
	size_t i, n = strlen(word);

	for (i = 0; i < OPS_COUNT; i++)
		if (ops[i].cli && strncmp(ops[i].cli, word, n) == 0 &&
		    (ops[i].cli[n] == ' ' || ops[i].cli[n] == '\0'))
			return true;
	return false;
}

void admin_cmd_usage(FILE *f)
{
	fputs("\nadministration (after 'ward login'; each takes --json):\n", f);
	fprintf(f, "  %-42s %s\n", "login --server URL --ca FILE", "start a session with wardd");
	ops_doc_list(f, NULL);
}

/* A command-line value as JSON of the argument's type; "@FILE" stands
 * for the file's contents (an export, a CA certificate). Returns NULL
 * after saying what was wrong. */
static json_t *arg_value(const struct ops_op *op, const struct ops_arg *a, const char *text)
{
	json_t *v;
	char *end, *file;
	long long n;
	int64_t t;

	if (text[0] == '@' && (a->type == OPS_JSON || a->type == OPS_STRING)) {
		file = util_read_file(text + 1, 64u << 20, NULL);
		if (!file) {
			fprintf(stderr, "ward: %s: %s\n", text + 1, strerror(errno));
			return NULL;
		}
		v = a->type == OPS_JSON ? json_loads(file, 0, NULL) : json_string(file);
		if (!v)
			fprintf(stderr, "ward: %s: not valid JSON\n", text + 1);
		free(file);
		return v;
	}
	switch (a->type) {
	case OPS_INT:
		n = strtoll(text, &end, 10);
		if (*end || end == text)
			break;
		return json_integer(n);
	case OPS_IDS:
		v = json_array();
		if (v && values_parse_ids(text, v))
			return v;
		json_decref(v);
		fprintf(stderr, "ward %s: %s: '%s' is not a list of client ids (give %s)\n",
			op->cli, a->name, text, VALUES_IDS_FORMS);
		return NULL;
	case OPS_TIME:
		if (values_parse_time(text, time(NULL), &t))
			return json_integer(t);
		fprintf(stderr, "ward %s: --%s: '%s' is not a time (give %s)\n", op->cli, a->name,
			text, VALUES_TIME_FORMS);
		return NULL;
	case OPS_JSON:
		v = json_loads(text, JSON_DECODE_ANY, NULL);
		return v ? v : json_string(text);
	case OPS_STRING:
	case OPS_SECRET:
		return json_string(text);
	}
	fprintf(stderr, "ward %s: %s: '%s' is not a number\n", op->cli, a->name, text);
	return NULL;
}

/* Appends name=value (URL-encoded) to the query. */
static void add_query(struct util_buf *q, const char *name, json_t *v)
{
	char *text = json_is_string(v) ? strdup(json_string_value(v)) :
		     json_dumps(v, JSON_ENCODE_ANY);
	const char *p;

	util_buf_printf(q, "%c%s=", q->len ? '&' : '?', name);
	for (p = text ? text : ""; *p; p++) {
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~/:",
			   *p))
			util_buf_append(q, p, 1);
		else
			util_buf_printf(q, "%%%02X", (unsigned char)*p);
	}
	free(text);
}

/* text with its control characters escaped (util_escape()), for the
 * caller to free; NULL when out of memory. A host name or a message an
 * agent reported must not move the cursor or clear the screen. */
static char *escaped(const char *text)
{
	size_t len = strlen(text) * 4 + 1;
	char *out = malloc(len);

	if (out)
		util_escape(out, len, text);
	return out;
}

/* A value on one line (strings bare, control characters escaped, null
 * blank); *owned is set to what the caller frees. */
static const char *scalar_text(json_t *v, char **owned)
{
	char *dumped = !v || json_is_string(v) || json_is_null(v) ? NULL :
		       json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);

	*owned = escaped(json_is_string(v) ? json_string_value(v) : dumped ? dumped : "");
	free(dumped);
	return *owned ? *owned : "";
}

/* Prints a value in a column width wide (0: as it is), cut with '~'. */
static void print_scalar(FILE *f, json_t *v, int width)
{
	char *owned;
	const char *s = scalar_text(v, &owned);

	if (width == 0)
		fputs(s, f);
	else if ((int)strlen(s) > width)
		fprintf(f, "%.*s~ ", width - 1, s);
	else
		fprintf(f, "%-*s ", width, s);
	free(owned);
}

/* An array of objects as a table: one column per key any row has (a
 * failed item's error too), each as wide as its widest value up to
 * TABLE_COLUMN; the last is never cut (a log message, a description). */
#define TABLE_COLUMN 32
static void print_table(json_t *rows)
{
	json_t *cols = json_object(), *row, *v;
	size_t i, n, c;
	const char *key;
	int *width = NULL;
	char *owned;

	json_array_foreach(rows, i, row)
		json_object_foreach(row, key, v)
			if (cols)
				json_object_set_new(cols, key, json_null());
	n = json_object_size(cols);
	width = n ? calloc(n, sizeof(*width)) : NULL;
	if (!width)
		goto out;
	c = 0;
	json_object_foreach(cols, key, v)
		width[c++] = (int)strlen(key);
	json_array_foreach(rows, i, row) {
		c = 0;
		json_object_foreach(cols, key, v) {
			int len = (int)strlen(scalar_text(json_object_get(row, key), &owned));

			free(owned);
			if (len > width[c])
				width[c] = len > TABLE_COLUMN ? TABLE_COLUMN : len;
			c++;
		}
	}
	width[n - 1] = 0;
	c = 0;
	json_object_foreach(cols, key, v) {
		char *k = escaped(key);

		if (++c < n)
			fprintf(stdout, "%-*s ", width[c - 1], k ? k : "");
		else
			fputs(k ? k : "", stdout);
		free(k);
	}
	fputc('\n', stdout);
	json_array_foreach(rows, i, row) {
		c = 0;
		json_object_foreach(cols, key, v)
			print_scalar(stdout, json_object_get(row, key), width[c++]);
		fputc('\n', stdout);
	}
out:
	free(width);
	json_decref(cols);
}

static void print_children(json_t *list, int depth);

static void print_tree(json_t *node, int depth)
{
	const char *kind = json_string_value(json_object_get(node, "kind"));
	const char *raw = json_string_value(json_object_get(node, "name"));
	char *name = escaped(raw ? raw : "");

	printf("%*s%s%s (%s %lld%s)\n", depth * 2, "", name ? name : "",
	       strcmp(kind, "client") ? "/" : "", kind,
	       (long long)json_integer_value(json_object_get(node, "id")),
	       json_is_true(json_object_get(node, "moved")) ? ", moved to another server" : "");
	free(name);
	print_children(json_object_get(node, "domains"), depth);
	print_children(json_object_get(node, "clients"), depth);
}

static void print_children(json_t *list, int depth)
{
	json_t *child;
	size_t i;

	json_array_foreach(list, i, child)
		print_tree(child, depth + 1);
}

/* The human form of an answer: scalars as "key: value", arrays of objects
 * as tables, objects indented. */
static void print_human(json_t *v, int depth)
{
	const char *key;
	json_t *m;

	json_object_foreach(v, key, m) {
		char *k = escaped(key);
		const char *name = k ? k : "";

		if (json_is_array(m) && json_is_object(json_array_get(m, 0))) {
			printf("%*s%s:\n", depth * 2, "", name);
			print_table(m);
		} else if (json_is_object(m) && json_object_size(m)) {
			printf("%*s%s:\n", depth * 2, "", name);
			print_human(m, depth + 1);
		} else {
			char *owned;
			const char *text = scalar_text(m, &owned);

			printf("%*s%s:%s%s\n", depth * 2, "", name, *text ? " " : "", text);
			free(owned);
		}
		free(k);
	}
}

/* Whether key names a time (seconds since the epoch) in the API's answers. */
static bool time_key(const char *key)
{
	static const char *const keys[] = {
		"time", "expires", "last_seen", "started", "removed", "enrolled", "created",
		"next_attempt", "updated", "delivered", "finished", "reported", "checked",
	};
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(key, keys[i]) == 0)
			return true;
	return false;
}

/* Whether v holds a domain by its number ("domain": 4) anywhere. */
static bool has_domain_id(json_t *v)
{
	const char *key;
	json_t *m;
	size_t i;

	if (json_is_array(v))
		json_array_foreach(v, i, m)
			if (has_domain_id(m))
				return true;
	json_object_foreach(v, key, m)
		if ((strcmp(key, "domain") == 0 && json_is_integer(m)) || has_domain_id(m))
			return true;
	return false;
}

/* Adds the path of node (a domain of the tree, at path) and of the
 * domains below it to paths, keyed by their ids. */
static void add_paths(json_t *paths, json_t *node, const char *path)
{
	json_t *child;
	char id[24], sub[4096];
	size_t i;

	snprintf(id, sizeof(id), "%lld", (long long)json_integer_value(json_object_get(node,
									     "id")));
	json_object_set_new(paths, id, json_string(path));
	json_array_foreach(json_object_get(node, "domains"), i, child) {
		const char *name = json_string_value(json_object_get(child, "name"));

		snprintf(sub, sizeof(sub), "%s/%s", strcmp(path, "/") ? path : "",
			 name ? name : "");
		add_paths(paths, child, sub);
	}
}

/* The paths of the server's domains by their ids, from its tree (asked
 * once); NULL when the tree cannot be had (the numbers are shown then). */
static json_t *domain_paths(struct rest_client *rc)
{
	json_t *tree = NULL, *paths = NULL;
	char msg[512];
	long status;

	if (rest_call(rc, "GET", ops_table()[OPS_TREE].path, NULL, 120, &status, &tree, msg,
		      sizeof(msg)) == ERR_OK && status == 200 && json_is_object(tree)) {
		paths = json_object();
		if (paths)
			add_paths(paths, tree, "/");
	}
	json_decref(tree);
	return paths;
}

/* Makes an answer readable in place: times in local ISO 8601 (0, never,
 * blank) and domains by their paths (when paths knows them). */
static void humanize(json_t *v, json_t *paths)
{
	const char *key;
	json_t *m, *path;
	char id[24], when[40];
	size_t i;

	json_array_foreach(v, i, m)
		humanize(m, paths);
	json_object_foreach(v, key, m) {
		if (json_is_integer(m) && time_key(key)) {
			when[0] = '\0';
			if (json_integer_value(m) > 0)
				values_format_time(json_integer_value(m), when, sizeof(when));
			json_object_set_new(v, key, json_string(when));
		} else if (json_is_integer(m) && strcmp(key, "domain") == 0) {
			snprintf(id, sizeof(id), "%lld", (long long)json_integer_value(m));
			path = json_object_get(paths, id);
			if (path)
				json_object_set(v, key, path);
		} else {
			humanize(m, paths);
		}
	}
}

int admin_cmd_main(int argc, char **argv)
{
	const struct ops_op *op;
	json_t *body = NULL, *answer = NULL, *session = NULL, *v;
	struct util_buf query = { 0 }, path = { 0 };
	struct rest_client *rc = NULL;
	const char *server, *ca, *token;
	char *spath = NULL, msg[512];
	int used = 0, i, j, ret = 2;
	size_t k;
	bool json_out = false, given[OPS_MAX_ARGS] = { false };
	long status;

	op = find_op(argc, argv, &used);
	if (op && wants_help(argc - used, argv + used)) {
		ops_doc_help(stdout, op);
		return 0;
	}
	if (!op && wants_help(argc, argv)) {
		printf("usage: ward %s SUBCOMMAND [ARGS] [--json]\n\n", argv[0]);
		ops_doc_list(stdout, argv[0]);
		printf("\n'ward %s SUBCOMMAND --help' describes one.\n", argv[0]);
		return 0;
	}
	if (!op) {
		fprintf(stderr, "ward: unknown command '%s%s%s'\n", argv[0], argc > 1 ? " " : "",
			argc > 1 ? argv[1] : "");
		return 2;
	}
	body = json_object();
	for (i = used; i < argc; i++) {
		const struct ops_arg *a = NULL;

		if (strcmp(argv[i], "--json") == 0) {
			json_out = true;
			continue;
		}
		if (strncmp(argv[i], "--", 2) == 0) {
			for (j = 0; op->args[j].name; j++)
				if (strcmp(op->args[j].name, argv[i] + 2) == 0 &&
				    !op->args[j].positional && op->args[j].type != OPS_SECRET)
					a = &op->args[j];
			if (!a || i + 1 == argc) {
				fprintf(stderr, "ward %s: unknown option or missing value: %s\n",
					op->cli, argv[i]);
				goto out;
			}
			i++;
		} else {
			/* A positional list of ids takes every remaining word. */
			for (j = 0; op->args[j].name; j++)
				if (op->args[j].positional &&
				    (!given[j] || op->args[j].type == OPS_IDS)) {
					a = &op->args[j];
					break;
				}
			if (!a) {
				fprintf(stderr, "ward %s: unexpected argument '%s'\n", op->cli,
					argv[i]);
				goto out;
			}
		}
		j = (int)(a - op->args);
		v = arg_value(op, a, argv[i]);
		if (!v)
			goto out;
		if (given[j] && a->type == OPS_IDS && a->in == OPS_IN_BODY) {
			json_array_extend(json_object_get(body, a->name), v);
			json_decref(v);
			continue;
		}
		given[j] = true;
		if (a->in == OPS_IN_QUERY) {
			add_query(&query, a->name, v);
			json_decref(v);
		} else {
			json_object_set_new(body, a->name, v);
		}
	}
	for (j = 0; op->args[j].name; j++) {
		if (op->args[j].type == OPS_SECRET) {
			char *secret = read_secret(op->args[j].name, op->args[j].help);

			if (!secret)
				goto out;
			if (json_object_set_new(body, op->args[j].name, json_string(secret)) != 0) {
				free(secret);
				fprintf(stderr, "ward: out of memory\n");
				goto out;
			}
			memset(secret, 0, strlen(secret));
			free(secret);
			continue;
		}
		if (op->args[j].required && !given[j]) {
			fprintf(stderr, "ward %s: missing %s%s (%s)\n", op->cli,
				op->args[j].positional ? "" : "--", op->args[j].name,
				op->args[j].help);
			goto out;
		}
	}
	ret = 1;
	spath = session_path();
	session = spath ? json_load_file(spath, 0, NULL) : NULL;
	server = getenv("WARD_SERVER") ? getenv("WARD_SERVER") :
		 json_string_value(json_object_get(session, "server"));
	ca = getenv("WARD_CA") ? getenv("WARD_CA") :
	     json_string_value(json_object_get(session, "ca"));
	token = getenv("WARD_TOKEN") ? getenv("WARD_TOKEN") :
		json_string_value(json_object_get(session, "token"));
	if (!server || !ca || !token) {
		fprintf(stderr, "ward: not logged in (run ward login --server URL --ca FILE)\n");
		goto out;
	}
	rest_global_init();
	rc = rest_new(server, ca);
	util_buf_printf(&path, "%s%s", op->path, query.data ? query.data : "");
	if (!rc || rest_set_token(rc, token) != 0 || !path.data) {
		fprintf(stderr, "ward: out of memory\n");
		goto out;
	}
	/* An operation with body arguments gets its object, {} when none is
	 * given; one without gets no body. */
	for (j = 0; op->args[j].name && op->args[j].in != OPS_IN_BODY; j++)
		;
	if (rest_call(rc, op->method, path.data, op->args[j].name ? body : NULL, 120,
		      &status, &answer, msg, sizeof(msg)) != ERR_OK) {
		fprintf(stderr, "ward: %s\n", msg);
		goto out;
	}
	if (status >= 400) {
		fprintf(stderr, "ward %s: %s\n", op->cli,
			json_string_value(json_object_get(answer, "error")) ?
			json_string_value(json_object_get(answer, "error")) : "failed");
		if (status == 401)
			fprintf(stderr, "ward: the session has expired or was never made: "
				"run ward login\n");
		goto out;
	}
	ret = 0;
	if (op->id == OPS_LOGOUT && spath && unlink(spath) != 0 && errno != ENOENT)
		fprintf(stderr, "ward: %s: %s\n", spath, strerror(errno));
	if (json_is_string(answer)) {
		fputs(json_string_value(answer), stdout);
	} else if (json_out || op->id == OPS_EXPORT) {
		json_dumpf(answer, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else if (op->id == OPS_TREE) {
		print_tree(answer, 0);
	} else if (answer) {
		json_t *paths = has_domain_id(answer) ? domain_paths(rc) : NULL;

		humanize(answer, paths);
		json_decref(paths);
		print_human(answer, 0);
	}
	/* Bulk operations: a failed item fails the command. */
	json_array_foreach(json_object_get(answer, "results"), k, v)
		if (json_is_false(json_object_get(v, "ok")))
			ret = 1;
out:
	util_buf_free(&query);
	util_buf_free(&path);
	free(spath);
	json_decref(session);
	json_decref(answer);
	json_decref(body);
	rest_free(rc);
	return ret;
}
