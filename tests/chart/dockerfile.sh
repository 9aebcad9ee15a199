#!/bin/sh
# tests/chart/dockerfile.sh: static checks of the Dockerfile and .dockerignore (no
# container engine needed). Fails when an invariant of the image goes missing:
#   - two stages, the runtime one FROM Debian 12 (debian:12*, debian:bookworm*)
#   - USER is a numeric, non-root uid (and gid), and the last USER of the file
#   - no HEALTHCHECK (Kubernetes probes do that)
#   - ENTRYPOINT is /usr/bin/paved, in exec form
#   - the runtime stage installs no -dev package and no compiler, and copies the
#     install tree from the build stage rather than building
#   - every shared library build/paved needs comes from a runtime package (ldd and
#     dpkg -S; skipped with a message when build/paved, ldd or dpkg are missing)
#   - .dockerignore excludes build/ and var/
# Usage: sh tests/chart/dockerfile.sh [DOCKERFILE [BINARY]]   (from the repository root)
# Ends with "N passed, N failed"; exit status 1 when any check failed.
set -u
DF=${1:-Dockerfile}
BIN=${2:-build/paved}
DI=$(dirname "$DF")/.dockerignore
passed=0
failed=0

pass() {
    passed=$((passed + 1))
    echo "ok   $1"
}
fail() {
    failed=$((failed + 1))
    echo "FAIL $1"
}
check() { # check NAME COMMAND...: passes when the command succeeds
    name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}

if [ ! -f "$DF" ]; then
    fail "$DF exists"
    echo "$passed passed, $failed failed"
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The Dockerfile as logical instructions: comments dropped, continuation lines
# joined, one instruction per line.
awk '
    /^[ \t]*#/ { next }
    {
        line = $0
        if (sub(/\\[ \t]*$/, "", line)) { buf = buf line " "; next }
        buf = buf line
        if (buf ~ /[^ \t]/) print buf
        buf = ""
    }
    END { if (buf ~ /[^ \t]/) print buf }
' "$DF" >"$tmp/all"

# Instructions of the last stage (the runtime image).
awk 'toupper($1) == "FROM" { n++ } { print n "\t" $0 }' "$tmp/all" >"$tmp/numbered"
stages=$(grep -ci '^[ \t]*FROM[ \t]' "$tmp/all")
awk -F '\t' -v last="$stages" '$1 == last { sub(/^[^\t]*\t/, ""); print }' \
    "$tmp/numbered" >"$tmp/runtime"

# ---- Stages ----
check "multi-stage: at least two FROM (found $stages)" [ "$stages" -ge 2 ]
runtime_from=$(grep -i '^[ \t]*FROM[ \t]' "$tmp/runtime" | head -n 1)
check "runtime stage FROM Debian 12 ($runtime_from)" \
    sh -c 'printf "%s\n" "$1" | grep -Eiq "^[ \t]*FROM[ \t]+(--platform=[^ ]+[ \t]+)?(docker\.io/)?(library/)?debian:(12|bookworm)([-.@][^ ]*)?([ \t]|$)"' \
    - "$runtime_from"
check "the build stage is named and the runtime copies from it" \
    sh -c 'grep -Eiq "^[ \t]*COPY[ \t]+.*--from=" "$1"' - "$tmp/runtime"

