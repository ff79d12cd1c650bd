#!/usr/bin/env bash
# Fuzzing of what berth-agent reads from the world: guarded host-local directories, agent.json, a CRI runtime's
# answers (a fake runtime on a socket), store rows berth did not write.
#   torture/agentfuzz.sh [--seconds N] [--seed S] [--cases N]      (as root, after make build)
# The seed is printed first and with every violation; the same seed replays the same cases.
# Last line: SUMMARY mode=agentfuzz cycles=N acked=N cuts=0 violations=N; exit 1 on any violation.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x artifacts/bin/berth-agent ] || { echo "agentfuzz.sh: artifacts/bin/berth-agent is missing: run make build first" >&2; exit 2; }
dotnet build tests/Berth.Torture/Berth.Torture.csproj -c Release --nologo -v quiet >&2
exec dotnet artifacts/build/bin/Berth.Torture/release/Berth.Torture.dll agentfuzz "$@"
