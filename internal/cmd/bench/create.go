package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/paysidecar/paysidecar/internal/localproc"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// concurrencies are the closed loops' levels.
var concurrencies = []int{1, 8, 64}

// closedRun is one repeat of one concurrency level: the sidecar's loop and
// the direct client's right after it.
type closedRun struct {
	sidecar, direct closedResult
	// cpu is CPU per create in ms by process: "host", each plugin,
	// "sandbox"; "client" and "sandbox (direct)" are this process and the
	// sandbox during the direct loop, per order.
	cpu map[string]float64
	// switches is context switches per create by process, of the
	// sidecar's loop: "host", each plugin, "sandbox".
	switches map[string]float64
	// rsa is the RSA baseline of the repeat, ms.
	rsa float64
}

// directJSPay is the baseline create: the same A_NATIVE order signed by
// nkp.Client in this process and sent straight to the sandbox.
func directJSPay(c *nkp.Client) op {
	return func(ctx context.Context, _ int64) error {
		now := time.Now()
		resp, err := c.JSPay(ctx, nkp.JSPayRequest{
			ReqDate: nkp.ReqDate(now), ReqSeqID: nkp.NewReqSeqID(now), HuifuID: c.SysID, GoodsDesc: "bench",
			TradeType: upstream.TradeAlipayNative, TransAmt: 1, NotifyURL: "http://127.0.0.1:8001/notify",
		})
		if err != nil {
			return fmt.Errorf("jspay: %w", err)
		}
		if !resp.Accepted() {
			return fmt.Errorf("jspay: refused: %+v", resp.Result)
		}
		return nil
	}
}

// ofEach reads one figure of each process (localproc.CPUTime,
// localproc.ContextSwitches), by name.
func ofEach[T any](pids map[string]int, read func(pid int) T) map[string]T {
	out := make(map[string]T, len(pids))
	for name, pid := range pids {
		out[name] = read(pid)
	}
	return out
}

// measureClosed runs the closed loops: at each concurrency, the sidecar
// and the direct client for closedFor each, in alternating turns,
// repeats times.
func measureClosed(ctx context.Context, p plan, sb *sandboxProc, sc *sidecarProc, prof *profiler, r *results) error {
	direct := directJSPay(sb.direct())
	// Warm both paths: connections, plugin, statement caches.
	if res := closedLoop(ctx, 8, p.closedFor/4, sc.pool.create); res.firstErr != nil {
		return fmt.Errorf("warm-up: %w", res.firstErr)
	}
	if res := closedLoop(ctx, 8, p.closedFor/4, direct); res.firstErr != nil {
		return fmt.Errorf("warm-up direct: %w", res.firstErr)
	}
	// Long enough for the 10 ms ticks of /proc to resolve a few ms per
	// second over the host and its plugins.
	r.idleFor = 2 * p.closedFor
	r.idleProcs = len(sc.pids())
	r.idleCPU = idleCPU(ctx, sc.pids(), r.idleFor)
	r.closed = map[int][]closedRun{}
	for rep := range p.repeats {
		rsa, err := measureRSA(p)
		if err != nil {
			return fmt.Errorf("rsa: %w", err)
		}
		r.rsa = append(r.rsa, rsa)
		for _, c := range concurrencies {
			wait := func() {}
			if rep == 0 && c == 8 {
				wait = prof.start(ctx, sc, "host-create-c8", 2*p.closedFor)
			}
			run, err := closedInterleaved(ctx, p, c, sb, sc, direct)
			run.rsa = rsa
			wait()
			if err != nil {
				return err
			}
			r.closed[c] = append(r.closed[c], run)
			log.Printf("  repeat %d, concurrency %d: sidecar %.0f/s (%d errors), direct %.0f/s (%d errors), host+plugins %.2f ms CPU per create",
				rep+1, c, run.sidecar.perSecond(), run.sidecar.errs, run.direct.perSecond(), run.direct.errs, run.sidecarCPU())
		}
	}
	return nil
}

// turns is how many turns the sidecar and the direct client take in
// each repeat: on a shared machine whose load drifts, alternating short
// turns puts both under the same load.
const turns = 4

