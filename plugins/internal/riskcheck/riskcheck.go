// Package riskcheck builds the risk_check_data field of an order, which
// tells the upstream where the buyer is.
package riskcheck

import (
	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sdk/upstream"
)

// Field is the name of the order field.
const Field = upstream.FieldRiskCheckData

// Data returns the risk_check_data JSON string for a buyer at clientIP, or
// "" when clientIP is empty. It refuses anything that is not an IP address
// with an *Error naming client_ip.
func Data(clientIP string) (string, error) {
	ip, ok := upstream.ClientIP(clientIP)
	if !ok {
		return "", plugin.Errorf(plugin.CodeInvalidRequest, "client_ip", "client_ip must be an IPv4 or IPv6 address")
	}
	if ip == "" {
		return "", nil
	}
	s, err := upstream.Encode(upstream.RiskCheckData{IPAddr: ip})
	if err != nil {
		return "", plugin.Errorf(plugin.CodeInternal, "client_ip", "encode risk_check_data: %v", err)
	}
	return s, nil
}
