#!/bin/sh
# tools/deps.sh: installs the Debian packages paved needs when any is missing.
# Usage: tools/deps.sh build|test|dev|bench   (apt-get; sudo when not root)
set -eu
build="gcc make pkg-config liblua5.4-dev libcjson-dev libyaml-dev libpcre2-dev libmimalloc-dev libsqlite3-dev libssl-dev libmicrohttpd-dev libcurl4-openssl-dev libgnutls28-dev"
test_pkgs="valgrind sqlite3 curl openssl python3 python3-jsonschema python3-yaml python3-jwt python3-cryptography"
dev_pkgs="clang-format cppcheck"
bench_pkgs="wrk nginx curl"
case "${1:-build}" in
build) want="$build" ;;
test) want="$build $test_pkgs" ;;
dev) want="$build $test_pkgs $dev_pkgs" ;;
bench) want="$build $test_pkgs $bench_pkgs" ;;
*) echo "usage: $0 build|test|dev|bench" >&2; exit 2 ;;
esac
missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "paved: installing missing Debian packages:$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
