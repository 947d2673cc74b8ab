#!/bin/sh
# Runs each unit-test binary (tests/unit/check.h: TAP lines, then
# "# N passed, N failed; N checks") and adds them up. Prints failures only,
# then "unit: N checks in N tests" and, last, "unit: N passed, N failed"
# (tests). A binary that dies (sanitizer report, crash) is one more failed
# test, so a crash is never read as a pass.
#   CHECK_FILTER=a,b  only the tests whose "file:test" name contains a or b
#   UNIT_TAP=FILE     also write every test as one TAP stream to FILE
passed=0
failed=0
checks=0
tap=$(mktemp)
trap 'rm -f "$tap"' EXIT
for t in "$@"; do
    name=${t##*/}
    out=$("$t" 2>&1)
    rc=$?
    # failures and anything the test printed besides its TAP and counts
    printf '%s\n' "$out" | grep -vE '^(ok [0-9]+ - |1\.\.[0-9]+$|# [0-9]+ passed, )' || true
    printf '%s\n' "$out" | sed -nE "s/^(not )?ok [0-9]+ - (.*)$/\\1ok - $name: \\2/p" >>"$tap"
    line=$(printf '%s\n' "$out" | grep -E '^# [0-9]+ passed, [0-9]+ failed; [0-9]+ checks$' | tail -1)
    p=0
    f=0
    c=0
    if [ -n "$line" ]; then
        p=$(echo "$line" | awk '{print $2}')
        f=$(echo "$line" | awk '{print $4}')
        c=$(echo "$line" | awk '{print $6}')
    fi
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $t exited $rc without counting a failure"
        echo "not ok - $name: exited $rc" >>"$tap"
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    checks=$((checks + c))
done
if [ -n "${UNIT_TAP:-}" ]; then
    {
        echo "TAP version 13"
        awk '{ sub(/^ok - /, "ok " NR " - "); sub(/^not ok - /, "not ok " NR " - "); print }' "$tap"
        echo "1..$(wc -l <"$tap")"
    } >"$UNIT_TAP"
fi
echo "unit: $checks checks in $((passed + failed)) tests"
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
