package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/client"
)

// exportedSpan is the part of the stdout trace exporter's JSON a test
// reads.
type exportedSpan struct {
	Name        string
	SpanKind    int
	SpanContext struct{ TraceID, SpanID string }
	Parent      struct{ TraceID, SpanID string }
	Links       []struct {
		SpanContext struct{ TraceID, SpanID string }
	}
}

func parseSpans(t *testing.T, out string) []exportedSpan {
	t.Helper()
	spans, err := decodeSpans(out)
	if err != nil {
		t.Fatalf("trace output is not a JSON span stream: %v", err)
	}
	return spans
}

// decodeSpans returns the spans of the stdout trace exporter's output,
// up to the first that does not decode (one still being written, for
// example), and that error.
func decodeSpans(out string) ([]exportedSpan, error) {
	dec := json.NewDecoder(strings.NewReader(out))
	var spans []exportedSpan
	for {
		var s exportedSpan
		err := dec.Decode(&s)
		if errors.Is(err, io.EOF) {
			return spans, nil
		}
		if err != nil {
			return spans, err
		}
		spans = append(spans, s)
	}
}

func TestTraceFromAppThroughPluginToUpstreamAndBack(t *testing.T) {
	sb := sandboxtest.Start(t)
	hook := newWebhookSink(t)
	e, api, notify, admin := sidecarEnv(t, sb.URL, t.TempDir(), append(hook.env(), "PAYSIDECAR_TRACING__EXPORTER=stdout")...)
	sc := startSidecar(t, e, api, notify, admin)

	const appTrace, appSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, _ := http.NewRequest(http.MethodPost, sc.API+"/v1/payments", strings.NewReader(
		`{"flow":"wechat-jsapi","out_trade_no":"trace-1","amount_fen":3,"description":"trace","buyer":{"openid":"o-trace"}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+appTrace+"-"+appSpan+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var p client.Payment
	_ = json.NewDecoder(resp.Body).Decode(&p)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	sb.SettlePayment(t, p.ReqDate, p.ReqSeqID, sandbox.ResultPaid)
	waitFor(t, 20*time.Second, "delivery", func() (bool, string) { return len(hook.received()) > 0, "" })
	// The plugin's own spans reach the host's exporter through the host,
	// in the application's trace: the server side of its calls.
	waitFor(t, 20*time.Second, "the plugin's server span in the exported trace", func() (bool, string) {
		spans, _ := decodeSpans(sc.stdout.String())
		for _, s := range spans {
			if s.SpanContext.TraceID == appTrace && s.SpanKind == 2 && s.Name == "paysidecar.flow.v2.FlowService/ShapeOrder" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d spans exported", len(spans))
	})
	sc.stop(syscall.SIGTERM) // flushes the batched spans
	spans := parseSpans(t, sc.stdout.String())

	var server *exportedSpan
	inTrace := map[string]bool{}
	for i, s := range spans {
		if s.SpanContext.TraceID != appTrace {
			continue
		}
		inTrace[s.Name] = true
		if s.Name == "POST /v1/payments" {
			server = &spans[i]
		}
	}
	if server == nil || server.Parent.SpanID != appSpan {
		t.Fatalf("no API span continuing the application's trace; spans in it: %v", keys(inTrace))
	}
	// One plugin call: the flow's pay recipe spares the create PayParams.
	if !inTrace["paysidecar.flow.v2.FlowService/ShapeOrder"] || inTrace["paysidecar.flow.v2.FlowService/PayParams"] {
		t.Errorf("want the plugin call ShapeOrder and no PayParams in the application's trace: %v", keys(inTrace))
	}
	upstream := false
	for _, s := range spans {
		upstream = upstream || (s.SpanContext.TraceID == appTrace && s.SpanKind == 3 && strings.Contains(s.Name, "POST") && s.Name != "POST /v1/payments")
	}
	if !upstream {
		t.Errorf("no upstream HTTP client span in the application's trace: %v", keys(inTrace))
	}
	// The notification starts its own trace, and each delivery attempt is
	// linked to it.
	notifySpans := map[string]bool{}
	for _, s := range spans {
		if strings.Contains(strings.ToLower(s.Name), "notif") {
			notifySpans[s.SpanContext.SpanID] = true
		}
	}
	linked := false
	for _, s := range spans {
		for _, l := range s.Links {
			linked = linked || notifySpans[l.SpanContext.SpanID]
		}
	}
	if len(notifySpans) == 0 || !linked {
		names := map[string]bool{}
		for _, s := range spans {
			names[s.Name] = true
		}
		t.Errorf("no delivery span linked to a notification span; spans: %v", keys(names))
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
