// Package riskcheck builds the risk_check_data field of an order, which
// tells the upstream where the buyer is.
package riskcheck

import (
	"net/netip"
	"strings"

	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// Field is the name of the order field.
const Field = "risk_check_data"

// Data returns the risk_check_data JSON string for a buyer at clientIP, or
// "" when clientIP is empty. It refuses anything that is not an IP address
// with an *Error naming client_ip.
func Data(clientIP string) (string, error) {
	clientIP = strings.TrimSpace(clientIP)
	if clientIP == "" {
		return "", nil
	}
	addr, err := netip.ParseAddr(clientIP)
	if err != nil || addr.Zone() != "" {
		return "", plugin.Errorf(plugin.CodeInvalidRequest, "client_ip", "client_ip must be an IPv4 or IPv6 address")
	}
	s, err := nkp.EncodeNested(map[string]any{"ip_addr": addr.Unmap().String()})
	if err != nil {
		return "", plugin.Errorf(plugin.CodeInternal, "client_ip", "encode risk_check_data: %v", err)
	}
	return s, nil
}
