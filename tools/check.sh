#!/bin/sh
# tools/check.sh: `make check`: formatting, banned functions, include layering and
# cppcheck. Exits 1 on any finding.
set -u
cd "$(dirname "$0")/.." || exit 2
status=0
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find server lua tests tools -name '*.[ch]')

echo "check: clang-format"
if ! clang-format --dry-run -Werror $files; then
    echo "check: run clang-format -i on the files above"
    status=1
fi

echo "check: banned functions"
if grep -nE '(^|[^_[:alnum:]])(strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol|alloca)[[:space:]]*\(' $files; then
    echo "check: use snprintf, memcpy with a known length, strtol with an end pointer"
    status=1
fi
echo "check: include layering (server/base <- lua, audit <- webhooks <- server)"
for f in $files; do
    dir=$(dirname "$f")
    for inc in $(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f"); do
        case "$dir" in
        server/base)
            [ -f "server/base/$inc" ] || { echo "$f: includes \"$inc\" from above server/base"; status=1; } ;;
        lua)
            [ -f "lua/$inc" ] || [ -f "server/base/$inc" ] || { echo "$f: includes \"$inc\" from above lua/"; status=1; } ;;
        audit)
            [ -f "audit/$inc" ] || [ -f "server/base/$inc" ] || { echo "$f: includes \"$inc\" from above audit/"; status=1; } ;;
        webhooks)
            [ -f "webhooks/$inc" ] || [ -f "audit/$inc" ] || [ -f "lua/$inc" ] || [ -f "server/base/$inc" ] ||
                { echo "$f: includes \"$inc\" from above webhooks/"; status=1; } ;;
        esac
    done
done

echo "check: cppcheck"
if ! cppcheck -q --error-exitcode=1 --std=c11 --enable=warning,portability,performance \
    --inline-suppr --suppress=missingIncludeSystem \
    -Iserver/base -Ilua -Iaudit -Iwebhooks -Iserver -D_GNU_SOURCE server lua audit webhooks 2>&1; then
    status=1
fi

[ $status -eq 0 ] && echo "check: ok"
exit $status
