#!/bin/sh
# `make run`: builds a small demo tree and scans it, so a new user sees Ward
# find something with nothing configured.
set -eu
ward=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
mkdir -p "$2"
demo=$(cd "$2" && pwd)

rm -rf "$demo"
mkdir -p "$demo/docs" "$demo/downloads"
printf 'Quarterly report\nNothing to see here.\n' >"$demo/docs/report.txt"
printf '#!/bin/sh\necho hello\n' >"$demo/docs/hello.sh"
# The EICAR test file: harmless, detected by every anti-virus product.
printf '%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' \
	>"$demo/downloads/eicar.com"
python3 - "$demo/downloads" <<'PY'
import sys, zipfile
d = sys.argv[1]
with zipfile.ZipFile(d + "/invoice.zip", "w", zipfile.ZIP_DEFLATED) as z:
    z.write(d + "/eicar.com", "invoice.pdf.com")
    z.writestr("readme.txt", "nothing here\n")
PY

echo "== ward scan -r $demo"
status=0
"$ward" scan -r --no-cache "$demo" || status=$?
cat <<MSG

== exit status $status (0 clean, 1 found, 2 error)
Try next:
  $ward scan --help
  $ward scan -r -i --json $demo
  $ward scan -r -d /var/lib/clamav /home     (with ClamAV databases from freshclam)
MSG
[ "$status" -eq 1 ]
