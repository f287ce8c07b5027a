package sandboxtest

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/paysidecar/paysidecar/internal/testenv"
)

// WeChatUserAgent is the user agent of WeChat's browser on Android; pages
// read "MicroMessenger" in it to know they run inside WeChat.
const WeChatUserAgent = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) " +
	"Chrome/130.0.0.0 Mobile Safari/537.36 MicroMessenger/8.0.50.2701(0x28003253) NetType/WIFI Language/zh_CN"

// BrowserOption adjusts the Chromium a test drives.
type BrowserOption func(*[]chromedp.ExecAllocatorOption)

// WithUserAgent makes the browser say it is ua, for example
// WeChatUserAgent.
func WithUserAgent(ua string) BrowserOption {
	return func(o *[]chromedp.ExecAllocatorOption) { *o = append(*o, chromedp.UserAgent(ua)) }
}

// Browser starts headless Chromium for the test, with a fresh profile, and
// returns a tab that lives until the test ends or timeout passes. Without
// Chromium the test is skipped, unless CI is set, where it fails.
func Browser(t testing.TB, timeout time.Duration, opts ...BrowserOption) context.Context {
	t.Helper()
	exe := testenv.LookPath(t, "Debian package chromium; drives the pages", "chromium", "chromium-browser", "google-chrome")
	ao := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox, // Chromium runs as root in CI containers
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-proxy-server", true),
	}
	for _, o := range opts {
		o(&ao)
	}
	ctx, cancelTimeout := context.WithTimeout(context.Background(), timeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, ao...)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	// Cancelling the allocator waits for the browser process to exit.
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancelTimeout()
	})
	// Start the browser and its tab now, on the tab's own context: an
	// action run first on a shorter-lived child context would tie the tab
	// to that child and close it with it.
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return tab
}
