#!/bin/sh
# tests/chart/run.sh [PAVED_BINARY]: checks charts/paved without Helm (schema, bad and
# good values, template invariants, paved.yaml keys against server/config.c) and, given
# a paved binary (default build/paved), that paved loads the rendered paved.yaml.
# Needs Debian's python3-jsonschema and python3-yaml. Ends with "N passed, N failed".
set -u
here=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
if [ ! -x "$PY" ]; then
    echo "FAIL - $PY is missing (apt-get install python3 python3-jsonschema python3-yaml)"
    echo "0 passed, 1 failed"
    exit 1
fi
if ! "$PY" -c 'import jsonschema, yaml' 2>/dev/null; then
    echo "FAIL - $PY cannot import jsonschema and yaml (apt-get install python3-jsonschema python3-yaml)"
    echo "0 passed, 1 failed"
    exit 1
fi
exec "$PY" "$here/check.py" "$@"
