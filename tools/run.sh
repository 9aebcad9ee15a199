#!/bin/sh
# tools/run.sh: `make run`: development certificates under var/, then paved serve on
# https://127.0.0.1:8443 with the shipped bundle and var/paved.db, after printing a
# ready-to-paste curl that sends a sample AdmissionReview.
set -eu
cd "$(dirname "$0")/.."
PAVED=${PAVED:-build/paved}
mkdir -p var
if [ ! -f var/certs/tls.crt ]; then
    "$PAVED" certs --out var/certs --host localhost --host 127.0.0.1 --host ::1
fi
cat <<MSG

paved is starting on https://127.0.0.1:8443 (audit store var/paved.db). In another terminal:

  curl -sS --cacert var/certs/ca.crt -H 'Content-Type: application/json' \\
       --data @examples/review-privileged.json https://127.0.0.1:8443/k8s/validate

  curl -sS --cacert var/certs/ca.crt -H 'Content-Type: application/json' \\
       --data @examples/review-golden.json https://127.0.0.1:8443/k8s/validate

  build/paved audit verify --db var/paved.db
  build/paved audit query --db var/paved.db

Stop with Ctrl-C.

MSG
exec "$PAVED" serve --tls-cert var/certs/tls.crt --tls-key var/certs/tls.key --db var/paved.db
