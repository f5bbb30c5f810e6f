#!/usr/bin/env bash
# The whole test suite, run by CI (.ci/run) and by hand: for every Go module
# in the repository (every go.mod), check formatting (gofmt), then run
# go vet, staticcheck and the tests with the race detector.
# Usage: ./test.sh   (from anywhere; exits non-zero on any failure)
#        CORESERVICE_SKIP_JAEGER=1 ./test.sh   (skips the tests that need a
#        real Jaeger, and says so at the start and in the summary)
#
# What it fetches over the network, once, when missing:
#   - staticcheck, with go install (into GOBIN or GOPATH/bin);
#   - Jaeger v2, built by scripts/jaeger from the Go module proxy (module
#     tools/jaeger) into ${CORESERVICE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coreservice};
#     a cold build takes 5-12 minutes, later runs reuse it.
set -euo pipefail

STATICCHECK_VERSION=v0.8.2

cd "$(dirname "$0")"
root=$(pwd)

# go install puts binaries in GOBIN, or else in the first GOPATH entry's bin.
gobin=$(go env GOBIN)
if [[ -z $gobin ]]; then
	gobin="$(go env GOPATH | cut -d: -f1)/bin"
fi
export PATH="$gobin:$PATH"
if ! command -v staticcheck >/dev/null 2>&1; then
	echo "==> installing staticcheck $STATICCHECK_VERSION"
	go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi

# The end-to-end tests start a real Jaeger (internal/jaegertest). Build it
# once into the cache, and require it, so that those tests cannot skip
# silently.
jaeger_skip=
if [[ ${CORESERVICE_SKIP_JAEGER:-} == 1 ]]; then
	jaeger_skip="SKIP: Jaeger end-to-end tests (CORESERVICE_SKIP_JAEGER=1)"
	echo "$jaeger_skip"
	export CORESERVICE_SKIP_JAEGER
	unset CORESERVICE_JAEGER_REQUIRED
else
	if ! jaeger_bin=$(scripts/jaeger build); then
		echo "FAIL: building Jaeger (CORESERVICE_SKIP_JAEGER=1 skips the tests that need it)" >&2
		exit 1
	fi
	echo "==> Jaeger: $jaeger_bin"
	export CORESERVICE_JAEGER_BIN=$jaeger_bin CORESERVICE_JAEGER_REQUIRED=1
fi

failed=()

# step NAME CMD...: run CMD, remembering NAME if it fails.
step() {
	local name=$1
	shift
	echo "--- $name"
	if ! "$@"; then
		echo "FAIL: $name" >&2
		failed+=("$mod: $name")
	fi
}

gofmt_check() {
	local files
	files=$(gofmt -l .) || return 1
	if [[ -n $files ]]; then
		echo "not gofmt-ed (run gofmt -w):" >&2
		echo "$files" >&2
		return 1
	fi
}

# gotest runs the module's tests, keeping their output for the summary.
gotest() {
	go test -race -count=1 ./... 2>&1 | tee -a "$testlog"
	return "${PIPESTATUS[0]}"
}
testlog=$(mktemp)
trap 'rm -f "$testlog"' EXIT

mapfile -t modules < <(find . -name go.mod -not -path './.git/*' -exec dirname {} \; | sort)
if [[ ${#modules[@]} -eq 0 ]]; then
	echo "no go.mod found under $root" >&2
	exit 1
fi

for mod in "${modules[@]}"; do
	echo
	echo "=== module $mod ($(cd "$mod" && go list -m))"
	pushd "$mod" >/dev/null
	step "gofmt -l ." gofmt_check
	# A module of tool dependencies only (tools/jaeger) has no package, and
	# go vet and go test fail on "no packages".
	if pkgs=$(go list ./... 2>/dev/null) && [[ -z $pkgs ]]; then
		echo "--- no Go package in $mod (tool dependencies only): nothing to vet or test"
		popd >/dev/null
		continue
	fi
	step "go vet ./..." go vet ./...
	step "staticcheck ./..." staticcheck ./...
	if [[ $mod == . ]]; then
		# The README's demo must keep working: it starts, ticks and stops, exit 0.
		step "go run ./examples/quickstart -for 1500ms" go run ./examples/quickstart -for 1500ms
		step "go run ./examples/graph" go run ./examples/graph >/dev/null
	fi
	step "go test -race -count=1 ./..." gotest
	if [[ $mod == . ]]; then
		# The lifecycle suites again, with an illegal state transition a panic
		# instead of a logged error (build tag coreassert).
		step "go test -race -tags coreassert ./core ./internal/chaos ./internal/eventstream" \
			go test -race -count=1 -tags coreassert ./core ./internal/chaos ./internal/eventstream
	fi
	popd >/dev/null
done
mod=bench step "bench/run -quick (every benchmark scenario compiles and runs)" bench/run -quick

echo
if [[ -n $jaeger_skip ]]; then
	echo "$jaeger_skip"
fi
passed=$(grep -c '^ok ' "$testlog" || true)
failing=$(grep -c '^FAIL[[:space:]]' "$testlog" || true)
if [[ ${#failed[@]} -gt 0 ]]; then
	echo "FAILED:" >&2
	printf '  %s\n' "${failed[@]}" >&2
	echo "packages: $passed passed, $failing failed"
	exit 1
fi
echo "packages: $passed passed, $failing failed"
