#!/bin/sh
# Run tap-helpscout 1.2.2 against the Help Scout simulator; see benches/peer/README.md.
# Examples:
#   benches/peer/run_tap.sh --bin target/debug/helpscout-etl --conversations 200 --seed 1
#   benches/peer/run_tap.sh --sim http://127.0.0.1:8080
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec "${PYTHON:-python3}" "$here/run_tap.py" "$@"
