package deps_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/deps"
	"github.com/coreservice/coreservice/task"
)

// Postgres is a service of the user's own, embedding *core.Base.
type Postgres struct {
	*core.Base
	dsn string
}

func NewPostgres(dsn string) *Postgres {
	pg := &Postgres{dsn: dsn}
	pg.Base = core.NewService(core.Name("postgres"), core.Logger(slog.New(slog.DiscardHandler)),
		core.OnStart(func(context.Context) error { fmt.Println("postgres: connect", pg.dsn); return nil }),
		core.OnStop(func(context.Context) error { fmt.Println("postgres: close"); return nil }))
	return pg
}

func (pg *Postgres) Query(string) int { return 7 }

func ExampleRequires() {
	pg := deps.Requires(NewPostgres("postgres://localhost/app")) // *deps.Requirement[*Postgres]
	api := core.NewService(core.Name("api"), core.Logger(slog.New(slog.DiscardHandler)), pg,
		core.OnStart(func(context.Context) error {
			// Requirements are Running before the parent's hooks and tasks.
			fmt.Println("api: users =", pg.Get().Query("select count(*) from users"))
			return nil
		}))
	if err := api.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	_ = api.Stop(context.Background())
	fmt.Println("postgres is", pg.Get().State())
	// Output:
	// postgres: connect postgres://localhost/app
	// api: users = 7
	// postgres: close
	// postgres is terminated
}

func ExampleLazy() {
	config := deps.Requires(core.NewService(core.Name("config"), core.Logger(slog.New(slog.DiscardHandler))))
	// The DSN is only known once config runs: build Postgres at start time.
	pg := deps.Lazy(func(ctx context.Context) (*Postgres, error) {
		return NewPostgres("from " + config.Get().Name()), nil
	}, deps.After(config), deps.Name("postgres"))
	api := core.NewService(core.Name("api"), core.Logger(slog.New(slog.DiscardHandler)), config, pg)
	fmt.Println("before start:", pg.Get() == nil)
	if err := api.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("after start:", pg.Get().State())
	_ = api.Stop(context.Background())
	// Output:
	// before start: true
	// postgres: connect from config
	// after start: running
	// postgres: close
}

func ExampleGraph() {
	db := core.NewService(core.Name("db"))
	api := core.NewService(core.Name("api"), deps.Requires(db))
	fmt.Print(deps.Graph(api))
	// Output:
	// digraph coreservice {
	// 	rankdir=LR;
	// 	node [shape=box, style=filled, fontname="Helvetica"];
	// 	n1 [label="api\nnew", fillcolor=white];
	// 	n2 [label="db\nnew", fillcolor=white];
	// 	n1 -> n2;
	// }
}

// Conn is a connection that breaks: its keepalive task fails on its third
// run.
type Conn struct {
	*core.Base
}

func dial(n int) *Conn {
	runs := 0
	return &Conn{Base: core.NewService(core.Name(fmt.Sprintf("conn#%d", n)), core.Logger(slog.New(slog.DiscardHandler)),
		task.Func("keepalive", func(context.Context) error {
			if runs++; runs == 3 && n == 1 {
				return errors.New("connection reset by peer")
			}
			return nil
		}, task.Every(10*time.Millisecond)))}
}

func ExampleSupervise() {
	n := 0
	restarted := make(chan struct{})
	db := deps.Supervise(func(context.Context) (*Conn, error) { n++; return dial(n), nil },
		func() backoff.BackOff { return backoff.NewConstantBackOff(50 * time.Millisecond) },
		deps.Name("db"),
		deps.OnEvent(func(e core.Event) {
			switch e := e.(type) {
			case core.RestartScheduled:
				fmt.Printf("restart %d of db in %v: %v\n", e.Attempt, e.Delay, e.Err)
			case core.Restarted:
				fmt.Println("restarted db as", e.Instance)
				close(restarted)
			}
		}))
	api := core.NewService(core.Name("api"), core.Logger(slog.New(slog.DiscardHandler)), db)
	if err := api.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	<-db.Get().Done()            // conn#1 breaks
	conn, err := db.Current(ctx) // waits for the restart, bounded by ctx
	<-restarted                  // the hook has printed its line
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("api is", api.State(), "with", conn.Name())
	_ = api.Stop(context.Background())
	// Output:
	// restart 1 of db in 50ms: task conn#1/keepalive worker 1: connection reset by peer
	// restarted db as conn#2
	// api is running with conn#2
}
