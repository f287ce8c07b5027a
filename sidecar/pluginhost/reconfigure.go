package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/paysidecar/paysidecar/sdk/plugin"
)

// Reconfigure gives the flow name new settings (what its configuration
// lists, before the schema's defaults) while it runs. They are checked
// against the schema the plugin declared, as at launch, and handed to the
// running process through Configure, which takes them whole or not at all:
// when they do not fit the schema or the plugin refuses them, Reconfigure
// returns an error and the plugin keeps the settings it had. A plugin that
// cannot be reached (hung, or its process died during the call) is
// restarted with the new settings, and one that is down gets them when the
// supervisor restarts it; Reconfigure returns nil for both. Every later
// restart uses the new settings. Calls in flight are not interrupted: the
// plugin stores its configuration whole (the contract asks it to), so each
// call sees the old settings or the new.
func (m *Manager) Reconfigure(ctx context.Context, name string, settings map[string]string) error {
	inst, ok := m.byName[name]
	if !ok || inst.isRefused() {
		return fmt.Errorf("pluginhost: %w: %q", ErrUnknownFlow, name)
	}
	m.mu.Lock()
	running := m.started && !m.closed
	m.mu.Unlock()
	if !running {
		return fmt.Errorf("pluginhost: %w: the plugins are not running", ErrUnavailable)
	}
	settings = maps.Clone(settings)
	if settings == nil {
		settings = map[string]string{}
	}

	inst.launchMu.Lock()
	defer inst.launchMu.Unlock()
	inst.mu.RLock()
	info, flow, version := inst.info, inst.flow, inst.apiVersion
	inst.mu.RUnlock()
	keep := func() {
		inst.mu.Lock()
		inst.cfg.Settings = settings
		inst.mu.Unlock()
	}
	applied, err := info.Settings.Apply(settings, m.opts.environment)
	if err != nil {
		return fmt.Errorf("pluginhost: plugin %s: settings: %w", name, err)
	}
	merchants, err := applyMerchants(info, settings, inst.cfg.Merchants, m.opts.environment)
	if err != nil {
		return fmt.Errorf("pluginhost: plugin %s: settings: %w", name, err)
	}
	if flow == nil {
		keep()
		inst.logger.Info("plugin down; it takes its new settings when it restarts")
		return nil
	}
	// The new secrets are scrubbed from what the plugin logs from the
	// moment it may know them; the old ones until it no longer does.
	old, _ := info.Settings.Apply(inst.cfg.Settings, m.opts.environment)
	inst.redact.set(append(append(secretValues(info, old), secretValues(info, applied)...), merchantSecrets(info, merchants)...))
	callCtx, cancel := context.WithTimeout(ctx, m.opts.startTimeout)
	defer cancel()
	err = flow.Configure(callCtx, m.flowConfig(inst, applied, merchants, version))
	var refused *plugin.Error
	switch {
	case err == nil:
		keep()
		inst.redact.set(append(secretValues(info, applied), merchantSecrets(info, merchants)...))
		inst.logger.Info("plugin reconfigured")
		return nil
	case errors.As(err, &refused) && !errors.Is(err, plugin.ErrTransport) && ctx.Err() == nil:
		inst.redact.set(append(secretValues(info, old), merchantSecrets(info, merchants)...))
		return fmt.Errorf("pluginhost: plugin %s refused its new settings and keeps those it had: %w", name, err)
	case ctx.Err() != nil:
		// Not the plugin's fault: whoever asked gave up. Whether the
		// plugin took the settings is unknown, so it starts again with
		// them.
		keep()
		inst.logger.Warn("plugin reconfiguration cut short; restarting it with its new settings", "error", err)
	default:
		keep()
		inst.logger.Warn("plugin could not take its new settings; restarting it with them", "error", err)
	}
	select {
	case inst.restart <- struct{}{}:
	default:
	}
	return nil
}
