#!/usr/bin/env bash
# Cross-builds berth and berth-agent NativeAOT for linux-arm64 into artifacts/arm64/bin (make build-arm64), with
# the amd64 build's settings (the projects' own): SQLite linked statically from Debian's arm64 libsqlite3.a (unpacked
# by scripts/arm64/deps.sh, the version amd64 links), libc bound at link time, symbols stripped.
# The cross toolchain: ILCompiler passes --target=aarch64-linux-gnu to its linker driver, which gcc does not take,
# so clang-14 drives lld against Debian's aarch64 cross libc (libc6-dev-arm64-cross, gcc-aarch64-linux-gnu's
# crt files), and the aarch64 objcopy strips. clang-14 by its full path: Debian's clang-14 installs no `clang`
# on PATH, so the amd64 build keeps linking with gcc as before.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
out=artifacts/arm64/bin
cross=(-r linux-arm64 -p:CppCompilerAndLinker=/usr/lib/llvm-14/bin/clang -p:LinkerFlavor=lld
       -p:ObjCopyName=aarch64-linux-gnu-objcopy -p:BerthSqliteArchive="$PWD/artifacts/arm64/debian/usr/lib/aarch64-linux-gnu/libsqlite3.a")
[ -f artifacts/arm64/debian/usr/lib/aarch64-linux-gnu/libsqlite3.a ] || { echo "build-arm64: no arm64 libsqlite3.a: run make deps-arm64" >&2; exit 1; }
for project in src/CniIpam/CniIpam.csproj src/HostAgent/HostAgent.csproj; do
  ${DOTNET:-dotnet} publish "$project" -c Release -o "$out" --nologo -v quiet -p:DebugType=none "${cross[@]}"
done
rm -f "$out"/*.dbg "$out"/*.pdb
for bin in berth berth-agent; do
  file -b "$out/$bin" | grep -q 'ARM aarch64' || { echo "build-arm64: $out/$bin is not an aarch64 executable: $(file -b "$out/$bin")" >&2; exit 1; }
done
ls -l "$out/berth" "$out/berth-agent"
