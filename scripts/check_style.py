#!/usr/bin/env python3
"""Checks Ward's C sources against the rules in DEVELOPERS.md that a
compiler does not enforce:

- no typedef'd structs, no trailing white space, lines of at most 100
  columns (tabs count 8), indentation with tabs;
- every non-static function defined in src/ carries its module's prefix
  (the PREFIXES table below: one per file);
- every function declared in a header has a comment right above it, which
  states its contract;
- no call to a banned function (BANNED below, each with what to use instead);
- no printing to the terminal in the server (src/server/) but in its
  commands (SERVER_COMMANDS): what it says goes through log_msg(), so a
  stray debugging line cannot land;
- no SQLite in the server outside its database backend (src/server/db/
  sqlite.c): neither its header nor its dialect in SQL text (SQLITE_ONLY
  below), so that the store runs on another backend unchanged;
- no build, test or script file refers outside the repository (a path
  into the team's notes folder beside the clone, or more ".." than lead
  back to the clone's root): a
  clone must stand alone.

Prints one line per problem as FILE:LINE: message and exits 1 if any.
"""
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Module prefix of each source file's non-static names.
PREFIXES = {
    "src/common/util.c": ("util_",),
    "src/common/settings.c": ("settings_",),
    "src/common/ini.c": ("ini_",),
    "src/server/db/db.c": ("db_",),
    "src/server/db/sqlite.c": ("db_sqlite",),
    "src/server/db/postgres.c": ("db_postgres",),
    "src/server/store/store.c": ("store_",),
    "src/server/store/tree.c": ("store_",),
    "src/server/store/agents.c": ("store_",),
    "src/server/store/packages.c": ("store_",),
    "src/server/store/events.c": ("store_",),
    "src/server/store/tokens.c": ("store_",),
    "src/server/store/limits.c": ("store_",),
    "src/server/store/tasks.c": ("store_",),
    "src/server/store/deployments.c": ("store_",),
    "src/server/store/alerts.c": ("store_",),
    "src/server/pki.c": ("pki_",),
    "src/server/config.c": ("config_",),
    "src/common/http.c": ("http_",),
    "src/common/loop.c": ("loop_",),
    "src/common/spsq.c": ("spsq_",),
    "src/scan/smart.c": ("smart_",),
    "src/common/state.c": ("state_",),
    "src/agent/scan.c": ("ascan_",),
    "src/agent/quarantine.c": ("quarantine_",),
    "src/agent/action.c": ("action_",),
    "src/agent/realtime.c": ("realtime_",),
    "src/agent/protect.c": ("protect_",),
    "src/agent/rtcache.c": ("rtcache_",),
    "src/agent/rtdirs.c": ("rtdirs_",),
    "src/agent/rtwatch.c": ("rtwatch_",),
    "src/agent/astate.c": ("astate_",),
    "src/agent/channel.c": ("channel_",),
    "src/agent/components.c": ("components_",),
    "src/agent/control.c": ("control_",),
    "src/agent/reports.c": ("reports_",),
    "src/agent/tasks.c": ("tasks_",),
    "src/agent/vault.c": ("vault_",),
    "src/agent/cproto.c": ("cproto_",),
    "src/agent/clamd.c": ("clamd_",),
    "src/sps/pattern.c": ("sps_pattern_",),
    "src/sps/service.c": ("sps_service_",),
    "src/sps/main.c": ("main",),
    "src/server/api.c": ("api_",),
    "src/server/api_agent.c": ("api_agent_",),
    "src/server/api_clients.c": ("api_clients_",),
    "src/server/api_session.c": ("api_session_",),
    "src/server/api_settings.c": ("api_settings_",),
    "src/server/api_sps.c": ("api_sps_",),
    "src/server/api_tree.c": ("api_tree_",),
    "src/server/api_updates.c": ("api_updates_",),
    "src/server/api_tasks.c": ("api_tasks_",),
    "src/server/api_quarantine.c": ("api_quarantine_",),
    "src/server/session.c": ("session_",),
    "src/server/admins.c": ("admins_",),
    "src/server/signin.c": ("signin_",),
    "src/server/logs.c": ("logs_",),
    "src/server/enroll.c": ("enroll_",),
    "src/server/console.c": ("console_",),
    "src/server/notify.c": ("notify_",),
    "src/server/doorbell.c": ("doorbell_",),
    "src/server/grouping.c": ("grouping_",),
    "src/server/cvd.c": ("cvd_",),
    "src/server/importer.c": ("import_",),
    "src/server/sources.c": ("sources_",),
    "src/server/wardd.c": ("main",),
    "src/server/backup.c": ("backup_",),
    "src/server/maint.c": ("maint_",),
    "src/server/backups.c": ("backups_",),
    "src/server/deploy.c": ("deploy_",),
    "src/server/alerts.c": ("alerts_",),
    "src/server/channels.c": ("channels_",),
    "src/server/upgrade.c": ("upgrade_",),
    "src/server/metrics.c": ("metrics_",),
    "src/common/log.c": ("log_",),
    "src/common/rest.c": ("rest_",),
    "src/common/ops.c": ("ops_",),
    "src/common/pkg.c": ("pkg_",),
    "src/common/license.c": ("license_",),
    "src/server/licenses.c": ("licenses_",),
    "src/server/rollout.c": ("rollout_",),
    "src/server/posture.c": ("posture_",),
    "src/agent/upgrade.c": ("upgrade_",),
    "src/agent/dpkgup.c": ("dpkgup_",),
    "src/agent/threats.c": ("threats_",),
    "src/common/sdelta.c": ("sdelta_",),
    "src/common/pset.c": ("pset_",),
    "src/common/pack.c": ("pack_",),
    "src/common/comp.c": ("comp_",),
    "src/server/builder.c": ("build_",),
    "src/server/updates.c": ("updates_",),
    "src/server/mirror.c": ("mirror_",),
    "src/common/cidr.c": ("cidr_",),
    "src/common/rate.c": ("rate_",),
    "src/agent/agent.c": ("main",),
    "src/agent/sandbox.c": ("sandbox_",),
    "src/agent/wmsg.c": ("wmsg_",),
    "src/agent/worker.c": ("worker_",),
    "src/agent/scanner.c": ("scanner_",),
    "src/common/updater.c": ("updater_",),
    "src/engine/engine.c": ("engine_",),
    "src/scan/cache.c": ("scache_",),
    "src/scan/job.c": ("sjob_",),
    "src/cli/main.c": ("main",),
    "src/cli/scan_cmd.c": ("scan_cmd_",),
    "src/cli/admin_cmd.c": ("admin_cmd_",),
    "src/cli/values.c": ("values_",),
    "src/cli/license_cmd.c": ("license_cmd_",),
    "src/cli/ops_doc.c": ("ops_doc_",),
}