// closedInterleaved runs one repeat at concurrency c: the sidecar and the
// direct client in alternating turns of closedFor/turns, summed.
func closedInterleaved(ctx context.Context, p plan, c int, sb *sandboxProc, sc *sidecarProc, direct op) (closedRun, error) {
	pids := sc.pids()
	pids["sandbox"] = sb.proc.PID()
	used := map[string]time.Duration{}
	switches := map[string]int64{}
	var client, sandboxDirect time.Duration
	var run closedRun
	turn := p.closedFor / turns
	for range turns {
		before, switchedBefore := ofEach(pids, localproc.CPUTime), ofEach(pids, localproc.ContextSwitches)
		side := closedLoop(ctx, c, turn, sc.pool.create)
		after, switchedAfter := ofEach(pids, localproc.CPUTime), ofEach(pids, localproc.ContextSwitches)
		for name := range pids {
			used[name] += after[name] - before[name]
			switches[name] += switchedAfter[name] - switchedBefore[name]
		}
		run.sidecar = run.sidecar.add(side)
		self, sbBefore := processCPU(), localproc.CPUTime(sb.proc.PID())
		run.direct = run.direct.add(closedLoop(ctx, c, turn, direct))
		client += processCPU() - self
		sandboxDirect += localproc.CPUTime(sb.proc.PID()) - sbBefore
	}
	if run.sidecar.ops == 0 {
		return run, fmt.Errorf("sidecar at concurrency %d: %w", c, run.sidecar.firstErr)
	}
	if run.direct.ops == 0 {
		return run, fmt.Errorf("direct at concurrency %d: %w", c, run.direct.firstErr)
	}
	run.cpu = map[string]float64{"client": ms(client) / float64(run.direct.ops),
		"sandbox (direct)": ms(sandboxDirect) / float64(run.direct.ops)}
	run.switches = map[string]float64{}
	for name, d := range used {
		run.cpu[name] = ms(d) / float64(run.sidecar.ops)
		run.switches[name] = float64(switches[name]) / float64(run.sidecar.ops)
	}
	return run, nil
}

// ratio is the CPU per create of the host and every plugin divided by
// the repeat's RSA baseline.
func (c closedRun) ratio() float64 { return c.sidecarCPU() / c.rsa }

// sidecarCPU is the CPU per create of the host and every plugin, in ms.
func (c closedRun) sidecarCPU() float64 {
	sum := 0.0
	for name, v := range c.cpu {
		if name != "sandbox" && name != "client" && name != "sandbox (direct)" {
			sum += v
		}
	}
	return sum
}

// openRun is one repeat of the open loop at 50/s.
type openRun struct {
	sidecar, direct []time.Duration
}

// openRate is the open loop's rate of creates per second.
const openRate = 50

// measureOpen runs the open loop at 50/s through the sidecar and straight
// to the sandbox, in alternating turns, repeats times.
func measureOpen(ctx context.Context, p plan, sb *sandboxProc, sc *sidecarProc, r *results) error {
	direct := directJSPay(sb.direct())
	for rep := range p.repeats {
		var side, base []time.Duration
		for range turns {
			l, err := openLoop(ctx, openRate, p.openFor/turns, sc.pool.create)
			if err != nil {
				return fmt.Errorf("sidecar: %w", err)
			}
			side = append(side, l...)
			if l, err = openLoop(ctx, openRate, p.openFor/turns, direct); err != nil {
				return fmt.Errorf("direct: %w", err)
			}
			base = append(base, l...)
		}
		r.open = append(r.open, openRun{sidecar: side, direct: base})
		log.Printf("  repeat %d: sidecar p50 %s p99 %s, direct p50 %s p99 %s", rep+1,
			percentile(side, 50), percentile(side, 99), percentile(base, 50), percentile(base, 99))
	}
	return nil
}

// idleCPU is the CPU the host and its plugins use per second while no
// request arrives, in ms, measured over d: the share of CPU per create
// that does not depend on creates.
func idleCPU(ctx context.Context, pids map[string]int, d time.Duration) float64 {
	before := ofEach(pids, localproc.CPUTime)
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	after := ofEach(pids, localproc.CPUTime)
	var used time.Duration
	for name := range pids {
		used += after[name] - before[name]
	}
	return ms(used) / d.Seconds()
}
