// Command graph builds a small tree of services, starts it, and writes its
// dependency graph as Graphviz DOT, with every service's state:
//
//	go run ./examples/graph -o graph.dot && dot -Tsvg graph.dot > graph.svg
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/deps"
)

func main() {
	out := flag.String("o", "", "write the DOT graph to this file (default: standard output)")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "graph:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	ctx := context.Background()
	quiet := core.Logger(slog.New(slog.DiscardHandler))

	auth := core.NewService(core.Name("auth"), quiet) // started by someone else
	db := deps.Requires(core.NewService(core.Name("postgres"), quiet))
	cache := deps.Lazy(func(context.Context) (*core.Base, error) {
		return core.NewService(core.Name("cache"), quiet), nil // built once postgres runs
	}, deps.Name("cache"), deps.After(db))
	api := core.NewService(core.Name("api"), quiet, db, cache, deps.Await(auth))
	worker := core.NewService(core.Name("worker"), quiet, deps.Requires(db.Get())) // shares postgres

	for _, s := range []core.Service{auth, api, worker} {
		if err := s.Start(ctx); err != nil {
			return err
		}
		defer func() { _ = s.Stop(ctx) }()
	}
	dot := deps.Graph(api, worker)
	if out == "" {
		_, err := fmt.Print(dot)
		return err
	}
	return os.WriteFile(out, []byte(dot), 0o644)
}