# ---- User ----
users=$(grep -Ei '^[ \t]*USER[ \t]' "$tmp/all" | awk '{ print $2 }')
last_user=$(printf '%s\n' "$users" | tail -n 1)
check "USER is set" [ -n "$last_user" ]
uid=${last_user%%:*}
gid=""
case "$last_user" in *:*) gid=${last_user#*:} ;; esac
check "USER is a numeric uid ($last_user)" \
    sh -c 'printf "%s\n" "$1" | grep -Eq "^[0-9]+$"' - "$uid"
check "USER is not root (uid $uid)" sh -c '[ -n "$1" ] && [ "$1" -ne 0 ] 2>/dev/null' - "$uid"
check "USER's gid is numeric and not root (${gid:-none})" \
    sh -c '[ -z "$1" ] || { printf "%s\n" "$1" | grep -Eq "^[0-9]+$" && [ "$1" -ne 0 ]; }' - "$gid"
check "USER is in the runtime stage" sh -c 'grep -Eiq "^[ \t]*USER[ \t]" "$1"' - "$tmp/runtime"
check "the data directory /var/lib/paved is created for uid $uid" \
    sh -c 'grep -Eq "(-o|--owner)[ =]?$2([ :]|$).*/var/lib/paved|chown[ \t]+(-R[ \t]+)?$2(:[0-9]+)?[ \t]+/var/lib/paved" "$1"' \
    - "$tmp/runtime" "$uid"
check "VOLUME /var/lib/paved" sh -c 'grep -Eiq "^[ \t]*VOLUME[ \t].*/var/lib/paved" "$1"' - "$tmp/runtime"

# ---- Health check, entry point ----
check "no HEALTHCHECK" sh -c '! grep -Eiq "^[ \t]*HEALTHCHECK([ \t]|$)" "$1"' - "$tmp/all"
entry=$(grep -Ei '^[ \t]*ENTRYPOINT[ \t]' "$tmp/runtime" | tail -n 1)
check "ENTRYPOINT [\"/usr/bin/paved\"] in exec form ($entry)" \
    sh -c 'printf "%s\n" "$1" | grep -Eq "^[ \t]*ENTRYPOINT[ \t]+\[[ \t]*\"/usr/bin/paved\"[ \t]*\]"' \
    - "$entry"
check "CMD runs paved serve" sh -c 'grep -Eiq "^[ \t]*CMD[ \t]+\[[ \t]*\"serve\"" "$1"' - "$tmp/runtime"

# ---- Runtime packages ----
# Every word after "install" in an apt-get/apt install of the runtime stage, options
# and shell operators dropped.
awk '
    {
        n = split($0, w, /[ \t]+/)
        on = 0
        for (i = 1; i <= n; i++) {
            if (w[i] == "&&" || w[i] == ";" || w[i] == "||" || w[i] == "|") { on = 0; continue }
            if (on && w[i] !~ /^-/ && w[i] != "") print w[i]
            if ((w[i - 1] == "apt-get" || w[i - 1] == "apt") && w[i] == "install") on = 1
            if (w[i] == "install" && (w[i - 2] == "apt-get" || w[i - 2] == "apt")) on = 1
        }
    }
' "$tmp/runtime" | sed 's/[;=].*$//' | sort -u >"$tmp/pkgs"
npkgs=$(wc -l <"$tmp/pkgs" | tr -d ' ')
check "the runtime stage installs packages ($npkgs)" [ "$npkgs" -gt 0 ]
bad=$(grep -E -- '-dev$|^(gcc|g\+\+|cpp|clang|llvm|make|pkg-config|pkgconf|binutils|build-essential|libtool|autoconf|automake|cmake)([-0-9.]*)?$|^(gcc|g\+\+|cpp|clang)-[0-9]+$' \
    "$tmp/pkgs" | tr '\n' ' ')
check "no -dev package or compiler in the runtime stage (${bad:-none})" [ -z "$bad" ]
check "the runtime stage does not build (no make, cc or gcc)" \
    sh -c '! grep -Eq "(^|[ \t;&|])(make|cc|gcc|clang)([ \t]|$)" "$1"' - "$tmp/runtime"
check "apt lists are removed in the runtime stage" \
    sh -c 'grep -q "rm -rf /var/lib/apt/lists" "$1"' - "$tmp/runtime"
check "--no-install-recommends in the runtime stage" \
    sh -c 'grep -q -- "--no-install-recommends" "$1"' - "$tmp/runtime"

# Every shared library the binary loads must come from a runtime package, directly
# (the sonames in its own NEEDED entries) or through their dependencies (the rest
# of ldd's list).
if [ ! -x "$BIN" ]; then
    echo "skip libraries: $BIN not built (make build/paved)"
elif ! command -v ldd >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
    echo "skip libraries: ldd or dpkg not available"
else
    # soname<TAB>path of every library ldd resolves; a missing one is a failure.
    ldd "$BIN" 2>/dev/null | awk '$2 == "=>" { print $1 "\t" $3 }' >"$tmp/libs"
    nf=$(awk -F '\t' '$2 == "not" || $2 == ""' "$tmp/libs" | wc -l | tr -d ' ')
    check "ldd resolves every library of $BIN ($nf missing)" [ "$nf" -eq 0 ]
    # The binary's own NEEDED entries when readelf or objdump is there, else all of
    # ldd's list is checked against the dependency closure only.
    if command -v readelf >/dev/null 2>&1; then
        readelf -d "$BIN" | sed -n 's/.*(NEEDED).*\[\(.*\)\].*/\1/p' >"$tmp/needed"
    elif command -v objdump >/dev/null 2>&1; then
        objdump -p "$BIN" | awk '$1 == "NEEDED" { print $2 }' >"$tmp/needed"
    else
        : >"$tmp/needed"
        echo "skip direct libraries: neither readelf nor objdump available"
    fi
    # The packages the runtime stage gets: those it names plus their dependencies
    # (apt-cache resolves them; libc6 is in every Debian image).
    cp "$tmp/pkgs" "$tmp/closure"
    echo libc6 >>"$tmp/closure"
    if command -v apt-cache >/dev/null 2>&1; then
        # shellcheck disable=SC2046
        apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
            --no-breaks --no-replaces --no-enhances $(cat "$tmp/pkgs") 2>/dev/null |
            awk '/^[a-z0-9]/ { print $1 } $1 ~ /Depends:/ { print $2 }' |
            sed 's/^<//; s/>$//; s/:.*$//' >>"$tmp/closure"
        have_closure=1
    else
        echo "skip indirect libraries: apt-cache not available"
        have_closure=0
    fi
    sort -u "$tmp/closure" -o "$tmp/closure"
    while IFS="$(printf '\t')" read -r soname path; do
        [ -n "$path" ] || continue
        # dpkg knows the file by its installed path; with merged /usr the path ldd
        # prints may be the /usr/lib twin of the registered /lib one, so match by the
        # multiarch directory and the name (not */libm.so.6, which libc6-i386 has too).
        libdir=$(basename "$(dirname "$path")")
        owner=$(dpkg -S "*/$libdir/$soname" 2>/dev/null | sed -n '1s/:.*$//p' | sed 's/,.*$//')
        if [ -z "$owner" ]; then
            fail "library $soname ($path): no Debian package owns it"
            continue
        fi
        if grep -qx "$soname" "$tmp/needed"; then
            case "$owner" in
            libc6) pass "library $soname: $owner (base image)" ;;
            *)
                if grep -qx "$owner" "$tmp/pkgs"; then
                    pass "library $soname: $owner is installed by the runtime stage"
                else
                    fail "library $soname: its package $owner is not installed by the runtime stage"
                fi
                ;;
            esac
        elif [ "$have_closure" = 1 ]; then
            if grep -qx "$owner" "$tmp/closure"; then
                pass "library $soname: $owner (a dependency of the runtime packages)"
            else
                fail "library $soname: its package $owner is neither installed nor a dependency"
            fi
        fi
    done <"$tmp/libs"
fi

# ---- .dockerignore ----
if [ -f "$DI" ]; then
    pass ".dockerignore exists"
    for d in build var; do
        check ".dockerignore excludes $d/" \
            sh -c 'grep -Eq "^[ \t]*/?$2/?(\*\*?)?[ \t]*$" "$1"' - "$DI" "$d"
    done
else
    fail ".dockerignore exists"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
