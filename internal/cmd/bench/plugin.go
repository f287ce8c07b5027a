package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/paysidecar/paysidecar/internal/localproc"
)

// pluginRun is what was measured of the flow plugin.
type pluginRun struct {
	payments int
	rssMiB   float64
	ready    []float64 // start → ready, ms, one per repeat
}

// measurePlugin reports the flow plugin's resident memory as the pool read
// it when the p.rssPayments-th payment went through (creating payments
// until then if the run made fewer), then kills the plugin repeats times and
// times each new process from its start (its /proc start time) until the
// host reports it up (paysidecar_plugin_up), polling every 2 ms.
func measurePlugin(ctx context.Context, p plan, sc *sidecarProc, r *results) error {
	if err := sc.pool.topUp(ctx, p.rssPayments); err != nil {
		return err
	}
	pid := localproc.ChildNamed(sc.proc.PID(), flowName)
	if pid == 0 {
		return fmt.Errorf("no %s plugin process", flowName)
	}
	sc.pool.mu.Lock()
	r.plugin.payments, r.plugin.rssMiB = sc.pool.rssAt, sc.pool.rss
	sc.pool.mu.Unlock()
	log.Printf("  %s RSS %.1f MiB after %d payments", flowName, r.plugin.rssMiB, r.plugin.payments)
	up := fmt.Sprintf(`paysidecar_plugin_up{plugin=%q}`, flowName)
	for rep := range p.repeats {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return fmt.Errorf("kill plugin: %w", err)
		}
		var next int
		var readyAt time.Duration
		deadline := time.Now().Add(time.Minute)
		for readyAt == 0 {
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not back up within a minute", flowName)
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			time.Sleep(2 * time.Millisecond)
			if next == 0 || next == pid {
				next = localproc.ChildNamed(sc.proc.PID(), flowName)
				continue
			}
			m, err := localproc.Scrape(sc.admin+"/metrics", up)
			if err == nil && m[up] == 1 {
				readyAt = sinceBoot()
			}
		}
		st, err := localproc.ReadStat(next)
		if err != nil {
			return err
		}
		r.plugin.ready = append(r.plugin.ready, ms(readyAt-st.StartedAfterBoot))
		log.Printf("  repeat %d: start → ready %.0f ms", rep+1, r.plugin.ready[rep])
		pid = next
	}
	return nil
}

// sinceBoot is the time since boot from /proc/uptime, on the clock (and
// at the 10 ms resolution) of /proc start times.
func sinceBoot() time.Duration {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	s, _ := strconv.ParseFloat(f[0], 64)
	return time.Duration(s * float64(time.Second))
}
