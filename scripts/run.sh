#!/bin/sh
# `make run`: the scan demo, then wardd on its defaults (data kept under
# the build directory) with one local agent enrolled to it, in the
# foreground until Ctrl-C.
set -eu
# Absolute paths: what is printed below must work from any folder.
mkdir -p "$2"
bin=$(cd "$1" && pwd)
run=$(cd "$2" && pwd)
port=${WARD_PORT:-8443}

sh "$(dirname "$0")/demo.sh" "$bin/ward" "$run/demo"

# Signatures: freshclam's databases when this machine has them, else a
# small source of custom hash signatures (the EICAR test file and
# clamav-testfiles' clam.exe), so that the agent installs a real pattern.
source=/var/lib/clamav
demo_source=false
if ! ls "$source"/*.cvd "$source"/*.cld >/dev/null 2>&1; then
	demo_source=true
	source=$run/signatures
	mkdir -p "$source"
	printf '%s\n' '44d88612fea8a8f36de82e1278abb02f:68:Demo.Eicar' \
		'aa15bcf478d165efd2065190eb473bcb:544:Demo.ClamExe' >"$source/demo.hdb"
fi
conf=$run/wardd.ini
cat >"$conf" <<INI
# make run: wardd's defaults, except where its data lives, the port and
# (without freshclam's databases) the signature source.
[server]
listen = *:$port
hostname = localhost
data_dir = $run/server
[updates]
source_dir = $source
INI
# The scan workers run as nobody here: an installed agent has a user of
# its own for them (packaging/ward-agent.sysusers), which a build tree
# does not make.
printf '[scan]\nworker_user = nobody\nscratch_dir = %s/scan\n[agent]\nstate_dir = %s/agent\n' \
	"$run" "$run" >"$run/agent.ini"

pids=""
stop() {
	trap - EXIT INT TERM
	[ -n "$pids" ] && kill $pids 2>/dev/null
	wait 2>/dev/null
	echo "== stopped"
}
trap stop EXIT INT TERM

"$bin/wardd" --config "$conf" >"$run/wardd.log" 2>&1 &
pids=$!
tries=0
until curl -fs --cacert "$run/server/ca.crt" "https://localhost:$port/api/v1/health" \
	>/dev/null 2>&1; do
	tries=$((tries + 1))
	if [ $tries -gt 100 ] || ! kill -0 $pids 2>/dev/null; then
		echo "wardd did not start:" >&2
		cat "$run/wardd.log" >&2
		exit 1
	fi
	sleep 0.1
done
if [ ! -f "$run/agent/credential.json" ]; then
	"$bin/ward-agent" --config "$run/agent.ini" enroll --bundle "$run/server/enroll.bundle"
fi
"$bin/ward-agent" --config "$run/agent.ini" run >"$run/agent.log" 2>&1 &
pids="$pids $!"
sleep 1

ca=$run/server/ca.crt
if $demo_source; then
	signatures="signatures from $source: a DEMO source of two signatures
                  (the EICAR test file and clamav-testfiles' clam.exe), which
                  protects against nothing real. For ClamAV's signatures
                  (about 8 million), install freshclam, which downloads and
                  keeps them current in /var/lib/clamav, and run make run again:
                    sudo apt-get install clamav-freshclam
                  or set source_dir in [updates] of $conf to a folder
                  of .cvd/.cld files (see docs/configuration.md)"
else
	signatures="signatures from $source (ClamAV's, kept current by freshclam)"
fi
cat <<MSG

== wardd is serving https://localhost:$port (IPv4 and IPv6), one agent enrolled
   web console:   https://localhost:$port/console/
                  (the certificate is from the server's own CA, $run/server/ca.crt:
                   import it into the browser, or accept the warning)
   administrator: admin, password in $run/server/initial-admin-password
   logs: $run/wardd.log, $run/agent.log
   $signatures;
   built into components the agent installed

Try, in another terminal:
  export PATH=$bin:\$PATH WARD_PASSWORD=\$(cat $run/server/initial-admin-password)
  ward login --server https://localhost:$port --ca $ca --user admin
  ward tree
  ward settings set --scope root scan_method smart
  ward-agent --config $run/agent.ini status   (the agent has switched to smart scan
                                                and installed the smart agent pattern)
  ward-agent --config $run/agent.ini scan $run/demo
  ward update status
  ward --help

Ctrl-C stops both.
MSG
wait
