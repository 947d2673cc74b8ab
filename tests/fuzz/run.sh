#!/bin/sh
# Builds and runs every libFuzzer target tests/fuzz/fuzz_<name>.c for SECONDS
# seconds each (or only the names given), and fails if any of them crashes.
#
# Each target declares in comment lines near its top:
#   fuzz-sources: <project .c files to link; shell globs allowed>
#   fuzz-libs:    <pkg-config package names>            (optional)
#   fuzz-fixtures: <dirs of seed inputs>   (default tests/fixtures/<name>)
# Seeds: every file in the fixture dirs (README* skipped); each line of a *.hex
# file there ("<lsn> <hex>", '#' comments) becomes one binary seed. If
# tests/fuzz/seed_<name>.c exists it is built (same header lines) and run with
# the seed dir as argument to add synthetic seeds.
#
# Output: build/fuzz/ (binaries, seeds, logs, crash artifacts), and the growing
# corpus in tests/fuzz/corpus-<name>/ (git-ignored). Crash inputs are printed;
# copy each into the target's fixtures as a regression case.
# Usage: tests/fuzz/run.sh SECONDS [NAME...]     e.g. tests/fuzz/run.sh 300 pgout
set -eu

usage() {
    echo "usage: $0 SECONDS [NAME...]" >&2
    exit 2
}
[ $# -ge 1 ] || usage
secs=$1
shift
case $secs in '' | *[!0-9]*) usage ;; esac

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
CC=${FUZZ_CC:-clang}
out=build/fuzz
mkdir -p "$out"
command -v "$CC" >/dev/null 2>&1 || {
    echo "fuzz: $CC not found (set FUZZ_CC)" >&2
    exit 1
}

CFLAGS_FUZZ="-std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -g -O1 -fno-omit-frame-pointer \
-I. -Icommon -Itests -fno-sanitize-recover=all"

# header_field FILE FIELD: the text after "FIELD:" on its first line, minus "*/".
header_field() {
    sed -n "1,30{s#^.*$2:[[:space:]]*##p;}" "$1" | sed 's#\*/.*$##' | head -n 1
}

# expand_sources LIST: shell-glob expansion of the project-relative source list.
expand_sources() {
    for pat in $1; do
        for f in $pat; do
            [ -f "$f" ] || {
                echo "fuzz: source $f not found" >&2
                return 1
            }
            printf '%s ' "$f"
        done
    done
}

# pkg_flags LIBS: cflags and libs for the pkg-config names (may be empty).
pkg_flags() {
    [ -n "$1" ] || return 0
    pkg-config --cflags --libs $1
}

# explode_hex FILE OUTPREFIX: each "<lsn> <hex>" line of FILE ('#' lines
# skipped) to OUTPREFIX-<n>.bin. One perl (Debian's perl-base) per file: the
# captured fixtures hold thousands of messages.
explode_hex() {
    perl -e '
        my ($in, $out) = @ARGV;
        open(my $f, "<", $in) or die "$in: $!\n";
        my $n = 0;
        while (<$f>) {
            next if /^#/;
            my (undef, $hex) = split;
            next unless defined $hex && length $hex;
            $n++;
            open(my $o, ">", "$out-$n.bin") or die "$out-$n.bin: $!\n";
            binmode $o;
            print $o pack("H*", $hex);
            close $o;
        }' "$1" "$2"
}

# seed_from_dir DIR SEEDDIR: copy files, explode *.hex fixtures line by line.
seed_from_dir() {
    for f in "$1"/*; do
        [ -f "$f" ] || continue
        base=$(basename "$f")
        case $base in
        README* | *.sh) ;;
        *.hex) explode_hex "$f" "$2/${base%.hex}" ;;
        *) cp "$f" "$2/$base" ;;
        esac
    done
    # Recurse one level (e.g. regression cases in a subdirectory).
    for d in "$1"/*/; do
        if [ -d "$d" ]; then
            seed_from_dir "${d%/}" "$2"
        fi
    done
    return 0
}

if [ $# -gt 0 ]; then
    targets=
    for n in "$@"; do targets="$targets tests/fuzz/fuzz_$n.c"; done
else
    targets=$(ls tests/fuzz/fuzz_*.c 2>/dev/null || true)
fi
[ -n "$targets" ] || {
    echo "fuzz: no targets" >&2
    exit 1
}

failed=0
summary=
for src in $targets; do
    [ -f "$src" ] || {
        echo "fuzz: $src not found" >&2
        failed=1
        continue
    }
    name=$(basename "$src" .c)
    name=${name#fuzz_}
    sources=$(expand_sources "$(header_field "$src" fuzz-sources)") || {
        failed=1
        continue
    }
    pkg=$(pkg_flags "$(header_field "$src" fuzz-libs)") || {
        echo "fuzz: pkg-config failed for $name" >&2
        failed=1
        continue
    }
    fixtures=$(header_field "$src" fuzz-fixtures)
    [ -n "$fixtures" ] || fixtures=tests/fixtures/$name

    bin=$out/fuzz_$name
    echo "== fuzz_$name: building ($sources)"
    # shellcheck disable=SC2086
    $CC $CFLAGS_FUZZ -fsanitize=fuzzer,address,undefined "$src" $sources $pkg -o "$bin"
    # The WITH_MAIN replay binary, for reproducing artifacts without libFuzzer.
    # shellcheck disable=SC2086
    $CC $CFLAGS_FUZZ -DWITH_MAIN -fsanitize=address,undefined "$src" $sources $pkg \
        -o "$bin.replay"

    seeds=$out/seeds-$name
    corpus=tests/fuzz/corpus-$name
    artifacts=$out/artifacts-$name/
    rm -rf "$seeds"
    mkdir -p "$seeds" "$corpus" "$artifacts"
    for d in $fixtures; do
        if [ -d "$d" ]; then
            seed_from_dir "$d" "$seeds"
        fi
    done
    if [ -f "tests/fuzz/seed_$name.c" ]; then
        gen=tests/fuzz/seed_$name.c
        gsrc=$(expand_sources "$(header_field "$gen" fuzz-sources)")
        gpkg=$(pkg_flags "$(header_field "$gen" fuzz-libs)")
        # shellcheck disable=SC2086
        $CC $CFLAGS_FUZZ -fsanitize=address,undefined "$gen" $gsrc $gpkg -o "$out/seed_$name"
        "$out/seed_$name" "$seeds"
    fi
    nseeds=$(find "$seeds" -type f | wc -l)
    echo "== fuzz_$name: $nseeds seeds, running ${secs}s"

    log=$out/fuzz_$name.log
    set +e
    "$bin" -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$artifacts" "$corpus" "$seeds" >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units:[[:space:]]*//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    cov=$(printf '%s\n' "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(printf '%s\n' "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(printf '%s\n' "$last" | sed -n 's/.*corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p')
    line="fuzz_$name: rc=$rc execs=${execs:-?} cov=${cov:-?} ft=${ft:-?} corpus=${corp:-?}"
    if [ "$rc" -ne 0 ]; then
        failed=1
        line="$line CRASH"
        grep -E 'ERROR|SUMMARY|Test unit written|runtime error' "$log" | head -n 20 >&2 || true
        echo "fuzz_$name: crash inputs in $artifacts; reproduce: $bin.replay <file>" >&2
    fi
    echo "$line"
    summary="$summary$line
"
done

printf '\n%s' "$summary"
exit "$failed"
