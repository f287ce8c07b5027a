// Command unionpay-native is the UnionPay QR flow plugin of paysidecar
// (U_NATIVE, 银联云闪付). The sidecar launches it; started by hand it
// explains that and exits.
package main

import (
	"log/slog"
	"os"

	"github.com/paysidecar/paysidecar/plugins/unionpay-native/unionpay"
	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/plugin/hosttrace"
)

func main() {
	logger := plugin.NewLogger(os.Stderr, slog.LevelInfo)
	plugin.Serve(unionpay.New(), plugin.WithLogger(logger), plugin.WithTracing(hosttrace.Setup))
}
