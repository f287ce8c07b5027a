package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/app"
	"github.com/paysidecar/paysidecar/sidecar/config"
	"github.com/paysidecar/paysidecar/sidecar/keygen"
)

// loadConfig loads and validates the configuration: the one check that
// both run and config check make.
func loadConfig(cmd *cobra.Command) (config.Config, error) {
	path, _ := cmd.Flags().GetString("config")
	return config.Load(path, nil)
}

func newRunCommand() *cobra.Command {
	var withSandbox bool
	var shutdownDelay time.Duration
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the sidecar: app API, notification ingress, delivery, reverse query and flow plugins",
		Long: `Run the sidecar. With no configuration it runs on embedded defaults: the
sandbox upstream on 127.0.0.1:8900 (start it with --sandbox, or separately
with "paysidecar sandbox"), SQLite in .paysidecar/, and every flow plugin
in bin/plugins.

The configuration is read again when its file or a secret file changes, and
on SIGHUP: the log level, the app API's token and passthrough list, the
webhook's URL, secret and schedule, the reverse query's schedule and the flows'
settings change at once; any other change is logged as needing a restart.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// SIGHUP reloads the configuration; one that comes while the
			// sidecar starts waits for the watcher rather than ending the
			// process.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			ctx, stop := delayStop(cmd.Context(), shutdownDelay, cmd.ErrOrStderr())
			defer stop()
			path, _ := cmd.Flags().GetString("config")
			return app.Run(ctx, cfg, app.Options{
				WithSandbox: withSandbox, Version: version, Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr(),
				LoadConfig: func() (config.Config, error) { return loadConfig(cmd) }, ConfigPath: path, ReloadSignals: hup,
			})
		},
	}
	cmd.Flags().BoolVar(&withSandbox, "sandbox", false, "also run the sandbox upstream in this process (sandbox.listen)")
	cmd.Flags().DurationVar(&shutdownDelay, "shutdown-delay", 0,
		"on SIGTERM, keep serving this long before draining, so an application stopped at the same time can finish with the sidecar (Kubernetes before 1.29)")
	return cmd
}

// delayStop returns a context that ends delay after parent ends (at once
// when delay is zero), and a function that releases it.
func delayStop(parent context.Context, delay time.Duration, log io.Writer) (context.Context, context.CancelFunc) {
	if delay <= 0 {
		return context.WithCancel(parent)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	go func() {
		select {
		case <-parent.Done():
		case <-ctx.Done():
			return
		}
		fmt.Fprintf(log, "stop requested: serving for %s more before draining (--shutdown-delay)\n", delay)
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		cancel()
	}()
	return ctx, cancel
}

func newSandboxCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "sandbox",
		Short: "Run the sandbox upstream alone (sandbox.listen)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			return app.RunSandbox(cmd.Context(), cfg, app.Options{Version: version, Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr()})
		},
	}
}

func newKeygenCommand() *cobra.Command {
	var dir string
	var bits int
	var force bool
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Write a new merchant RSA key pair as the console hands them out (base64 DER) and as PEM",
		RunE: func(cmd *cobra.Command, _ []string) error {
			var opts []keygen.Option
			if force {
				opts = append(opts, keygen.Force())
			}
			files, err := keygen.Write(dir, bits, opts...)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "wrote the merchant key pair:\n  %s\n  %s\n  %s\n  %s\n", files.PrivateKey, files.PublicKey, files.PrivatePEM, files.PublicPEM)
			fmt.Fprintf(out, "Upload this public key in the console; keep the private key files (mode 0600) secret:\n%s\n", files.PublicBase64)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", ".", "directory to write the key files into")
	cmd.Flags().IntVar(&bits, "bits", 2048, "RSA key size in bits")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing key files")
	return cmd
}

func newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Inspect the configuration"}
	cmd.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Load and validate the configuration, flows' settings included; report every problem with its key",
		Long: `Load and validate the configuration exactly as "paysidecar run" does before
it starts anything: the file, the environment, secret files, and every
check the sidecar's parts make of their settings. Each flow plugin is then
started only to read the settings it declares, which the flow's settings are
checked against; no plugin is configured and no traffic flows. Exit status 2
and every problem with its key (and line in the file) when it is not valid.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			for _, h := range cfg.Hints {
				fmt.Fprintln(cmd.ErrOrStderr(), "note:", h)
			}
			if err := app.CheckFlows(cmd.Context(), cfg, nil); err != nil {
				return err
			}
			// The hash is the one a running sidecar logs and exports as
			// paysidecar_config_info once it runs with this configuration.
			fmt.Fprintf(cmd.OutOrStdout(), "configuration is valid (hash %s)\n", cfg.Hash())
			return nil
		},
	})
	return cmd
}

