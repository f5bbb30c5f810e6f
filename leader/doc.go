// Package leader runs work on one replica of a service at a time: the one
// that leads an election held on a store built for it (contrib/etcd).
//
// An Elector campaigns on the store; each term it wins is a Leadership
// with a fencing token, strictly greater than every token before it. Two
// ways use it: the task option task.Leader (a task that runs only on the
// leader), and Service (a requirement whose service runs only on the
// leader: started when this replica is elected, stopped when it loses).
// Both run Lead, the campaign loop, which is exported for them and for
// units of other packages. Both show the role as a status
// (core.Host.SetStatus) in the probes and deps.Graph: "leader (token N)" or
// "standby", ready either way.
//
// # Lifecycle
//
// Lead campaigns until its context ends. A failed campaign (the store is
// unreachable) is retried with an exponential backoff, from
// CampaignRetryInitial (1 s) to CampaignRetryMax (30 s), for as long as it
// takes: the service runs, standing by, meanwhile. Each term won runs the
// term function with a context that carries the token (Token) and ends at
// once when the term is lost; Lead waits for the function to return before
// it campaigns again or resigns, so that the work of two terms of this
// replica never overlaps. When its context ends (the service stops), Lead
// resigns at once, bounded by half the service's StopTimeout, so that another
// replica is elected without waiting for the store's session to expire.
//
// Leadership is not a lock: a replica that is partitioned from the store
// may still run for a while after the store elected another one (how long
// depends on the Elector; contrib/etcd gives it up before its lease can
// expire). Guard writes with the token.
//
// # Concurrency
//
// Token is safe for concurrent use. Lead is called once per campaign
// loop, in a goroutine of the service (core.Host.Go), and starts one
// goroutine per term, which it waits for. An Elector serves one campaign
// at a time.
//
// # Errors
//
// A nil Elector (also a typed nil), and one that is a Validator whose
// Validate fails, are invalid options (core.ErrInvalidOption), reported by
// the service's Start (task.Leader) or by Lead at once, naming the unit.
// The context of a term that was lost ends with a cause matching ErrLost
// that wraps the reason (Leadership.Err).
//
// # Telemetry
//
// Each term won raises core.LeadershipWon (logged at INFO, "elected
// leader"), each term that ends core.LeadershipLost (WARN "leadership
// lost" with the reason, or INFO "leadership resigned"), with core.Host.Emit.
// Each campaign is a span "campaign <service>", the root of its own trace,
// linked to the service's start span, with coreservice.service and
// coreservice.unit, and coreservice.leader.token once elected, or the
// error of its failure. Failed campaigns are logged at WARN, "campaign
// failed; standing by": the first of a streak at once with its error, then
// at most once per CampaignLogInterval (1 min) with the number of failures
// since the last record. The up-down counter coreservice.leader.is_leader
// ({leader}, attributes coreservice.service and coreservice.unit) is 1
// while the unit leads, 0 otherwise.
package leader
