package plugin

import (
	"context"
	"fmt"
)

// Configure is how a host configures a flow it started: it reads the
// flow's Info, applies the schema to the raw settings in c.Environment
// (see Schema.Apply), and calls f.Configure with the result and the rest
// of c. It returns the Info it read. A *SettingsError lists every setting
// the schema refused; the plugin is then not configured.
func Configure(ctx context.Context, f Flow, raw map[string]string, c Config) (Info, error) {
	info, err := f.Info(ctx)
	if err != nil {
		return Info{}, fmt.Errorf("plugin info: %w", err)
	}
	c.Settings, err = info.Settings.Apply(raw, c.Environment)
	if err != nil {
		return info, err
	}
	if err := f.Configure(ctx, c); err != nil {
		return info, fmt.Errorf("configure: %w", err)
	}
	return info, nil
}