# Functions that invite a bug, as curl's checksrc bans them: what to use.
BANNED = {
    "gets": "fgets",
    "strcpy": "snprintf or util_buf",
    "strcat": "snprintf or util_buf",
    "sprintf": "snprintf",
    "vsprintf": "vsnprintf",
    "strncpy": "snprintf (strncpy may leave the string unterminated)",
    "strncat": "snprintf or util_buf",
    "atoi": "strtol with its end and errno checked",
    "atol": "strtol with its end and errno checked",
    "atoll": "strtoll with its end and errno checked",
    "atof": "strtod with its end and errno checked",
    "strtok": "strtok_r (strtok keeps hidden state)",
    "tmpnam": "mkstemp",
    "tempnam": "mkstemp",
    "mktemp": "mkstemp",
    "rand": "randombytes_buf",
    "srand": "randombytes_buf",
    "localtime": "localtime_r",
    "gmtime": "gmtime_r",
    "ctime": "strftime with localtime_r",
    "asctime": "strftime",
    "alloca": "a bounded array or malloc",
    "system": "fork and exec without a shell",
    "popen": "fork and exec without a shell",
}
BANNED_CALL = re.compile(r"(?<![\w.>])(" + "|".join(BANNED) + r")\s*\(")
# Comments, string and character literals: where a banned name is no call.
NOT_CODE = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'',
                      re.S)

