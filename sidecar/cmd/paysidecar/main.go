// Command paysidecar is the payment sidecar: it runs the app API, the
// notification ingress, webhook delivery and reverse queries next to an
// application, with one plugin process per payment flow. It also runs the
// sandbox upstream, generates keys, checks configuration and manages
// undelivered events.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		var ex exitError
		if errors.As(err, &ex) {
			os.Exit(ex.code)
		}
		fmt.Fprintln(os.Stderr, "paysidecar:", err)
		os.Exit(1)
	}
}

// exitError ends the process with a code after its message was printed.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "paysidecar",
		Short:         "Payment sidecar for the NKP Open API (DouGong v2 compatible)",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.PersistentFlags().StringP("config", "c", os.Getenv("PAYSIDECAR_CONFIG"), "YAML configuration file (embedded defaults when empty; env PAYSIDECAR_CONFIG)")
	root.AddCommand(newRunCommand(), newSandboxCommand(), newKeygenCommand(), newConfigCommand(), newEventsCommand(),
		newReconcileCommand(), newStatementsCommand())
	return root
}
