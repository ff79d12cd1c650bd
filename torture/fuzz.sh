#!/usr/bin/env bash
# Fuzzing of berth's input (configs and CNI_* environments, generated and mutated) and of damaged stores.
#   torture/fuzz.sh [--seconds N] [--seed S] [--cases N]      (as root, after make build)
# The seed is printed first and with every violation; the same seed replays the same cases.
# Last line: SUMMARY mode=fuzz cycles=N acked=N cuts=0 violations=N; exit 1 on any violation.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x artifacts/bin/berth ] || { echo "fuzz.sh: artifacts/bin/berth is missing: run make build first" >&2; exit 2; }
dotnet build tests/Berth.Torture/Berth.Torture.csproj -c Release --nologo -v quiet >&2
exec dotnet artifacts/build/bin/Berth.Torture/release/Berth.Torture.dll fuzz "$@"
