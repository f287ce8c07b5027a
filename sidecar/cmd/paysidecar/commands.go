package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/app"
	"github.com/paysidecar/paysidecar/sidecar/config"
	"github.com/paysidecar/paysidecar/sidecar/keygen"
)

func loadConfig(cmd *cobra.Command) (config.Config, error) {
	path, _ := cmd.Flags().GetString("config")
	cfg, err := config.Load(path, nil)
	if err != nil {
		return cfg, err
	}
	return cfg, nil
}

func newRunCommand() *cobra.Command {
	var withSandbox bool
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the sidecar: app API, notification ingress, delivery, reverse query and flow plugins",
		Long: `Run the sidecar. With no configuration it runs on embedded defaults: the
sandbox upstream on 127.0.0.1:8900 (start it with --sandbox, or separately
with "paysidecar sandbox"), SQLite in .paysidecar/, and every flow plugin
in bin/plugins.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			return app.Run(cmd.Context(), cfg, app.Options{
				WithSandbox: withSandbox, Version: version, Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr(),
			})
		},
	}
	cmd.Flags().BoolVar(&withSandbox, "sandbox", false, "also run the sandbox upstream in this process (sandbox.listen)")
	return cmd
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
		Long: `Load and validate the configuration and report every problem with its key.
Each flow plugin is started only to read the settings it declares, which the
flow's settings are checked against; no plugin is configured and no traffic
flows.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err == nil {
				for _, h := range cfg.Hints {
					fmt.Fprintln(cmd.ErrOrStderr(), "note:", h)
				}
				err = app.CheckFlows(cmd.Context(), cfg, nil)
			}
			var cerr *config.Error
			if errors.As(err, &cerr) {
				fmt.Fprintln(cmd.ErrOrStderr(), cerr.Error())
				return exitError{code: 2}
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "configuration is valid")
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
	}
	cmd.PersistentFlags().StringVar(&apiURL, "api", "", "app API base URL (default: http:// + api.listen)")
	cmd.PersistentFlags().StringVar(&token, "token", os.Getenv("PAYSIDECAR_API__TOKEN"), "API token, when api.token is set")
	clientFor := func(cmd *cobra.Command) (*client.Client, error) {
		base := apiURL
		if base == "" {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return nil, err
			}
			base = "http://" + cfg.API.Listen
		}
		return client.New(base, client.WithToken(token), client.WithHTTPClient(&http.Client{Timeout: 30 * time.Second})), nil
	}
	var status string
	var limit int
	var after int64
	list := &cobra.Command{
		Use:   "list",
		Short: "List events by delivery state (dead letters by default)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := clientFor(cmd)
			if err != nil {
				return err
			}
			page, err := c.ListEvents(cmd.Context(), status, after, limit)
			if err != nil {
				return err
			}
			return printJSON(cmd, page)
		},
	}
	list.Flags().StringVar(&status, "status", "dead", "dead, pending or delivered")
	list.Flags().IntVar(&limit, "limit", 100, "events per page")
	list.Flags().Int64Var(&after, "after", 0, "list events after this cursor (next_after of the previous page)")
	var all bool
	replay := &cobra.Command{
		Use:   "replay [event-id ...]",
		Short: "Send events again: the named ones, or with --all every dead letter",
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return errors.New("name event ids or give --all, not both")
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
			fmt.Fprintf(cmd.ErrOrStderr(), "%s: %v\n", id, err)
			failed = append(failed, id)
			continue
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s: queued for delivery\n", id)
	}
	if len(failed) > 0 {
		return fmt.Errorf("could not replay %s", strings.Join(failed, ", "))
	}
	return nil
}

func printJSON(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
