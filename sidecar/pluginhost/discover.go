package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"

	"github.com/paysidecar/paysidecar/sdk/plugin"
)

// Discovered is a plugin binary found in a plugin directory.
type Discovered struct {
	// Name is the flow's name: the file's name.
	Name string
	// Path is the binary.
	Path string
}

// Discover lists the plugin binaries in dir: every executable regular file
// (or link to one) whose name is a valid flow name (plugin.ValidName), in
// name order. Other files, such as a SHA256SUMS list, are left out and
// returned in skipped when they are executable, so that a misnamed binary
// does not go unnoticed.
func Discover(dir string) (found []Discovered, skipped []string, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("pluginhost: read plugin directory: %w", err)
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		fi, err := os.Stat(path)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			continue
		}
		if !plugin.ValidName(e.Name()) {
			skipped = append(skipped, e.Name())
			continue
		}
		found = append(found, Discovered{Name: e.Name(), Path: path})
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Name < found[j].Name })
	return found, skipped, nil
}

// Inspection is what starting a plugin only to read its Info found.
type Inspection struct {
	// Name is the flow's configured name.
	Name string
	// Info is what the plugin reported, when it started.
	Info plugin.Info
	// Err says why the plugin could not be inspected: its binary, its
	// checksum, its contract version (a *VersionError) or a name that
	// differs from the configured one.
	Err error
}

// Inspect starts each configured plugin only to read its Info, then stops
// it: the plugin is neither configured nor called otherwise, so a
// configuration can be checked against the plugins' settings schemas
// without starting traffic. Binaries are held to their checksums as at
// run time.
func Inspect(ctx context.Context, cfgs []PluginConfig, logger *slog.Logger, opts ...Option) ([]Inspection, error) {
	m, err := New(cfgs, logger, nil, opts...)
	if err != nil {
		return nil, err
	}
	if err := m.openRun(); err != nil {
		return nil, err
	}
	defer m.run.close()
	out := make([]Inspection, 0, len(m.order))
	for _, inst := range m.order {
		in := Inspection{Name: inst.cfg.Name}
		in.Info, in.Err = m.inspect(ctx, inst)
		out = append(out, in)
	}
	return out, nil
}

func (m *Manager) inspect(ctx context.Context, inst *instance) (plugin.Info, error) {
	if err := m.prepare(inst); err != nil {
		return plugin.Info{}, err
	}
	client, _, flow, _, err := m.start(inst)
	if err != nil {
		return plugin.Info{}, err
	}
	defer client.Kill()
	callCtx, cancel := context.WithTimeout(ctx, m.opts.startTimeout)
	defer cancel()
	info, err := flow.Info(callCtx)
	if err != nil {
		return plugin.Info{}, fmt.Errorf("plugin info: %w", err)
	}
	if info.Name != inst.cfg.Name {
		return info, fmt.Errorf("binary %s is the plugin %q, not %q", inst.path, info.Name, inst.cfg.Name)
	}
	return info, nil
}

// IsVersionError reports whether err says a plugin speaks no contract
// version the host knows.
func IsVersionError(err error) bool {
	var ve *VersionError
	return errors.As(err, &ve)
}
