# Berth: make build | make test | make demo. Every target installs what it needs on a fresh Debian 12.
SHELL := /bin/bash
.DEFAULT_GOAL := build

BIN := artifacts/bin
APT_PACKAGES := libsqlite3-dev sqlite3 containernetworking-plugins iproute2 systemd
PACKAGING_APT_PACKAGES := dpkg-dev rpm rpmlint lintian
BENCH_APT_PACKAGES := time gcc strace
E2E_APT_PACKAGES := containerd runc
TORTURE_APT_PACKAGES := qemu-system-x86 cpio busybox-static e2fsprogs python3
NODE_APT_PACKAGES := mmdebstrap qemu-utils
PROMETHEUS_APT_PACKAGES := prometheus python3-yaml
IMAGE_APT_PACKAGES := umoci python3
DOTNET := dotnet
export DOTNET_CLI_TELEMETRY_OPTOUT := 1
export DOTNET_NOLOGO := 1

.PHONY: build deps test demo e2e packages packages-test image bench torture node-test prometheus-test clean

# Installs the Debian packages the build and tests use, only those missing.
deps:
	@missing=$$(for p in $(APT_PACKAGES) $(PACKAGING_APT_PACKAGES) $(BENCH_APT_PACKAGES) $(E2E_APT_PACKAGES) $(TORTURE_APT_PACKAGES) $(NODE_APT_PACKAGES) $(PROMETHEUS_APT_PACKAGES) $(IMAGE_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq $$missing >/dev/null; \
	fi

# NativeAOT, one self-contained file with SQLite linked in. Warnings are errors (Directory.Build.props).
build: deps
	$(DOTNET) publish src/CniIpam/CniIpam.csproj -c Release -o $(BIN) --nologo -v quiet -p:DebugType=none
	$(DOTNET) publish src/HostAgent/HostAgent.csproj -c Release -o $(BIN) --nologo -v quiet -p:DebugType=none
	@rm -f $(BIN)/*.dbg $(BIN)/*.pdb
	@ls -l $(BIN)/berth $(BIN)/berth-agent

# The plugin's black-box tests run twice: with no agent (above), and with berth-agent answering its calls.
PLUGIN_TESTS := FullyQualifiedName~Berth.BlackBox.CniIpam
test: build image
	$(DOTNET) test tests/Berth.Tests/Berth.Tests.csproj -c Release --nologo
	$(DOTNET) test tests/Berth.BlackBox/Berth.BlackBox.csproj -c Release --nologo
	BERTH_TEST_AGENT=1 $(DOTNET) test tests/Berth.BlackBox/Berth.BlackBox.csproj -c Release --nologo --no-build --filter "$(PLUGIN_TESTS)"
	BENCH_QUICK=1 BENCH_OUT=artifacts/bench bash bench/bench.sh | sed -n '/^## ADD/,/^Floor/p'
	$(E2E) --reboots 2 --pods 5
	$(MAKE) --no-print-directory packages-test
	$(MAKE) --no-print-directory prometheus-test
	TORTURE_SECONDS=120 bash torture/run.sh
	NODE_TEST_SECONDS=60 NODE_TEST_CONTROL=0 $(MAKE) --no-print-directory node-test

# .deb and .rpm of the published executables, in artifacts/packages/.
packages: build
	@bash scripts/build-packages.sh

# The node add-on's OCI image (umoci, offline) as an archive `ctr images import` takes: artifacts/image/.
image: build
	@bash packaging/image/build-image.sh

# lintian, rpmlint, the packages' files and scripts, and a real install, remove and purge of the .deb.
packages-test: packages
	@bash tests/packaging/test-packages.sh

# The alert rules and dashboard (deploy/prometheus/): promtool check and unit tests, the PrometheusRule made from
# the rules file, then a real Prometheus scraping a real berth-agent (under a minute; artifacts/prometheus/).
prometheus-test: build
	@bash tests/prometheus/check.sh
	/usr/bin/python3 tests/prometheus/real_prometheus.py

demo: build
	@bash scripts/demo.sh

# berth and host-local under a real containerd through hard reboots (the fourth row runs the agent as the
# DaemonSet's pod from make image); writes the table into the README.
E2E = $(DOTNET) run --project tests/Berth.E2e -c Release -- --out artifacts/e2e
e2e: image
	$(E2E) --reboots 4 --pods 5 --readme README.md

# berth next to host-local in one run: docs/benchmarks.md and docs/add-latency.svg. BENCH_QUICK=1: short.
bench: build
	@bash bench/bench.sh

# Power cuts in a QEMU guest (docs/reliability.md), bounded by TORTURE_SECONDS (default 600).
torture: build
	@bash torture/run.sh

# A whole Debian node (systemd, containerd, the .deb) in QEMU through power cuts, bounded by NODE_TEST_SECONDS
# (default 600), then its negative control (docs/reliability.md). The VM image is cached under artifacts/node/.
# NODE_TEST_POD=1: the agent runs as deploy/kubernetes's DaemonSet pod instead of the units (control: no agent).
node-test: packages image
	$(DOTNET) publish tests/Berth.NodeCri/Berth.NodeCri.csproj -c Release -o artifacts/node/cri --nologo -v quiet -p:DebugType=none
	@rm -f artifacts/node/cri/*.dbg
	$(DOTNET) run --project tests/Berth.E2e -c Release -- --pod-spec artifacts/node/pod
	@bash torture/node/run.sh

clean:
	rm -rf artifacts

# linux-arm64: the executables cross-built NativeAOT (artifacts/arm64/bin), their .deb and .rpm
# (artifacts/arm64/packages), the multi-architecture image, and their checks under qemu-user (tests/arm64/run.sh).
.PHONY: deps-arm64 build-arm64 packages-arm64 image-multiarch arm64-test
deps-arm64: deps
	@bash scripts/arm64/deps.sh

build-arm64: deps-arm64
	@bash scripts/arm64/build.sh

packages-arm64: build-arm64
	@PACKAGE_ARCH=arm64 bash scripts/build-packages.sh

# One OCI index holding the amd64 image of `make image` and the same image for arm64: artifacts/image/.
image-multiarch: image build-arm64
	@bash packaging/image/build-index.sh

arm64-test: packages packages-arm64 image-multiarch
	@bash tests/arm64/run.sh

test: arm64-test
