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
	// "sandbox"; "client" is this process during the direct loop, per
	// order.
	cpu map[string]float64
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

// cpuOf returns the CPU time each process has used so far.
func cpuOf(pids map[string]int) map[string]time.Duration {
	out := make(map[string]time.Duration, len(pids))
	for name, pid := range pids {
		out[name] = localproc.CPUTime(pid)
	}
	return out
}

// measureClosed runs the closed loops: at each concurrency, the sidecar
// for closedFor then the direct client for closedFor, repeats times.
func measureClosed(ctx context.Context, p plan, sb *sandboxProc, sc *sidecarProc, r *results) error {
	direct := directJSPay(sb.direct())
	// Warm both paths: connections, plugin, statement caches.
	if res := closedLoop(ctx, 8, p.closedFor/4, sc.pool.create); res.firstErr != nil {
		return fmt.Errorf("warm-up: %w", res.firstErr)
	}
	if res := closedLoop(ctx, 8, p.closedFor/4, direct); res.firstErr != nil {
		return fmt.Errorf("warm-up direct: %w", res.firstErr)
	}
	r.closed = map[int][]closedRun{}
	for rep := range p.repeats {
		for _, c := range concurrencies {
			pids := sc.pids()
			pids["sandbox"] = sb.proc.PID()
			before := cpuOf(pids)
			side := closedLoop(ctx, c, p.closedFor, sc.pool.create)
			after := cpuOf(pids)
			if side.firstErr != nil && side.ops == 0 {
				return fmt.Errorf("sidecar at concurrency %d: %w", c, side.firstErr)
			}
			run := closedRun{sidecar: side, cpu: map[string]float64{}}
			for name := range pids {
				run.cpu[name] = ms(after[name]-before[name]) / float64(max(side.ops, 1))
			}
			self := processCPU()
			run.direct = closedLoop(ctx, c, p.closedFor, direct)
			if run.direct.firstErr != nil && run.direct.ops == 0 {
				return fmt.Errorf("direct at concurrency %d: %w", c, run.direct.firstErr)
			}
			run.cpu["client"] = ms(processCPU()-self) / float64(max(run.direct.ops, 1))
			r.closed[c] = append(r.closed[c], run)
			log.Printf("  repeat %d, concurrency %d: sidecar %.0f/s (%d errors), direct %.0f/s (%d errors), host+plugins %.2f ms CPU per create",
				rep+1, c, side.perSecond(), side.errs, run.direct.perSecond(), run.direct.errs, run.sidecarCPU())
		}
	}
	return nil
}

// sidecarCPU is the CPU per create of the host and every plugin, in ms.
func (c closedRun) sidecarCPU() float64 {
	sum := 0.0
	for name, v := range c.cpu {
		if name != "sandbox" && name != "client" {
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

// measureOpen runs the open loop at 50/s through the sidecar and then
// straight to the sandbox, repeats times.
func measureOpen(ctx context.Context, p plan, sb *sandboxProc, sc *sidecarProc, r *results) error {
	direct := directJSPay(sb.direct())
	for rep := range p.repeats {
		side, err := openLoop(ctx, openRate, p.openFor, sc.pool.create)
		if err != nil {
			return fmt.Errorf("sidecar: %w", err)
		}
		base, err := openLoop(ctx, openRate, p.openFor, direct)
		if err != nil {
			return fmt.Errorf("direct: %w", err)
		}
		r.open = append(r.open, openRun{sidecar: side, direct: base})
		log.Printf("  repeat %d: sidecar p50 %s p99 %s, direct p50 %s p99 %s", rep+1,
			percentile(side, 50), percentile(side, 99), percentile(base, 50), percentile(base, 99))
	}
	return nil
}
