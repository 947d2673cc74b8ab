#!/bin/sh
# Usage: CC ... -Wl,-t,-t | sh tools/link_deps.sh TARGET OBJECT...
# Reads the linker's trace (GNU ld -t -t prints each archive member it takes
# as "(archive)member.o") and prints a make rule: TARGET depends on those of
# OBJECT... (the objects the archives are made of) that it took, matched by
# file name, plus an empty rule for each so a deleted source does not stop
# make (as gcc -MP does for headers). The Makefile links each unit-test
# binary against whole archives but, through this, relinks it only when an
# object it uses changed.
target=$1
shift
members=$(sed -n 's/^([^)]*)//p' | sort -u)
deps=""
for o in "$@"; do
    if printf '%s\n' "$members" | grep -qxF "${o##*/}"; then
        deps="$deps $o"
    fi
done
printf '%s:%s\n' "$target" "$deps"
for d in $deps; do
    printf '%s:\n' "$d"
done
