// Command mockflow is the mock flow as a plugin binary, for testing hosts.
package main

import (
	"log/slog"
	"os"

	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/plugin/hosttrace"
	"github.com/paysidecar/paysidecar/sdk/plugin/mockflow"
)

func main() {
	logger := plugin.NewLogger(os.Stderr, slog.LevelDebug)
	plugin.Serve(mockflow.New(logger), plugin.WithLogger(logger), plugin.WithLogLevel(slog.LevelDebug), plugin.WithTracing(hosttrace.Setup))
}
