#!/usr/bin/env bash
# Kill storm: thousands of berth ADD/DEL processes against real network namespaces, SIGKILLed at random moments,
# with berth-agent reconcile running concurrently; invariants checked between rounds and at the end.
#   torture/killstorm.sh [--seconds N] [--seed S] [--workers W]      (as root, after make build)
# Last line: SUMMARY mode=killstorm cycles=N acked=N cuts=N violations=N; exit 1 on any violation.
set -euo pipefail
cd "$(dirname "$0")/.."
for f in artifacts/bin/berth artifacts/bin/berth-agent; do
  [ -x "$f" ] || { echo "killstorm.sh: $f is missing: run make build first" >&2; exit 2; }
done
dotnet build tests/Berth.Torture/Berth.Torture.csproj -c Release --nologo -v quiet >&2
exec dotnet artifacts/build/bin/Berth.Torture/release/Berth.Torture.dll killstorm "$@"
