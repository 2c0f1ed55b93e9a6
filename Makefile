# Ward: the two commands a new user needs are `make run` and `make test`.
# Both install what is missing (scripts/deps.sh), then build.

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
# A test job more than cores: the integration suites spend half their time
# waiting on daemons (measured: half the CPU idle at -j 2 on 2 cores).
TEST_JOBS  ?= $(shell expr $(JOBS) + 1)
CMAKE_FLAGS ?=

.PHONY: all deps build install deb run test test-unit test-asan check-fresh fuzz bench bench-scan bench-server bench-scale bench-updates bench-upgrades bench-smart bench-console bench-attack bench-realtime bench-backup bench-clamd style clean

all: build

deps:
	@sh scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# The programs, console, man pages, systemd units, sysusers.d and
# tmpfiles.d files and example configurations under PREFIX (its etc/ward,
# or /etc/ward when PREFIX is /usr), staged under DESTDIR when given.
PREFIX ?= /usr/local
DESTDIR ?=
install: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) \
		$(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@DESTDIR=$(DESTDIR) cmake --install $(BUILD)

# Debian packages (ward-server, ward-agent, ward-sps, ward-cli), built by
# dpkg-buildpackage and debhelper from a copy of the tree in $(DEB_BUILD).
DEB_BUILD ?= build-deb
deb: deps
	@sh scripts/deb.sh $(DEB_BUILD)

# Scans a demo tree with the built-in EICAR test signature, then runs wardd
# with one local agent enrolled to it until Ctrl-C.
run: build
	@sh scripts/run.sh $(BUILD)/bin $(BUILD)/run

# Every test: the style check, the release build's full suite, then the
# unit tests and fuzz targets again under AddressSanitizer and UBSan (clang).
test: build style
	@cd $(BUILD) && ctest --output-on-failure -j $(TEST_JOBS)
	@$(MAKE) --no-print-directory test-asan

test-asan: deps
	@CC=clang cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DWARD_SANITIZE=ON \
		-DWARD_FUZZ=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j $(TEST_JOBS) -L sanitize

# `make test` in a clean clone of HEAD on a fresh Debian 12 chroot (root;
# about 35 min): what a new user's machine does with the committed tree.
# WARD_FRESH_DIR, WARD_FRESH_KEEP and WARD_CHROOT_CACHE: see the script.
check-fresh:
	@JOBS=$(JOBS) sh scripts/check-fresh.sh

# Every libFuzzer target in turn for FUZZ_TIME seconds in the sanitizer
# build, going on from the inputs earlier runs found (kept in
# $(ASAN_BUILD)/fuzz-work); prints the edges each reached, and fails
# when one crashes (its artifact is kept there too).
FUZZ_TIME ?= 60
fuzz: deps
	@CC=clang cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DWARD_SANITIZE=ON \
		-DWARD_FUZZ=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@FUZZ_WORK=$(ASAN_BUILD)/fuzz-work UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		sh scripts/fuzz.sh $(ASAN_BUILD)/bin tests/fuzz/corpus $(FUZZ_TIME) $(FUZZ_TARGETS)

# The benchmarks: ward scan against clamscan and clamd (about 25 min),
# wardd holding 10,000 simulated agents (about 5 min), and signature
# updates: delta sizes and 1,000 agents updating under the download cap.
bench: bench-scan bench-server bench-updates bench-upgrades bench-smart bench-console

bench-scan: build
	@python3 bench/run.py --ward $(BUILD)/bin/ward $(BENCH_ARGS)

bench-server: build
	@python3 bench/server.py --bin $(BUILD)/bin $(BENCH_SERVER_ARGS)

# Backups, restores and upgrades of a server holding 10,000 simulated
# agents and 1,000,000 events (about 10 min; builds the wardd of schema 9).
bench-backup: build
	@python3 bench/backup.py --bin $(BUILD)/bin $(BENCH_ARGS)

# Several wardd (4) on one PostgreSQL server of its own, 19,000 simulated
# agents each, one load generator per wardd; a wardd killed outright on
# the way (about 20 min; see bench/scale.py).
bench-scale: build
	@python3 bench/scale.py --bin $(BUILD)/bin $(BENCH_SCALE_ARGS)

bench-updates: build
	@python3 bench/updates.py --bin $(BUILD)/bin $(BENCH_UPDATES_ARGS)

# 1,000 simulated agents upgraded to a new agent version under a cap of 50
# downloads, then rolling a broken one back; 3 rounds of each (bench/upgrades.py).
bench-upgrades: build
	@python3 bench/upgrades.py --bin $(BUILD)/bin $(BENCH_UPGRADES_ARGS)

bench-smart: build
	@python3 bench/smart.py --bin $(BUILD)/bin $(BENCH_SMART_ARGS)

# The agent's clamd service beside Debian's clamd on the scan benchmark's
# database: round trips, a pipelined session, clamdscan --multiscan of the
# corpus twice, memory (root; about 15 min; not part of `make bench`).
bench-clamd: build
	@python3 bench/clamd.py --bin $(BUILD)/bin $(BENCH_CLAMD_ARGS)

bench-console: build
	@python3 bench/console.py --bin $(BUILD)/bin $(BENCH_CONSOLE_ARGS)

# wardd under 2,000 slow or silent connections and 100 non-reading smart
# protection lookups, with 200 agents connected (about 3 min).
bench-attack: build
	@python3 bench/attack.py --bin $(BUILD)/bin $(BENCH_ATTACK_ARGS)

# Real-time (on-access) scanning: open latency, verdicts per second and a
# file-heavy workload with no scanner, clamonacc + clamd, the floor (libclamav
# in process, bench/realtime/floorbench.c) and ward-agent, on
# a filesystem the benchmark mounts itself (root; about 25 min). Not part of
# `make bench`. BENCH_REALTIME_ARGS="--modes off,clamonacc" leaves Ward out.
bench-realtime:
	@[ "$$(id -u)" -eq 0 ] || { echo "bench-realtime: needs root (it mounts a filesystem" \
		"of its own and runs fanotify scanners on it): sudo make bench-realtime" >&2; exit 1; }
	@$(MAKE) --no-print-directory build
	@python3 bench/realtime/run.py --bin $(BUILD)/bin $(BENCH_REALTIME_ARGS)

style:
	@sh scripts/check-style.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
