// Package health gives services named health checks, run by the service's
// monitor, and Kubernetes-style liveness and readiness probes over HTTP and
// in code.
//
//	api := core.NewService(core.Name("api"),
//		health.Check("db", db.PingContext, health.Timeout(time.Second)),
//		health.Check("queue", queueDepthOK, health.Threshold(3)))
//	mux.Handle("/", health.Handler(api)) // /livez, /readyz, /readyz/api/db, ...
//	err := health.WaitReady(ctx, api)    // in code: Running and healthy
//
// # Checks
//
// Check returns a core.Option: a named function that reports the health of
// something the service needs. The service runs each check once during
// Start, after its tasks are launched: a failure fails the start with a
// *core.StartupError (core.ErrStartup) whose part is "check <name>". Once
// Running, the monitor runs the checks every core.MonitorInterval (100 ms
// by default), one after another; a check that fails Threshold times in a
// row (1 by default) fails the service with an error matching
// core.ErrUnhealthy, and a passing run resets its count.
// (*core.Base).Healthcheck runs them too, but its failures count towards
// no threshold.
//
// Each run is bounded by the check's Timeout, by default half the
// MonitorInterval. A run still going at its deadline fails: the check
// returns then even if its function ignores its context. That function
// keeps running in its goroutine; until it returns, the check does not call
// it again but fails at once with ErrStillRunning, so runs never pile up.
// The service owns those goroutines: its Stop waits for runs still under
// way before its OnStop hooks, for at most StopTimeout, and names the
// check ("check <name>") in its *core.StopTimeoutError if they outlast it.
// A function that ignores its context can thus outlive the service.
//
// Every run records its result (when it ended, its error, the failures in
// a row) in the service's own instance of the check: the same Check value
// given to two services makes two checks. A run whose context its caller
// ended (cancelled it, as the monitor's is when the service stops, or gave
// it a deadline shorter than the check's Timeout) records nothing and does
// not count as cut off: only the check's own Timeout (core.ErrCheckTimeout)
// says the check is too slow.
//
// A check may not share its name with a requirement of the same service:
// probe paths (service/requirement/check) would be ambiguous, so Start
// reports it as an invalid option. For the same reason the names of
// services (core.Name), requirements (deps.Name) and checks are path
// segments: a name with a '/' (api/b/c would name two parts, and
// ?exclude=api/b/c leave out both), a newline (it would forge "[+]" lines
// of the text output), another control or format character, or invalid
// UTF-8 is an invalid option, reported by Start and naming the option and
// the service. Rejecting them at Start rather than escaping them in the
// output keeps every name readable as written, in paths and in listings.
//
// Which checks gate Start: every check without a startup grace must pass
// its run at Start. A check given StartupGrace(d) (d > 0) runs at Start
// too, and its result is recorded, but a failure there does not fail the
// start: until d has passed since the service became Running, or until a
// run of the check passes (whichever is first, as Kubernetes' startupProbe
// ends at its first success), its failures make the service not ready
// ("[-]api/stats failed: in startup grace: no stats yet" on
// /readyz/api/stats, "check stats: in startup grace: ..." from
// Healthcheck) but never failed: they count towards no Threshold and raise
// no core.CheckFailed event. After the grace the check is an ordinary one:
// its failures count from zero, and Threshold in a row fail the service.
// A check that depends on a first task run (fresh stats, a warm cache)
// wants a grace; a dependency that may be down for long belongs in a task
// that waits for it, not in a check.
//
// # Probes
//
// Handler serves the probes of a set of services, following the
// conventions of the Kubernetes API server:
//
//	path                                   reports
//	/livez                                 every service, and every requirement under it, is live
//	/livez/<service>[/<requirement>...]    that service or requirement, and everything under it
//	/readyz                                every service, requirement and check is ready
//	/readyz/<service>[/<requirement>...]   that service or requirement, and everything under it
//	/readyz/<service>[/...]/<check>        that one check, with its error when it fails
//	?verbose                               list every part, also when all pass
//	?exclude=<name>                        leave out that part and everything under it (repeatable)
//	Accept: application/json               the same content as JSON
//
// A service is live unless it is Failed: New, Starting, Running, Stopping
// and Terminated services are live. A service is ready when it is Running;
// a check is ready when its latest result passed and is fresh: a check that
// has never run is not ready, and neither is one whose latest result is
// older than StalePeriods monitor periods, and at least MinStale (the
// monitor has stopped running it). Liveness covers services and their requirements; readiness adds
// their checks. A path that names one check (/readyz/api/ping) answers for
// that check and its service: a passing check of a service that is not
// Running fails there with "service api is terminated", as /readyz/api
// does, so that a load balancer aimed at one check takes a stopped service
// out of rotation at once. Requirements appear under their parent as path segments,
// named as the requirement (/readyz/api/db/ping is the check ping of the
// requirement db of the service api), and the same service required by two
// parents appears under both. A lazy requirement not built yet is live and
// not ready.
//
// The answer is 200 when every part passes and 503 when one fails. The
// plain body is "ok". With the query parameter verbose, or when a part
// fails, the body lists one line per part, "[+]<name> ok" or
// "[-]<name> failed: reason withheld", where <name> is the part's path
// below the probe (api, api/ping, api/db, api/db/ping), then
// "<probe> check passed" or "<probe> check failed":
//
//	[+]api ok
//	[+]api/ping ok
//	[-]api/queue failed: reason withheld
//	readyz check failed
//
// The units of a service can add statuses of their own
// (core.Host.SetStatus): a supervisor's (deps.Supervise), a leader's.
// Each is a part of readyz under its service, kind "status", named as the
// status; it passes while the status is Ready, and its line shows the
// status's text either way, since it holds no secret:
//
//	[+]api/db ok
//	[-]api/db/supervisor failed: restarting (attempt 2, next in 1.5s)
//	[+]api/leader report ok: standby
//
// Why a part fails is not served, since probes are often reachable by
// more people than logs are, except when the path asks for a single check:
// then its line gives its error. A service that fails readiness only by
// its state says it, since a state is no secret: "[-]worker failed: not
// started" (StateNew), "starting", "stopping" or "terminated" (a Failed
// service's reason, its Err, is withheld). A check whose service is not
// Running and that has never run, or whose result went stale, gives that
// state as its reason ("service db is terminated"), not "never run" or
// "stale", which would blame the check. The monitor raises every failure as a
// core.CheckFailed event, logged by the service's logger and given to its
// OnEvent hooks. The parameter exclude=<name>, repeatable, leaves out
// the part of that name and everything under it; a name that matches
// nothing adds a "warn:" line, which lists each such name once. Its cost
// is linear in the number of names (net/url parses at most 10,000 query
// parameters). A path that names no part is answered 404
// with the list of known paths. Names are path segments: escape them
// (url.PathEscape) in requests, so "main.main#1" is /readyz/main.main%231.
//
// With "Accept: application/json" the same content comes as one JSON
// object, whatever verbose says:
//
//	{
//	  "probe": "readyz",               // or "livez"
//	  "status": "failed",              // "ok" or "failed", as the status code
//	  "checks": [                      // one entry per line of the text output
//	    {"name": "api", "kind": "service", "status": "ok"},
//	    {"name": "api/leader report", "kind": "status", "status": "ok",
//	     "text": "standby"},           // a status's text, also when it passes
//	    {"name": "api/queue", "kind": "check", "status": "failed",
//	     "failures": 2,                // failed runs in a row; omitted when 0
//	     "error": "depth 1200 > 1000"} // only when the path asks for this check
//	  ],
//	  "warnings": ["..."]             // omitted when none
//	}
//
// Fields may be added; none will be removed or change meaning.
//
// Services that cannot be probed (nil, not built with core.NewService such
// as a type embedding a nil *core.Base or a zero core.Base, a type
// embedding *core.Base with a Healthcheck method of its own, whose result
// the probes could never show: see core.ValidateHealthcheck, or two with
// one name) make Handler answer every request 500 with the reason, and
// Ready and WaitReady return an error that does not match ErrNotReady:
// never a panic.
//
// The handler only reports what the services recorded and their states: it
// never runs a check, so probes cannot load what the checks test however
// often they come. Checks registered through core.Config.AddCheck by other
// packages are run and enforced by the monitor like these, but their
// results are not recorded, so the probes do not list them.
//
// # Readiness in code
//
// Ready tells, by the same rules as /readyz, whether a set of services is
// ready now. WaitReady waits until it is, or until one of the services
// fails or its context ends: a program that starts services in the
// background (with core.Run) can wait for them before it does its own
// work. It does not poll: it looks again when a start finishes, a check
// records a result or a service ends, so it returns when readiness is
// reached, not a MonitorInterval later.
//
// # Telemetry
//
// Each run of a check is a span "check <name>" with the attribute
// coreservice.check=<name>, a child of the span in the context it was
// called with: the monitor's "healthcheck <service>" (one trace per monitor
// run), the service's "start <service>", or the caller's span in
// Healthcheck. The span goes to the tracer provider of its parent; a
// failed run sets status Error, error.type and an exception event. The
// check's function gets the span in its context, so its own spans nest
// under it. Child spans, rather than attributes on the monitor's span,
// give each check its own duration, status and error, and a parent for the
// spans its function makes.
//
// # Concurrency
//
// CheckSpec values and the handler are safe for concurrent use. A check's
// function can be called concurrently by the monitor and Healthcheck
// callers; see Check. Handler, Ready and WaitReady read the services'
// states and recorded results under locks and never block on a check.
package health
