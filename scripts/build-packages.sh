#!/usr/bin/env bash
# Lays the published executables out as a .deb (dpkg-deb) and an .rpm (rpmbuild) in artifacts/packages/.
# Both carry the version from the file VERSION. Run by `make packages` after `make build`; with PACKAGE_ARCH=arm64, by
# `make packages-arm64` after `make build-arm64`: the same files around the arm64 executables, in artifacts/arm64/packages.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
version=$(tr -d '[:space:]' < VERSION)
case "${PACKAGE_ARCH:-amd64}" in
  amd64) bin=artifacts/bin out=artifacts/packages deb_arch=amd64 rpm_arch=x86_64 ;;
  arm64) bin=artifacts/arm64/bin out=artifacts/arm64/packages deb_arch=arm64 rpm_arch=aarch64 ;;
  *) echo "build-packages: PACKAGE_ARCH is amd64 or arm64, not '$PACKAGE_ARCH'" >&2; exit 2 ;;
esac
rm -rf "$out" && mkdir -p "$out"

# .deb
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -D -m 0755 "$bin/berth" "$stage/opt/cni/bin/berth"
install -D -m 0755 "$bin/berth-agent" "$stage/usr/bin/berth-agent"
install -D -m 0644 packaging/systemd/berth-recover.service "$stage/lib/systemd/system/berth-recover.service"
install -D -m 0644 packaging/systemd/berth-agent.service "$stage/lib/systemd/system/berth-agent.service"
install -D -m 0644 packaging/agent.json "$stage/etc/berth/agent.json"
install -d -m 0700 "$stage/var/lib/berth"
install -d -m 0755 "$stage/usr/share/man/man8" "$stage/usr/share/doc/berth" "$stage/usr/share/lintian/overrides"
gzip -9n < packaging/berth-agent.8 > "$stage/usr/share/man/man8/berth-agent.8.gz"
{
  echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
  echo "Upstream-Name: berth"
  echo
  echo "Files: *"
  echo "Copyright: 2026 The Berth authors"
  echo "License: MIT"
  sed -n '3,$p' LICENSE | sed 's/^$/./; s/^/ /'
} > "$stage/usr/share/doc/berth/copyright"
{
  echo "berth ($version-1) unstable; urgency=medium"
  echo
  sed -n '2,$p' packaging/CHANGELOG | sed 's/^  /  /'
  echo
  echo " -- Berth maintainers <berth@localhost>  $(date -R -d "$(sed -n '1s/.*(\(.*\)).*/\1/p' packaging/CHANGELOG)")"
} | gzip -9n > "$stage/usr/share/doc/berth/changelog.Debian.gz"
install -m 0644 packaging/deb/lintian-overrides "$stage/usr/share/lintian/overrides/berth"
install -d -m 0755 "$stage/DEBIAN"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$stage/DEBIAN/"
install -m 0644 packaging/deb/conffiles "$stage/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@SIZE@/$size/" -e "s/@ARCH@/$deb_arch/" packaging/deb/control.in > "$stage/DEBIAN/control"
(cd "$stage" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/md5sums"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$out/berth_${version}-1_${deb_arch}.deb" > /dev/null

# .rpm
rpmbuild -bb --quiet --target "$rpm_arch" \
  --define "_topdir $PWD/$out/rpmbuild" --define "version $version" --define "srcroot $PWD" --define "bindir_src $PWD/$bin" \
  packaging/rpm/berth.spec > /dev/null
mv "$out"/rpmbuild/RPMS/"$rpm_arch"/berth-"$version"-1."$rpm_arch".rpm "$out/"
rm -rf "$out/rpmbuild"
ls -l "$out"
