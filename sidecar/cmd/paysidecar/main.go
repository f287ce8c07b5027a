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
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		if msg := describe(err); msg != "" {
			fmt.Fprintln(os.Stderr, "paysidecar: "+msg)
		}
		os.Exit(exitCode(err))
	}
}

// usageError is a command given the wrong arguments; its message says what
// to give instead.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// exitStatus ends a command with its own exit code; err, when not nil,
// says why, and without it nothing more is printed (the command already
// said what it had to, e.g. a reconciliation's differences).
type exitStatus struct {
	code int
	err  error
}

func (e exitStatus) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e exitStatus) Unwrap() error { return e.err }

// exitCode is a command's own exitStatus code, else 2 for a command used wrongly or a configuration that does not
// validate, 1 for any other failure.
func exitCode(err error) int {
	var es exitStatus
	if errors.As(err, &es) {
		return es.code
	}
	var ue usageError
	var ce *config.Error
	if errors.As(err, &ue) || errors.As(err, &ce) {
		return 2
	}
	return 1
}

// describe renders err as one sentence for a person at a terminal (a
// configuration's problems follow it, one a line). The program's name is
// printed once, before it: libraries' "paysidecar: " prefixes are dropped,
// and the app API's errors and unreachable addresses are said plainly.
func describe(err error) string {
	var es exitStatus
	if errors.As(err, &es) && es.err == nil {
		return ""
	}
	var ce *config.Error
	if errors.As(err, &ce) {
		return ce.Error()
	}
	var ae *client.APIError
	if errors.As(err, &ae) {
		msg := fmt.Sprintf("the sidecar refused the request (HTTP %d, %s): %s", ae.StatusCode, ae.Code, strings.TrimSuffix(ae.Message, "."))
		if ae.StatusCode == http.StatusUnauthorized {
			msg += "; give the API token with --token, or set api.token or api.token_file in the configuration"
		}
		return msg
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return fmt.Sprintf("cannot reach the sidecar's app API at %s (%v); is the sidecar running, and is --api or api.listen its address?", hostOf(ue.URL), errors.Unwrap(op))
		}
		return fmt.Sprintf("the request to the sidecar's app API failed: %v", ue.Err)
	}
	return strings.ReplaceAll(err.Error(), "paysidecar: ", "")
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Scheme + "://" + u.Host
}

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
