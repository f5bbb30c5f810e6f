// Package serve hosts a server as a unit of a service (package core): an
// *http.Server, or anything with Serve(net.Listener) error and
// Shutdown(context.Context) error, such as a gRPC server behind the small
// adapter shown in New's documentation.
//
//	mux := http.NewServeMux()
//	mux.HandleFunc("GET /hello", hello)
//	api := serve.HTTP(&http.Server{Addr: ":8080", Handler: mux, ReadHeaderTimeout: 5 * time.Second})
//	svc := core.NewService(core.Name("api"), api)
//	err := core.Run(ctx, svc) // serves until SIGINT/SIGTERM, then drains
//
// A *Unit is a core.Option: it is given to core.NewService like a task.
//
// # Lifecycle
//
// The service's Start opens the unit's TCP listener when it launches its
// units, after its requirements and OnStart hooks, and starts Serve on it in
// a goroutine of the service. So a busy port fails the Start with a
// *core.StartupError that names the unit and the address ("start api:
// server :8080: listen tcp :8080: bind: address already in use"), and the
// service is Running only once the listener is open: a client can connect
// as soon as Start returns. Unit.Addr then returns the address, the port
// chosen included when the address has port 0.
//
// If Serve returns while the service runs (an accept error, or the server
// shut down or closed by someone else), the service fails at once with that
// error, which names the unit: Err returns it, and the service stops, with
// the drain below.
//
// The service's Stop cancels the service's context first, and the unit
// begins to drain then: Shutdown stops accepting connections, closes the
// idle ones and waits for the requests in flight, under a context that ends
// when 90% of the service's StopTimeout has passed since the stop began (at
// most one second short of it). Requests that end within that budget get
// their responses. If the budget runs out, Stop's result holds Shutdown's
// error (it matches context.DeadlineExceeded and names the unit), and an
// *http.Server is then closed, which cuts the connections left; their
// handlers are not waited for (net/http cannot stop them), as with
// http.Server.Shutdown. The stop goes on once Serve has returned: the
// OnStop hooks run after the drain, and the requirements stop after that,
// so no request is served by a service whose requirements have stopped.
//
// The unit logs, through the service's logger at level Info, "server
// listening" (with unit and addr) once the listener is open, "server
// draining" (unit, budget) when the drain begins, and "server drained"
// (unit, took) when it ended with nothing left over; what went wrong is in
// Err or in Stop's result, which the service logs.
//
// A handler's panic does not stop the service: net/http recovers it, and
// logs it to the server's ErrorLog, which the unit points at the service's
// logger (service=<name>, level Error) when it is nil.
//
// # Errors
//
// A nil server, an empty or malformed address (one that is not host:port),
// an invalid option, and a unit given to two services are reported by the
// service's Start, before it starts anything, as a *core.StartupError
// matching core.ErrInvalidOption that names the service, the unit and the
// function ("start api: options: invalid option: server \"\": serve.HTTP:
// nil *http.Server"); so are two units with the same name (see Name).
//
// # Concurrency
//
// A Unit's methods are safe for concurrent use. A Unit belongs to one
// service and is started once, with it; its server must not be served or
// shut down by anyone else.
package serve
