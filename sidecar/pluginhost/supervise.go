package pluginhost

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// healthTimeout bounds the health check made after a failed call.
const healthTimeout = 2 * time.Second

// supervise watches one plugin until ctx ends: when its process exits, a
// failed call finds it no longer answering, or its periodic health check
// through the flow's own service fails or times out (a live but hung
// plugin), the plugin is marked unavailable, killed, and restarted with
// exponential backoff.
func (m *Manager) supervise(ctx context.Context, inst *instance) {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     m.opts.backoffInitial,
		RandomizationFactor: 0.2,
		Multiplier:          2,
		MaxInterval:         m.opts.backoffMax,
	}
	b.Reset()
	health := time.NewTicker(m.opts.healthInterval)
	defer health.Stop()
	for {
		var reason string
		grace := m.opts.killGrace
		// The process's exit is an event, not something polled for: an
		// idle host wakes for none of its plugins until their health
		// checks, and a plugin that dies is restarted at once.
		exited := inst.exitedChan()
		select {
		case <-ctx.Done():
			return
		case <-exited:
			if inst.exitedChan() != exited {
				continue // an older process; the current one runs
			}
			reason = "process exited"
		case <-inst.kick:
			if inst.healthy(ctx, healthTimeout) {
				continue
			}
			reason = "not answering"
		case <-inst.restart:
			reason = "it could not take its new settings"
		case <-health.C:
			err := inst.check(ctx, m.opts.healthTimeout)
			if err == nil || ctx.Err() != nil {
				continue
			}
			reason = "health check failed: " + err.Error()
			// A hung process answers nothing, not even a request to stop.
			grace = 0
		}
		if ctx.Err() != nil {
			return
		}

		inst.mu.RLock()
		ranFor := time.Since(inst.startedAt)
		inst.mu.RUnlock()
		if ranFor > m.opts.backoffMax {
			b.Reset()
		}
		inst.markDown(m.metrics.up.WithLabelValues(inst.cfg.Name), grace)
		inst.logger.Warn("plugin down; restarting", "reason", reason, "ran_for", ranFor.Round(time.Millisecond))

		for attempt := 1; ; attempt++ {
			wait := b.NextBackOff()
			timer := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
			}
			err := m.launch(ctx, inst)
			if ctx.Err() != nil {
				// Close is under way; it stops whatever was launched.
				return
			}
			if err != nil {
				inst.logger.Error("plugin restart failed", "attempt", attempt, "error", err)
				continue
			}
			m.metrics.restarts.WithLabelValues(inst.cfg.Name).Inc()
			inst.logger.Info("plugin restarted", "attempt", attempt)
			break
		}
		// A kick that arrived while the plugin was down concerned the
		// old process.
		select {
		case <-inst.kick:
		default:
		}
	}
}
