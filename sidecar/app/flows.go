package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"strings"

	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sidecar/config"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/pluginhost"
)

// flowConfigs resolves the flows to run: every plugin binary discovered in
// plugins.dir, under its file name, and every flow plugins.flows names
// with a path, each with its configuration, minus those disabled. A flow
// configured without a path whose binary is not in plugins.dir is a
// problem. skipped lists executables in plugins.dir whose names are not
// flow names.
func flowConfigs(p config.PluginsConfig) (out []pluginhost.PluginConfig, skipped []string, err error) {
	found := map[string]string{}
	if p.Dir != "" {
		discovered, skip, err := pluginhost.Discover(p.Dir)
		if err != nil {
			return nil, nil, fmt.Errorf("plugins.dir %s: %w", p.Dir, err)
		}
		skipped = skip
		for _, d := range discovered {
			found[d.Name] = d.Path
		}
	}
	names := map[string]bool{}
	for name := range found {
		names[name] = true
	}
	for name := range p.Flows {
		names[name] = true
	}
	cerr := &config.Error{}
	for _, name := range sortedKeys(names) {
		f := p.Flows[name]
		if !f.IsEnabled() {
			continue
		}
		path := f.Path
		if path == "" {
			path = found[name]
		}
		if path == "" {
			cerr.Problems = append(cerr.Problems, config.Problem{
				Key:     "plugins.flows." + name,
				Message: fmt.Sprintf("no binary %s in plugins.dir (%s) and no path; set plugins.flows.%s.path or enabled: false", name, p.Dir, name),
			})
			continue
		}
		out = append(out, pluginhost.PluginConfig{
			Name: name, Path: path, SHA256: f.SHA256, Settings: maps.Clone(f.Settings), Keys: f.Keys,
		})
	}
	if len(cerr.Problems) > 0 {
		return nil, skipped, cerr
	}
	if len(out) == 0 {
		return nil, skipped, &config.Error{Problems: []config.Problem{{
			Key:     "plugins",
			Message: fmt.Sprintf("no flow to run: plugins.dir (%s) holds no plugin binary and plugins.flows enables none with a path", p.Dir),
		}}}
	}
	return out, skipped, nil
}

// withMerchants gives each flow the settings of its own that a service
// provider's merchants have of it.
func withMerchants(cfgs []pluginhost.PluginConfig, merchants map[string]config.MerchantConfig) {
	for i := range cfgs {
		for id, mc := range merchants {
			f, ok := mc.Flows[cfgs[i].Name]
			if !ok {
				continue
			}
			if cfgs[i].Merchants == nil {
				cfgs[i].Merchants = map[string]map[string]string{}
			}
			cfgs[i].Merchants[id] = maps.Clone(f.Settings)
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// hostKeys returns the keys flows may use through the host's services:
// the merchant's and the upstream's, and those configured under keys.
func hostKeys(cfg config.Config, k keys) (map[string]pluginhost.Key, error) {
	out := map[string]pluginhost.Key{
		config.KeyMerchant: {Private: k.merchant},
		config.KeyUpstream: {Public: k.upstream},
	}
	for name, kc := range cfg.Keys {
		var key pluginhost.Key
		var err error
		if kc.PrivateKey != "" {
			if key.Private, err = nkp.ParsePrivateKey(kc.PrivateKey); err != nil {
				return nil, fmt.Errorf("keys.%s.private_key: %w", name, err)
			}
		}
		if kc.PublicKey != "" {
			if key.Public, err = nkp.ParsePublicKey(kc.PublicKey); err != nil {
				return nil, fmt.Errorf("keys.%s.public_key: %w", name, err)
			}
		}
		out[name] = key
	}
	return out, nil
}

// environment tells the plugins whether they run against the sandbox: when
// the host signs with the sandbox's published keys or runs the sandbox
// itself. The sandbox is then the upstream, and emulates the channels'
// endpoints too.
func environment(cfg config.Config, sandbox bool) plugin.Environment {
	if !sandbox {
		return plugin.Environment{}
	}
	return plugin.Environment{Sandbox: true, SandboxURL: cfg.Upstream.BaseURL}
}

// usesSandboxKeys reports whether the host falls back to the sandbox's
// published keys, as loadKeys does.
func usesSandboxKeys(cfg config.Config) bool {
	return (cfg.Upstream.PrivateKey == "" || cfg.Upstream.PublicKey == "") && cfg.SandboxKeysAllowed()
}

// CheckFlows checks each flow the configuration runs against the settings
// schema its plugin declares, starting each plugin only to read its Info:
// no plugin is configured and no traffic flows. It returns a *config.Error
// with a problem per bad setting (plugins.flows.<flow>.settings.<key>) and
// per plugin that cannot be started or read.
func CheckFlows(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfgs, _, err := flowConfigs(cfg.Plugins)
	withMerchants(cfgs, cfg.Merchants)
	if err != nil {
		return err
	}
	var opts []pluginhost.Option
	if cfg.Plugins.SocketDir != "" {
		opts = append(opts, pluginhost.WithSocketDir(cfg.Plugins.SocketDir))
	}
	inspections, err := pluginhost.Inspect(ctx, cfgs, logger, opts...)
	if err != nil {
		return err
	}
	env := environment(cfg, usesSandboxKeys(cfg))
	cerr := &config.Error{}
	for i, in := range inspections {
		key := "plugins.flows." + in.Name
		if in.Err != nil {
			msg := fmt.Sprintf("cannot read the plugin's settings: %v", in.Err)
			if pluginhost.IsVersionError(in.Err) {
				msg = "the plugin would be refused: " + in.Err.Error()
			}
			cerr.Problems = append(cerr.Problems, config.Problem{Key: key, Message: msg})
			continue
		}
		_, err := in.Info.Settings.Apply(cfgs[i].Settings, env)
		var se *plugin.SettingsError
		if errors.As(err, &se) {
			for _, p := range se.Problems {
				cerr.Problems = append(cerr.Problems, config.Problem{Key: key + ".settings." + p.Key, Message: p.Message})
			}
		}
		for _, id := range sortedMerchants(cfgs[i].Merchants) {
			_, err := in.Info.Settings.ApplyMerchant(id, cfgs[i].Settings, cfgs[i].Merchants[id], env)
			if errors.As(err, &se) {
				for _, p := range se.Problems {
					// p.Key is merchants.<id>.<setting>.
					setting := p.Key[strings.LastIndex(p.Key, ".")+1:]
					if _, own := cfgs[i].Merchants[id][setting]; !own {
						continue // a problem of the flow's own settings, reported above
					}
					cerr.Problems = append(cerr.Problems, config.Problem{Key: "merchants." + id + ".flows." + in.Name + ".settings." + setting, Message: p.Message})
				}
			}
		}
	}
	if len(cerr.Problems) > 0 {
		return cerr
	}
	return nil
}

func sortedMerchants(m map[string]map[string]string) []string {
	out := make([]string, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}
