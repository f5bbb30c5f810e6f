// Command traces prints the latest traces of a service, read from a Jaeger
// query API, as indented trees: operation, duration, and ERROR with the
// exception message for failed spans. scripts/jaeger traces runs it, so
// that traces can be read without Jaeger's UI (which a Jaeger built from
// the Go module proxy does not have).
//
// Usage:
//
//	go run ./internal/jaegertest/cmd/traces [-query URL] [-limit N] [-operation OP] [-timeout D] SERVICE
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/coreservice/coreservice/internal/jaegertest"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command with its arguments and outputs; it returns the exit
// code: 0, 1 on a failed query, 2 on bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("traces", flag.ContinueOnError)
	fs.SetOutput(stderr)
	query := fs.String("query", "http://127.0.0.1:16686", "base `URL` of the Jaeger query API")
	limit := fs.Int("limit", 20, "print at most `N` traces")
	operation := fs.String("operation", "", "only traces with a span of this `operation`")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this `duration`")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: traces [flags] SERVICE")
		fmt.Fprintln(stderr, "Prints the latest traces of SERVICE from Jaeger's query API as indented trees.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "traces: got %d arguments, want one service name\n", fs.NArg())
		fs.Usage()
		return 2
	}
	if *limit < 1 {
		fmt.Fprintf(stderr, "traces: -limit is %d, want at least 1\n", *limit)
		return 2
	}
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "traces: -timeout is %v, want more than 0\n", *timeout)
		return 2
	}
	service := fs.Arg(0)

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c := jaegertest.NewClient(*query)
	defer c.Close()
	traces, err := c.Traces(ctx, service, *operation, *limit)
	if err != nil {
		fmt.Fprintf(stderr, "traces: %v\n", err)
		return 1
	}
	if len(traces) == 0 {
		fmt.Fprintf(stdout, "no traces of service %q at %s\n", service, *query)
		return 0
	}
	if err := jaegertest.Render(stdout, traces); err != nil {
		fmt.Fprintf(stderr, "traces: %v\n", err)
		return 1
	}
	return 0
}
