package api

import (
	"slices"

	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// builtinPassthrough reports whether path is callable through
// /v1/upstream/ whatever upstream.passthrough says: the seed's onboarding,
// business-opening and real-name endpoints (nkp.MerchantPaths), which a
// service provider needs to bring its merchants in. Every other path stays
// behind the configured list.
func builtinPassthrough(path string) bool {
	return slices.Contains(nkp.MerchantPaths, path)
}

// onboarding reports whether path creates a merchant, whose request names
// its service provider in upper_huifu_id and has no huifu_id of its own
// yet, so the passthrough must not fill one in.
func onboarding(path string) bool {
	return path == nkp.PathMerchantEnt || path == nkp.PathMerchantIndv
}