func newEventsCommand() *cobra.Command {
	var apiURL, token string
	cmd := &cobra.Command{
		Use:   "events",
		Short: "List and replay events through a running sidecar's app API",
		Long: `List and replay events through a running sidecar's app API. The API's
address and token come from the configuration (api.listen, api.token or
api.token_file), as the sidecar reads them, unless --api and --token are
given.`,
	}
	cmd.PersistentFlags().StringVar(&apiURL, "api", "", "app API base URL (default: http:// + api.listen)")
	cmd.PersistentFlags().StringVar(&token, "token", "", "API token (default: api.token or the content of api.token_file)")
	clientFor := func(cmd *cobra.Command) (*client.Client, error) {
		base, tok := apiURL, token
		if base == "" || tok == "" {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return nil, err
			}
			if base == "" {
				base = "http://" + cfg.API.Listen
			}
			if tok == "" {
				tok = cfg.API.Token
			}
		}
		return client.New(base, client.WithToken(tok), client.WithHTTPClient(&http.Client{Timeout: 30 * time.Second})), nil
	}
	list := newEventsListCommand(clientFor)
	var all bool
	replay := &cobra.Command{
		Use:   "replay {event-id ... | --all}",
		Short: "Send events again: the named ones, or with --all every dead letter",
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case all && len(args) > 0:
				return usageError{"give event ids or --all, not both"}
			case !all && len(args) == 0:
				return usageError{"name the events to replay (their ids, from \"paysidecar events list\"), or give --all to replay every dead letter"}
			}
			c, err := clientFor(cmd)
			if err != nil {
				return err
			}
			return replayEvents(cmd.Context(), cmd, c, args, all)
		},
	}
	replay.Flags().BoolVar(&all, "all", false, "replay every dead letter")
	cmd.AddCommand(list, replay)
	return cmd
}

// eventStatuses are the delivery states events list can show.
var eventStatuses = []string{"pending", "dead", "delivered"}

func newEventsListCommand(clientFor func(*cobra.Command) (*client.Client, error)) *cobra.Command {
	var status, typ, object string
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List undelivered events (pending and dead letters), or those of the given states",
		Long: `List events, oldest first. By default the undelivered ones: pending
(waiting for their next attempt) and dead (retries exhausted; replay them).
--status takes a comma-separated list of pending, dead and delivered, or
all; --type and --object keep the events of one type or of one payment or
refund.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			statuses, err := parseStatuses(status)
			if err != nil {
				return err
			}
			if limit <= 0 {
				return usageError{"--limit must be positive"}
			}
			c, err := clientFor(cmd)
			if err != nil {
				return err
			}
			var out []client.EventRecord
			more := false
			for _, st := range statuses {
				recs, truncated, err := listEvents(cmd.Context(), c, st, limit-len(out), func(e client.EventRecord) bool {
					return (typ == "" || e.Type == typ) && (object == "" || e.ObjectID == object)
				})
				if err != nil {
					return err
				}
				out = append(out, recs...)
				more = more || truncated
			}
			if asJSON {
				if out == nil {
					out = []client.EventRecord{}
				}
				return printJSON(cmd, out)
			}
			printEvents(cmd.OutOrStdout(), out, more, limit)
			return nil
		},
	}
	cmd.Flags().StringVar(&status, "status", "pending,dead", "delivery states to list: pending, dead, delivered (comma-separated) or all")
	cmd.Flags().StringVar(&typ, "type", "", "only events of this type, such as payment.succeeded")
	cmd.Flags().StringVar(&object, "object", "", "only events of this payment or refund id")
	cmd.Flags().IntVar(&limit, "limit", 100, "list at most this many events")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the events as JSON, payloads included")
	return cmd
}

func parseStatuses(v string) ([]string, error) {
	if v == "all" {
		return eventStatuses, nil
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(eventStatuses, s) {
			return nil, usageError{fmt.Sprintf("--status %q: want pending, dead, delivered or all", s)}
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// listEvents pages through the events in one state and keeps those keep
// accepts, up to limit; truncated reports that more may exist.
func listEvents(ctx context.Context, c *client.Client, status string, limit int, keep func(client.EventRecord) bool) ([]client.EventRecord, bool, error) {
	var out []client.EventRecord
	var after int64
	for limit > 0 {
		page, err := c.ListEvents(ctx, status, after, 100)
		if err != nil {
			return nil, false, err
		}
		for _, e := range page.Data {
			if !keep(e) {
				continue
			}
			if len(out) == limit {
				return out, true, nil
			}
			out = append(out, e)
		}
		if !page.HasMore {
			return out, false, nil
		}
		after = page.NextAfter
	}
	return out, true, nil
}

// printEvents writes one line per event: its id, state, type, object,
// attempts and what happens next (or what went wrong last).
func printEvents(w io.Writer, evs []client.EventRecord, more bool, limit int) {
	if len(evs) == 0 {
		fmt.Fprintln(w, "no events")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tTYPE\tOBJECT\tATTEMPTS\tCREATED\tNEXT ATTEMPT / DELIVERED\tLAST ERROR")
	for _, e := range evs {
		when := "-"
		switch {
		case e.DeliveredAt != nil:
			when = e.DeliveredAt.Local().Format(time.RFC3339)
		case e.NextAttemptAt != nil && e.Status == "pending":
			when = e.NextAttemptAt.Local().Format(time.RFC3339)
		}
		lastErr := e.LastError
		if lastErr == "" {
			lastErr = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", e.ID, e.Status, e.Type, e.ObjectID, e.Attempts,
			e.CreatedAt.Local().Format(time.RFC3339), when, lastErr)
	}
	_ = tw.Flush()
	if more {
		fmt.Fprintf(w, "(the first %d shown; raise --limit or narrow with --status, --type or --object)\n", limit)
	}
}

func replayEvents(ctx context.Context, cmd *cobra.Command, c *client.Client, ids []string, all bool) error {
	if all {
		n, err := c.ReplayDead(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%d dead letters queued for delivery\n", n)
		return nil
	}
	var failed []string
	for _, id := range ids {
		if _, err := c.ReplayEvent(ctx, id); err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s\n", id, describe(err))
			failed = append(failed, id)
			continue
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s: queued for delivery\n", id)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d events were not replayed: %s", len(failed), len(ids), strings.Join(failed, ", "))
	}
	return nil
}

func printJSON(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
