#!/bin/sh
# examples/demo.sh PAVED: `make run` for now: shows the CI gate deciding the sample
# manifests with the shipped golden path. (`paved serve` replaces this with #3.)
set -u
PAVED=${1:-build/paved}
cd "$(dirname "$0")/.." || exit 2
for f in examples/golden-deployment.yaml examples/configmap.yaml examples/privileged-pod.yaml \
         examples/broken.yaml; do
    echo "\$ paved check $f"
    "$PAVED" check "$f"
    echo "(exit status $?)"
    echo
done
echo "Try: $PAVED check --explain examples/golden-deployment.yaml"
echo "     $PAVED check --format junit examples/"
echo "     $PAVED test policies/tests"
