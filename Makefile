# nzsecure-milter
#
#   make test          go mod tidy check, gofmt check, go vet, staticcheck, unit tests (-race),
#                      then the end-to-end tests through a real Postfix
#   make build         bin/nzsecure-milter
#   make bench         Go benchmarks and the Postfix throughput run
#   make install-deps  Debian packages the tests need (run as root)
#   make package       deb and rpm packages into dist/ (nfpm; make nfpm-install)
#   make lintian       lintian on dist/*.deb: no error, no warning
#
# The e2e tests start a private Postfix instance and need root; see
# tests/e2e/lib.sh. The last line `make test` prints is the e2e summary,
# "e2e: N passed, M failed".

SHELL := /bin/bash
GO ?= go
STATICCHECK_VERSION := v0.8.2
# staticcheck from PATH, else from $(go env GOPATH)/bin.
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo "$$($(GO) env GOPATH)/bin/staticcheck")
# nfpm builds the deb and rpm from contrib/packaging/nfpm.yaml.
NFPM_VERSION := v2.48.0
NFPM ?= $(shell command -v nfpm 2>/dev/null || echo "$$($(GO) env GOPATH)/bin/nfpm")
# Package version from git (contrib/packaging/version.sh), Debian-valid.
PKG_VERSION ?= $(shell sh contrib/packaging/version.sh)
PKG_ARCH ?= $(shell $(GO) env GOARCH)
PKG_FORMATS ?= deb rpm
# Placeholder until the project names a maintainer address.
PKG_MAINTAINER ?= nzsecure-milter maintainers <nzsecure-milter@users.noreply.github.com>

# Debian packages for the tests: Postfix (smtpd, smtp-sink, smtp-source,
# postmap), swaks and the Perl modules it and tests/e2e/slow-smtp.pl use for
# TLS, sasl2-bin (saslpasswd2) and libsasl2-modules (PLAIN, LOGIN, sasldb)
# for the authenticated submission tests, openssl for the test
# certificates, gcc for go test -race.
DEB_PACKAGES := postfix swaks openssl ca-certificates perl \
	libnet-ssleay-perl libio-socket-ssl-perl libio-socket-inet6-perl libnet-dns-perl \
	sasl2-bin libsasl2-modules opendkim opendkim-tools gpgsm gpg-agent \
	slapd ldap-utils python3 curl \
	gcc libc6-dev make git lintian

# Go files to check with gofmt (not the e2e/bench scratch directories).
GOFILES := find . \( -path ./.git -o -path ./tests/e2e/work -o -path ./bench/work \) -prune -o -name '*.go' -print

.PHONY: test fmt-check vet staticcheck unit e2e build bench install-deps staticcheck-install clean package lintian nfpm-install

# One recipe, so the steps run in this order even under make -j.
test:
	@echo "== go mod tidy -diff (go.mod and go.sum as go mod tidy leaves them)"
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum not tidy: run 'go mod tidy' and commit the result (diff above)"; exit 1; }
	@echo "== gofmt -l"
	@out=$$(gofmt -l $$($(GOFILES))); \
	if [ -n "$$out" ]; then echo "gofmt: not formatted:"; echo "$$out"; exit 1; fi
	@echo "== go vet ./..."
	$(GO) vet ./...
	@echo "== staticcheck ./..."
	$(STATICCHECK) ./...
	@echo "== go test -race -count=1 ./..."
	$(GO) test -race -count=1 ./...
	@echo "== fuzz: every fuzz target briefly (tests/fuzz-smoke.sh)"
	@bash tests/fuzz-smoke.sh
	@echo "== e2e: tests/e2e/run-all.sh"
	@bash tests/e2e/run-all.sh

fmt-check:
	@out=$$(gofmt -l $$($(GOFILES))); \
	if [ -n "$$out" ]; then echo "gofmt: not formatted:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(STATICCHECK) ./...

unit:
	$(GO) test -race -count=1 ./...

e2e:
	bash tests/e2e/run-all.sh

build:
	$(GO) build -o bin/nzsecure-milter ./cmd/nzsecure-milter

bench:
	$(GO) test -run '^$$' -bench . ./...
	bash bench/throughput.sh

# Same apt steps as .ci/run (which also installs staticcheck and runs make test).
install-deps:
	apt-get update
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEB_PACKAGES)

staticcheck-install:
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

nfpm-install:
	$(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

# The binary (static, -trimpath, version stamped), the manual pages written
# by the binary itself (nzsecure-milter man 8|5: the same text as -h and as
# the default policy's comments) and a changelog, staged in dist/stage,
# then one nfpm description for both formats.
package:
	@test -x "$(NFPM)" || { echo "nfpm not found: make nfpm-install"; exit 1; }
	rm -rf dist
	mkdir -p dist/stage
	CGO_ENABLED=0 GOARCH=$(PKG_ARCH) $(GO) build -trimpath -ldflags "-s -w -X main.version=$(PKG_VERSION)" \
		-o dist/stage/nzsecure-milter ./cmd/nzsecure-milter
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct) dist/stage/nzsecure-milter man 8 | gzip -9n >dist/stage/nzsecure-milter.8.gz
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct) dist/stage/nzsecure-milter man 5 | gzip -9n >dist/stage/nzsecure-milter.toml.5.gz
	{ echo "nzsecure-milter ($(PKG_VERSION)) unstable; urgency=medium"; echo; \
	  echo "  * Built from git commit $$(git rev-parse --short=12 HEAD):"; \
	  echo "    $$(git log -1 --format=%s | cut -c1-70)"; echo; \
	  echo " -- $(PKG_MAINTAINER)  $$(git log -1 --format=%cD)"; } | gzip -9n >dist/stage/changelog.gz
	for f in $(PKG_FORMATS); do \
	  VERSION="$(PKG_VERSION)" ARCH="$(PKG_ARCH)" MAINTAINER="$(PKG_MAINTAINER)" $(NFPM) package -f contrib/packaging/nfpm.yaml -p $$f -t dist/ || exit 1; \
	done
	@ls -l dist/

# Errors and warnings fail; informational tags do not.
lintian:
	lintian --fail-on error,warning dist/*.deb

clean:
	rm -rf bin tests/e2e/work bench/work dist
