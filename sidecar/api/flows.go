package api

import (
	"context"
	"net/http"

	"github.com/paysidecar/paysidecar/sdk/plugin"
)

// The API knows no flow by name: it accepts exactly the flows that are
// running, as the plugins describe themselves, and names them in its
// errors.

// checkFlow checks that *name is a running flow (see
// payments.Service.CheckFlow), with the API's error.
func (s *Server) checkFlow(name *string, need plugin.Capability) error {
	if err := s.payments.CheckFlow(name, need); err != nil {
		return fromService(err)
	}
	return nil
}

// listFlows answers GET /v1/flows: the running flows, what they can do and
// what the application must give them.
func (s *Server) listFlows(_ context.Context, _ *http.Request) (int, any, error) {
	type flowInfo struct {
		Name         string   `json:"name"`
		Version      string   `json:"version"`
		TradeType    string   `json:"trade_type"`
		Capabilities []string `json:"capabilities"`
		Buyer        string   `json:"buyer"`
		APIVersions  []int    `json:"api_versions"`
	}
	out := []flowInfo{}
	for _, i := range s.payments.RunningFlows() {
		caps := make([]string, 0, len(i.Capabilities))
		for _, c := range i.Capabilities {
			caps = append(caps, string(c))
		}
		buyer := i.Buyer
		if buyer == "" {
			buyer = plugin.BuyerOptional
		}
		out = append(out, flowInfo{Name: i.Name, Version: i.Version, TradeType: i.TradeType, Capabilities: caps, Buyer: string(buyer), APIVersions: i.APIVersions})
	}
	return http.StatusOK, map[string]any{"flows": out}, nil
}
