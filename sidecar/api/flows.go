package api

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/paysidecar/paysidecar/sdk/plugin"
)

// The API knows no flow by name: it accepts exactly the flows that are
// running, as the plugins describe themselves, and names them in its
// errors.

// runningFlows returns the infos of the running flows, by name.
func (s *Server) runningFlows() []plugin.Info {
	infos := s.flows.Infos()
	slices.SortFunc(infos, func(a, b plugin.Info) int { return strings.Compare(a.Name, b.Name) })
	return infos
}

// flowInfo returns the info of the running flow name.
func (s *Server) flowInfo(name string) (plugin.Info, bool) {
	for _, i := range s.flows.Infos() {
		if i.Name == name {
			return i, true
		}
	}
	return plugin.Info{}, false
}

// flowNames lists the names of infos for an error message.
func flowNames(infos []plugin.Info) string {
	names := make([]string, 0, len(infos))
	for _, i := range infos {
		names = append(names, i.Name)
	}
	if len(names) == 0 {
		return "(none is running)"
	}
	return strings.Join(names, ", ")
}

// checkFlow checks that *name is a running flow. An empty name is the
// running flow with capability need when there is exactly one; with need
// empty, or several candidates, a name is required. A named flow without
// the capability is left to the plugin, which answers unsupported.
func (s *Server) checkFlow(name *string, need plugin.Capability) error {
	running := s.runningFlows()
	if *name == "" {
		candidates := running
		if need != "" {
			candidates = nil
			for _, i := range running {
				if i.Supports(need) {
					candidates = append(candidates, i)
				}
			}
		}
		if need != "" && len(candidates) == 1 {
			*name = candidates[0].Name
			return nil
		}
		return badRequest(CodeMissingField, "flow", "flow is required: one of %s", flowNames(candidates))
	}
	for _, i := range running {
		if i.Name == *name {
			return nil
		}
	}
	return badRequest(CodeUnknownFlow, "flow", "unknown flow %q: the running flows are %s", *name, flowNames(running))
}

// needsBuyer reports whether the running flow name declares that an order
// needs the buyer's identity.
func (s *Server) needsBuyer(name string) bool {
	info, ok := s.flowInfo(name)
	return ok && info.Buyer == plugin.BuyerRequired
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
	for _, i := range s.runningFlows() {
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
