// Package jaegertest starts a real Jaeger v2 for Go tests and reads traces
// back through its query API.
//
// The Jaeger binary is built from the Go module proxy by `scripts/jaeger
// build` (module tools/jaeger) into a cache directory outside the
// repository; [Binary] finds it. [Start] runs it on free 127.0.0.1 ports
// with in-memory storage (config.yaml in this directory, shared with
// scripts/jaeger) and stops it by PID when the test ends. A test that needs
// Jaeger is skipped when no binary has been built, unless the environment
// sets CORESERVICE_JAEGER_REQUIRED=1 (test.sh does), in which case it fails;
// CORESERVICE_SKIP_JAEGER=1 skips it in any case.
//
// [Client] reads the query API (/api/services, /api/traces,
// /api/traces/ID) into [Trace], [Span] and [Process] values; [Render]
// prints traces as an indented tree, as `scripts/jaeger traces` does.
//
// # Lifecycle
//
// [Start] returns once the collector has logged that it is ready, or fails
// the test after [StartTimeout] with the process's log. The cleanup it
// registers sends SIGTERM, waits up to [StopTimeout], then sends SIGKILL,
// and always waits for the process to exit; on Linux the process is also
// killed if the test binary dies first.
//
// # Concurrency
//
// A [Client] and a [Jaeger] are safe for concurrent use. Every query is
// bounded by its context and by [QueryTimeout].
package jaegertest
