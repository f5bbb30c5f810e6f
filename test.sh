#!/usr/bin/env bash
# The whole test suite, run by CI (.ci/run) and by hand: for every Go module
# in the repository (every go.mod), check formatting (gofmt), then run
# go vet, staticcheck and the tests with the race detector.
# Usage: ./test.sh   (from anywhere; exits non-zero on any failure)
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
	step "go vet ./..." go vet ./...
	step "staticcheck ./..." staticcheck ./...
	if [[ $mod == . ]]; then
		# The README's demo must keep working: it starts, ticks and stops, exit 0.
		step "go run ./examples/quickstart -for 1500ms" go run ./examples/quickstart -for 1500ms
		step "go run ./examples/graph" go run ./examples/graph >/dev/null
	fi
	step "go test -race -count=1 ./..." gotest
	popd >/dev/null
done

echo
passed=$(grep -c '^ok ' "$testlog" || true)
failing=$(grep -c '^FAIL[[:space:]]' "$testlog" || true)
if [[ ${#failed[@]} -gt 0 ]]; then
	echo "FAILED:" >&2
	printf '  %s\n' "${failed[@]}" >&2
	echo "packages: $passed passed, $failing failed"
	exit 1
fi
echo "packages: $passed passed, $failing failed"
