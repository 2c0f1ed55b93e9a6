#!/bin/sh
# Ward's style checker; see scripts/check_style.py for the rules.
exec python3 "$(dirname "$0")/check_style.py" "$@"
