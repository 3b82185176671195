#!/usr/bin/env bash
# Regenerates crates/switchboard/hot-symbols.txt: the functions of the release `switchboard`
# binary that run while it starts and proxies the bench's load, hottest first, as valgrind's
# callgrind records them (every function that ran, not a sample). Release builds place them
# together (see crates/switchboard/build.rs). Run it after changes to the proxy's path or to
# dependencies; it takes a few minutes. Needs valgrind and python3.
#
# `scripts/hot-symbols.sh --check` only tells how much of the list the last release build still
# has: a list gone stale (a dependency or the unified features changed) leaves the hot code
# scattered again, which shows as peak RSS, never as an error.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--check" ]; then
  binary=target/release/switchboard
  list=crates/switchboard/hot-symbols.txt
  listed=$(wc -l < "$list")
  found=$(nm --defined-only "$binary" | awk '{print $3}' | sort -u | comm -12 - <(sort -u "$list") | wc -l)
  echo "$found of $listed listed functions are in $binary"
  # Under fat LTO some listed functions are inlined everywhere in a new build; far fewer means
  # the list no longer matches.
  if [ $((found * 10)) -lt $((listed * 9)) ]; then
    echo "the list is stale: run scripts/hot-symbols.sh" >&2
    exit 1
  fi
  exit 0
fi
work=$(mktemp -d)
trap 'pkill -TERM -f "callgrind-out-file=$work" || true; rm -rf "$work"' EXIT

cargo build --release -p switchboard -p switchboard-bench
# The bench kills the gateway it started with SIGKILL, which leaves callgrind no chance to write
# its profile; so the gateway runs under valgrind in the background of a wrapper, and is sent
# SIGTERM (a graceful shutdown) once the bench is done.
cat > "$work/gateway.sh" <<WRAPPER
#!/bin/sh
/usr/bin/valgrind --tool=callgrind --callgrind-out-file=$work/callgrind.%p.out --demangle=no \
  --dump-instr=no "$PWD/target/release/switchboard" "\$@" &
wait
WRAPPER
chmod +x "$work/gateway.sh"
./target/release/switchboard-bench proxy --binary "$work/gateway.sh" --seconds 3 --idle-sessions 0
pkill -TERM -f "callgrind-out-file=$work" || true
while pgrep -f "callgrind-out-file=$work" > /dev/null; do sleep 1; done

python3 - "$work"/callgrind.*.out > crates/switchboard/hot-symbols.txt <<'PYTHON'
# Callgrind's format names each object and function once, as `ob=(N) name` or `fn=(N) name`
# (also in `cob=`/`cfn=` lines), and by `(N)` after that; cost lines follow `fn=` lines.
import collections, re, sys
cost = collections.Counter()
for path in sys.argv[1:]:
    objects, functions, current = {}, {}, None
    object_name = None
    for line in open(path):
        named = re.match(r"^(c?)(ob|fn)=\((\d+)\)(?: (.*))?$", line)
        if named:
            called, kind, number, name = named.groups()
            table = objects if kind == "ob" else functions
            if name:
                table[number] = name
            if not called and kind == "ob":
                object_name = objects.get(number)
            elif not called:
                current = (object_name, functions.get(number))
            continue
        if current and re.match(r"^[+-]?\d", line):
            fields = line.split()
            if len(fields) > 1 and fields[1].isdigit():
                cost[current] += int(fields[1])
# Functions callgrind could not name show as an address, and its own entries in parentheses:
# neither is a symbol the linker knows.
ours = [
    (f, c)
    for (o, f), c in cost.items()
    if o and o.endswith("/switchboard") and f and not f.startswith(("0x", "("))
]
for function, _ in sorted(ours, key=lambda pair: -pair[1]):
    print(function)
PYTHON
wc -l crates/switchboard/hot-symbols.txt
