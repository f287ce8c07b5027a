// Command wechat-jsapi is the WeChat JSAPI flow plugin of paysidecar. The
// sidecar launches it; started by hand it explains that and exits.
package main

import (
	"log/slog"
	"os"

	"github.com/paysidecar/paysidecar/plugins/wechat-jsapi/jsapi"
	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/plugin/hosttrace"
)

func main() {
	logger := plugin.NewLogger(os.Stderr, slog.LevelInfo)
	plugin.Serve(jsapi.New(logger), plugin.WithLogger(logger), plugin.WithTracing(hosttrace.Setup))
}