# What SQL text outside the SQLite backend must not say: SQLite's own
# syntax and functions, each with the portable form (db.h says more).
SQLITE_BACKEND = "src/server/db/sqlite.c"
# The other backend, whose schema is in PostgreSQL's dialect.
POSTGRES_BACKEND = "src/server/db/postgres.c"
SQLITE_ONLY = {
    r"\bINSERT\s+OR\s+(REPLACE|IGNORE)\b": "INSERT ... ON CONFLICT ... DO UPDATE/NOTHING",
    r"\bjson(_\w+)?\s*\(": "JSON work in C (jansson)",
    r"\bPRAGMA\b": "the backend's check/version calls",
    r"\b(unixepoch|last_insert_rowid|changes|total_changes|randomblob|hex|glob)\s*\(":
        "C, RETURNING, or db_changes()",
    r"\bWITHOUT\s+ROWID\b|\bAUTOINCREMENT\b": "a schema step of the backend",
    r"\bIS\s+(NOT\s+)?(\?|'|\d)": "IS NULL, or = with NULL handled",
    r"\b(max|min)\s*\([^()]*,": "CASE, or an aggregate over a UNION",
}
SQLITE_ONLY_RE = [(re.compile(k, re.I), v) for k, v in SQLITE_ONLY.items()]
# A run of literals is SQL when it says one of these (in capitals, as
# Ward writes SQL): messages in English are not looked at.
SQL_TEXT = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|WITH|PRAGMA)\b")
C_STRING = re.compile(r'"((?:\\.|[^"\\\n])*)"')

FUNC_DEF = re.compile(r"^(?!static\b)(?:[a-z_][\w\s\*]*?[\s\*])([a-z_]\w*)\(([^;]*)$")
DECL = re.compile(r"^(?!typedef\b)(?!#)[a-z_][\w\s\*]*?[\s\*]([a-z_]\w*)\(")


def width(line):
    return len(line.expandtabs(8))


def check_file(path, problems):
    rel = path.relative_to(ROOT).as_posix()
    lines = path.read_text().split("\n")
    for n, line in enumerate(lines, 1):
        if re.match(r"\s*typedef\s+struct\b", line):
            problems.append(f"{rel}:{n}: typedef'd struct")
        if line.rstrip() != line:
            problems.append(f"{rel}:{n}: trailing white space")
        if width(line) > 100:
            problems.append(f"{rel}:{n}: line longer than 100 columns")
        if re.match(r"^ {2,}\S", line) and not line.lstrip().startswith("*"):
            problems.append(f"{rel}:{n}: indented with spaces")
    check_banned(rel, "\n".join(lines), problems)
    if rel.startswith("src/server/") and rel not in SERVER_COMMANDS:
        check_no_printing(rel, "\n".join(lines), problems)
    if rel.startswith("src/server/") and rel not in (SQLITE_BACKEND, POSTGRES_BACKEND):
        check_portable_sql(rel, "\n".join(lines), problems)
    if path.suffix == ".c" and rel in PREFIXES:
        for n, line in enumerate(lines, 1):
            m = FUNC_DEF.match(line)
            if m and not m.group(1).startswith(PREFIXES[rel]):
                problems.append(f"{rel}:{n}: non-static function {m.group(1)} lacks "
                                f"the module prefix {PREFIXES[rel][0]}")
    elif path.suffix == ".c" and rel.startswith("src/"):
        problems.append(f"{rel}:1: no module prefix registered in scripts/check_style.py")
    if path.suffix == ".h":
        check_header_comments(rel, lines, problems)


def check_banned(rel, text, problems):
    """Blanks comments and literals (keeping their line breaks), then looks
    for calls of banned functions."""
    code = NOT_CODE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    for m in BANNED_CALL.finditer(code):
        n = code.count("\n", 0, m.start()) + 1
        name = m.group(1)
        problems.append(f"{rel}:{n}: {name}() is banned: use {BANNED[name]}")


# The server's files that are its command line (wardd backup, restore,
# ...), whose output is the terminal.
SERVER_COMMANDS = {"src/server/wardd.c", "src/server/maint.c"}
PRINTING = re.compile(r"(?<![\w.>])(printf|puts|putchar|perror)\s*\(|"
                      r"(?<![\w.>])f(printf|puts|write)\s*\(\s*(stderr|stdout)\b")


def check_no_printing(rel, text, problems):
    """Looks for writes to the terminal in server code (comments and
    literals blanked)."""
    code = NOT_CODE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    for m in PRINTING.finditer(code):
        n = code.count("\n", 0, m.start()) + 1
        problems.append(f"{rel}:{n}: the server prints through log_msg(), not to the "
                        "terminal")


