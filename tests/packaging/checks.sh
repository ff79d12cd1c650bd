# The checks both package tests count with (sourced by test-packages.sh and test-packages-arm64.sh): a tally of
# passed and failed checks, a command run quietly as a check, and the linters on the .deb and the .rpm.
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok: $1"; }
fail() { failed=$((failed + 1)); echo "FAILED: $1" >&2; }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else fail "$what"; fi; }
contains() { grep -qF -- "$2" <<<"$1"; }

# lintian on a .deb: errors fail; overrides (each with its reason) are in packaging/deb/lintian-overrides. What it
# said stays in $lint for the caller's own checks.
lintian_check() {
  local status
  lint=$(lintian --fail-on error "$1" 2>&1); status=$?
  if [[ $status -eq 0 ]]; then ok "lintian: no errors${lint:+ ($(grep -c '^[WI]:' <<<"$lint") warnings/infos)}"; else fail "lintian: $lint"; fi
}

# rpmlint on an .rpm with the project's rpmlintrc: errors fail.
rpmlint_check() {
  lint=$(rpmlint -r packaging/rpm/berth.rpmlintrc "$1" 2>&1)
  if grep -qE '^[^ ]+: E: ' <<<"$lint"; then fail "rpmlint: $(grep -E ': E: ' <<<"$lint")"; else ok "rpmlint: no errors"; fi
}
