package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/paysidecar/paysidecar/sidecar/api"
	"github.com/paysidecar/paysidecar/sidecar/config"
	"github.com/paysidecar/paysidecar/sidecar/delivery"
	"github.com/paysidecar/paysidecar/sidecar/payments"
	"github.com/paysidecar/paysidecar/sidecar/pluginhost"
	"github.com/paysidecar/paysidecar/sidecar/reload"
	"github.com/paysidecar/paysidecar/sidecar/requery"
	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

// live are the parts whose settings change while the sidecar runs.
type live struct {
	level         *slog.LevelVar
	api           *api.Server
	upstreamCalls *telemetry.UpstreamCalls
	delivery      *delivery.Dispatcher // nil when webhook.url was empty at start
	requery       *requery.Requerier
	payments      *payments.Service
	plugins       *pluginhost.Manager
}

// liveParts declares what changes without a restart, for the
// configuration started is running with: the log level, the app API's
// token and passthrough list, the webhook's URL, secret and schedule, the
// reverse query's schedule, and the settings of each running flow. Every
// other setting needs a restart.
func liveParts(started config.Config, l live) []reload.Part {
	parts := []reload.Part{
		{Name: "log", Keys: []string{"log.level"}, Apply: func(_ context.Context, cfg config.Config) error {
			l.level.Set(telemetry.ParseLevel(cfg.Log.Level))
			return nil
		}},
		{Name: "app API token", Keys: []string{"api.token", "api.token_file"}, Apply: func(_ context.Context, cfg config.Config) error {
			// The file's api.listen may have changed too, but the API
			// keeps listening where it started until a restart: no token
			// there is allowed on loopback only.
			if cfg.API.Token == "" && !config.LoopbackListen(started.API.Listen) {
				return fmt.Errorf("the app API listens on %s, which needs a token until a restart moves it: %w", started.API.Listen, reload.ErrRestart)
			}
			l.api.SetToken(cfg.API.Token)
			return nil
		}},
		{Name: "passthrough", Keys: []string{"upstream.passthrough"}, Apply: func(_ context.Context, cfg config.Config) error {
			l.upstreamCalls.Declare(cfg.Upstream.Passthrough)
			l.api.SetPassthrough(cfg.Upstream.Passthrough)
			return nil
		}},
		{Name: "webhook delivery", Keys: []string{"webhook.url", "webhook.secret", "webhook.secret_file", "webhook.schedule"},
			Apply: func(_ context.Context, cfg config.Config) error {
				switch {
				case l.delivery == nil && cfg.Webhook.URL != "":
					return fmt.Errorf("webhook.url was empty at start, so delivery is not running: %w", reload.ErrRestart)
				case l.delivery == nil:
					return nil
				case cfg.Webhook.URL == "":
					return fmt.Errorf("an empty webhook.url stops delivery: %w", reload.ErrRestart)
				}
				return l.delivery.SetTarget(cfg.Webhook.URL, cfg.Webhook.Secret, cfg.Webhook.Schedule)
			}},
		{Name: "reverse query", Keys: []string{"requery.schedule"}, Apply: func(_ context.Context, cfg config.Config) error {
			if err := l.requery.SetSchedule(cfg.Requery.Schedule); err != nil {
				return err
			}
			if len(cfg.Requery.Schedule) > 0 {
				l.payments.SetFirstQueryAfter(cfg.Requery.Schedule[0])
			}
			return nil
		}},
	}
	// A flow's settings go to its running plugin (pluginhost.Manager
	// .Reconfigure: Configure, or a restart when the plugin cannot take
	// them). Enabling, disabling, adding a flow, or changing its binary,
	// checksum or keys needs a restart.
	for _, info := range l.plugins.Infos() {
		name := info.Name
		parts = append(parts, reload.Part{
			Name: "flow " + name,
			Keys: []string{"plugins.flows." + name + ".settings.", "plugins.flows." + name + ".settings_files."},
			Apply: func(ctx context.Context, cfg config.Config) error {
				return l.plugins.Reconfigure(ctx, name, cfg.Plugins.Flows[name].Settings)
			},
		})
	}
	return parts
}