def check_portable_sql(rel, text, problems):
    """Looks in the string literals of a server file (adjacent ones joined,
    since SQL is split over lines) for SQLite's header and dialect."""
    code = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)
    if re.search(r"#include\s*<sqlite3\.h>", code):
        n = code[:code.index("sqlite3.h")].count("\n") + 1
        problems.append(f"{rel}:{n}: SQLite is named only in {SQLITE_BACKEND}")
    runs = []  # (line, text) of each run of adjacent literals
    last_end = None
    for m in C_STRING.finditer(code):
        if last_end is not None and not code[last_end:m.start()].strip():
            runs[-1][1].append(m.group(1))
        else:
            runs.append((code.count("\n", 0, m.start()) + 1, [m.group(1)]))
        last_end = m.end()
    for n, parts in runs:
        sql = "".join(parts)
        if not SQL_TEXT.search(sql):
            continue
        for pattern, instead in SQLITE_ONLY_RE:
            found = pattern.search(sql)
            if found:
                problems.append(f"{rel}:{n}: SQLite's dialect in SQL ({found.group(0).strip()}"
                                f"): use {instead}")


def check_header_comments(rel, lines, problems):
    """Each function declaration needs a comment above it, or must follow
    a declaration that has one (a group such as a getter and its setter)."""
    commented = False
    for n, line in enumerate(lines, 1):
        stripped = line.strip()
        m = DECL.match(line)
        if m:
            if not commented:
                problems.append(f"{rel}:{n}: declaration of {m.group(1)} without a "
                                "comment stating its contract")
            commented = True
        elif stripped.endswith("*/"):
            commented = True
        elif not stripped:
            commented = False
        elif stripped.startswith("#") or stripped in ("};", "{"):
            pass
        elif line.startswith(("\t", " ")):
            pass  # continuation of a declaration or a struct member
        else:
            commented = False


# Where files that could name a path outside the clone live.
SELF_CONTAINED = ("src/", "tests/", "scripts/", "bench/", "CMakeLists.txt", "Makefile")
# The team's folder beside the clone, spelt so that this file does not name
# it itself.
SIBLING = "/".join(("..", "shared"))
# "../x/", ".." "/" joined as os.path.join(HERE, "..", ".."), and CMake's
# source directories followed by "/..".
UP_SLASHES = re.compile(r"(?:\.\./)+")
UP_JOINED = re.compile(r"""(?:["']\.\.["']\s*,\s*)+""")
CMAKE_UP = re.compile(r"\$\{CMAKE(_CURRENT)?_SOURCE_DIR\}((?:/\.\.)+)")


def tracked_files():
    """The files git tracks (every file when this is not a git checkout)."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True,
                             check=True).stdout.decode()
        return [ROOT / f for f in out.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        return [p for p in ROOT.rglob("*") if p.is_file() and ".git" not in p.parts]


def check_stands_alone(path, problems):
    """Relative paths are taken from the file's own folder (tests join them
    to their __file__), CMake's from the source directory they name."""
    rel = path.relative_to(ROOT).as_posix()
    depth = rel.count("/")
    try:
        lines = path.read_text().split("\n")
    except (UnicodeDecodeError, OSError):
        return
    for n, line in enumerate(lines, 1):
        ups = [m.group(0).count("..") for m in UP_SLASHES.finditer(line)]
        ups += [m.group(0).count("..") for m in UP_JOINED.finditer(line)]
        for m in CMAKE_UP.finditer(line):
            ups.append(m.group(2).count("..") + (depth if m.group(1) else 0) - depth)
        if SIBLING in line or any(u > depth for u in ups):
            problems.append(f"{rel}:{n}: refers to a path outside the repository")


def main():
    problems = []
    for sub in ("src", "tests/unit", "tests/fuzz", "bench"):
        for path in sorted((ROOT / sub).rglob("*.[ch]")):
            check_file(path, problems)
    for path in tracked_files():
        rel = path.relative_to(ROOT).as_posix()
        # This file names the patterns it looks for.
        if rel.startswith(SELF_CONTAINED) and path.is_file() and rel != "scripts/check_style.py":
            check_stands_alone(path, problems)
    for p in problems:
        print(p)
    if problems:
        print(f"check-style: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
