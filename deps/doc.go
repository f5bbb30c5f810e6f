// Package deps gives a service typed requirements: other services it needs
// Running before its own hooks and tasks, and stopped only after them,
// and supervised ones, rebuilt and restarted when they fail.
//
//	pg := deps.Requires(NewPostgres(dsn))        // *deps.Requirement[*Postgres]
//	api := core.NewService(core.Name("api"), pg,
//		task.Func("sync", func(ctx context.Context) error {
//			return pg.Get().Sync(ctx)            // typed, no assertion
//		}))
//
// # Kinds
//
// Requires names a service the parent owns: the parent starts it and stops
// it. Lazy builds the service when the parent starts, after the
// requirements it names with After are Running, so that it can be built
// from them. Await names a service someone else starts and stops: the
// parent waits for it to be Running (bounded by its StartTimeout), watches
// it, and never starts or stops it.
//
// # Lifecycle
//
// A parent starts its requirements before its OnStart hooks, tasks and
// checks: in dependency order (After), independent ones concurrently, each
// followed by one health check. If one fails, the others' starts are
// cancelled and everything started is rolled back, the failing one
// included. A parent stops its requirements after its tasks and OnStop
// hooks, in reverse dependency order, independent ones concurrently.
//
// The requirement graph spans the whole tree. A service built on
// *core.Base that is required by several parents is started once, by the
// first parent to start (the others, even concurrent ones, wait for it to
// be Running), and stopped when its last parent stops. Its start is its
// own: a first parent that gives up does not abort it while another parent
// still waits for it. When a requirement
// fails while running, every parent fails promptly with an error that
// wraps its cause and names the chain ("requirement db failed: ...").
//
// A service of another type (any core.Service) can be required too; it is
// started and stopped by each parent, so it should not be shared.
//
// # Supervision
//
// Supervise names a service that factory builds, and builds again when it
// fails while the parent runs: the parent requires a supervisor, a service
// named as the requirement that holds the current instance, restarts it
// after the delays of a backoff/v4 policy, and gives up (failing the
// parent) on backoff.Stop or a backoff.Permanent error. While it restarts
// the parent stays Running but not ready, and Current waits for the next
// instance. See Supervise.
//
// # Errors
//
// A cycle of requirements, through Requires, Lazy or After, makes Start
// fail with a *core.CycleError (core.ErrCycle) whose message shows the path
// ("a -> b -> a"); nothing in the cycle is left running and nothing
// deadlocks. Since Requires takes a built service, a cycle of Requires alone
// cannot be written: cycles need Lazy, or a service that embeds *core.Base
// and is given its requirements later. Bad input (a nil or typed-nil
// service, a Lazy function returning nil, the same service required twice
// by one parent, two requirements of one parent with the same name (also
// when a Lazy without Name builds a service whose name is taken: checked
// once built, before that service starts), a name that is not a probe path
// segment ('/', control characters: see Name), After
// naming something that is not a requirement of the same parent, a
// Requirement used by two parents) is reported by the parent's Start as a
// *core.StartupError.
//
// # Graph
//
// Graph renders services and their requirements as Graphviz DOT, with each
// service's state, for documentation and debugging: one node per service
// (identified by its *core.Base, whatever type a parent sees it as), with
// labels escaped by Graphviz's rules, not Go's.
package deps
