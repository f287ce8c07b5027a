// Command alipay-native is the Alipay native flow plugin of paysidecar. The
// sidecar launches it; started by hand it explains that and exits.
package main

import (
	"log/slog"
	"os"

	"github.com/paysidecar/paysidecar/plugins/alipay-native/alipay"
	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/plugin/hosttrace"
)

func main() {
	logger := plugin.NewLogger(os.Stderr, slog.LevelInfo)
	plugin.Serve(alipay.New(logger), plugin.WithLogger(logger), plugin.WithTracing(hosttrace.Setup))
}
