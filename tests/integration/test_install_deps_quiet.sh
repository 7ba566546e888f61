#!/bin/sh
# scripts/install-deps on a machine that misses packages (issue 9, defect 8): one line per
# step on the terminal, apt's pages in the log file it names; on failure the log's last
# lines. apt-get and dpkg-query are stand-ins on PATH, so nothing is installed.
set -u
top=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
dir=$(mktemp -d /tmp/pv-install-deps-XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/bin"
cat >"$dir/bin/dpkg-query" <<'STUB'
#!/bin/sh
# every package but one is installed
case "$*" in *qemu-system-x86*) echo "unknown ok not-installed" ;; *) echo "install ok installed" ;; esac
STUB
cat >"$dir/bin/apt-get" <<'STUB'
#!/bin/sh
i=0
while [ $i -lt 200 ]; do echo "Get:$i http://deb.example/debian bookworm/main pkg-$i [1 kB]"; i=$((i + 1)); done
[ -z "${FAIL_APT:-}" ]
STUB
printf '#!/bin/sh\nexec "$@"\n' >"$dir/bin/sudo" # when not run as root
chmod +x "$dir/bin/dpkg-query" "$dir/bin/apt-get" "$dir/bin/sudo"
status=0
check() { # description, condition...
    what=$1
    shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; status=1; fi
}
PATH="$dir/bin:$PATH" "$top/scripts/install-deps" --log "$dir/deps.log" >"$dir/out" 2>&1
rc=$?
check "install-deps succeeds" test "$rc" -eq 0
check "at most 5 lines on the terminal ($(wc -l <"$dir/out"))" test "$(wc -l <"$dir/out")" -le 5
check "the terminal names the log" grep -q "log: $dir/deps.log" "$dir/out"
check "the terminal names what is installed" grep -q "installing qemu-system-x86" "$dir/out"
check "apt's pages are in the log" test "$(grep -c '^Get:' "$dir/deps.log")" -eq 400
check "and not on the terminal" test "$(grep -c '^Get:' "$dir/out")" -eq 0
FAIL_APT=1 PATH="$dir/bin:$PATH" "$top/scripts/install-deps" --log "$dir/fail.log" >"$dir/out" 2>&1
rc=$?
check "a failing apt-get fails install-deps" test "$rc" -ne 0
check "the failure says what failed and shows the log's last lines" \
    grep -q "apt-get update failed; last lines of $dir/fail.log" "$dir/out"
check "only the last lines ($(wc -l <"$dir/out"))" test "$(wc -l <"$dir/out")" -le 25
exit $status
