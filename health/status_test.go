package health_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/coreservice/coreservice/deps"
	"github.com/coreservice/coreservice/health"
	"github.com/coreservice/coreservice/internal/coretest"
)

func TestProbesShowStatusesAndTheirText(t *testing.T) {
	u := coretest.NewHostUnit("supervisor")
	db := service("db", u)
	api := service("api", deps.Requires(db))
	coretest.MustStart(t, api)
	defer coretest.MustStop(t, api)
	h := health.Handler(api)

	u.Host().SetStatus("supervisor", "running db#1", true)
	checkProbes(t, h, []probeCase{
		{"/readyz", "", 200, "ok"},
		{"/readyz?verbose", "", 200, "[+]api ok\n[+]api/db ok\n[+]api/db/supervisor ok: running db#1\nreadyz check passed\n"},
		{"/readyz/api/db/supervisor", "application/json", 200,
			`{"probe":"readyz","status":"ok","checks":[{"name":"api/db/supervisor","kind":"status","status":"ok","text":"running db#1"}]}` + "\n"},
		{"/livez?verbose", "", 200, "[+]api ok\n[+]api/db ok\nlivez check passed\n"},
	})

	u.Host().SetStatus("supervisor", "restarting (attempt 2, next in 1.5s)", false)
	checkProbes(t, h, []probeCase{
		// The text is served even though reasons are withheld: it is no secret.
		{"/readyz", "", 503, "[+]api ok\n[+]api/db ok\n[-]api/db/supervisor failed: restarting (attempt 2, next in 1.5s)\nreadyz check failed\n"},
		{"/readyz/api/db/supervisor", "", 503, "[-]api/db/supervisor failed: restarting (attempt 2, next in 1.5s)\nreadyz check failed\n"},
		{"/livez", "", 200, "ok"},
	})
}

func TestReadinessProbeSaysRestartingWhileASupervisedRequirementRestarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &coretest.Flaky{Name: "db"}
		db := deps.Supervise(f.Factory, func() backoff.BackOff { return coretest.NewPolicy(1500 * time.Millisecond) }, deps.Name("db"))
		api := service("api", db)
		coretest.MustStart(t, api)
		defer coretest.MustStop(t, api)
		h := health.Handler(api)
		checkProbes(t, h, []probeCase{
			{"/readyz?verbose", "", 200, "[+]api ok\n[+]api/db ok\n[+]api/db/supervisor ok: running db#1 (restarts: 0)\n[+]api/db/db#1 ok\nreadyz check passed\n"},
		})
		f.Last().Fail(errors.New("disk full"))
		synctest.Wait()
		checkProbes(t, h, []probeCase{
			{"/readyz", "", 503, "[+]api ok\n[+]api/db ok\n[-]api/db/supervisor failed: restarting (attempt 1 in 1.5s)\nreadyz check failed\n"},
			{"/livez", "", 200, "ok"},
		})
		coretest.Advance(1500 * time.Millisecond)
		synctest.Wait()
		checkProbes(t, h, []probeCase{
			{"/readyz?verbose", "", 200, "[+]api ok\n[+]api/db ok\n[+]api/db/supervisor ok: running db#2 (restarts: 1)\n[+]api/db/db#2 ok\nreadyz check passed\n"},
		})
	})
}
