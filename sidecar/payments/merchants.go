package payments

import "slices"

// CodeUnknownMerchant: the request names a merchant the sidecar does not
// trade for; nothing was stored or sent.
const CodeUnknownMerchant Code = "unknown_merchant"

// checkMerchant refuses a merchant that is neither the default one nor
// one of the service provider's listed merchants, when any are listed.
func (s *Service) checkMerchant(id string) error {
	if len(s.cfg.Merchants) == 0 || id == s.cfg.MerchantID || slices.Contains(s.cfg.Merchants, id) {
		return nil
	}
	return errorf(CodeUnknownMerchant, "merchant_id", "merchant %s is not one of the merchants this sidecar trades for (upstream.merchant_id and merchants)", id)
}

// CheckMerchant refuses a merchant_id that is malformed (CodeInvalidField)
// or names a merchant the sidecar does not trade for
// (CodeUnknownMerchant); an empty one is the default merchant.
func (s *Service) CheckMerchant(id string) error {
	if id == "" {
		return nil
	}
	if !ValidMerchantID(id) {
		return errorf(CodeInvalidField, "merchant_id", "merchant_id must be the merchant's huifu_id (digits)")
	}
	return s.checkMerchant(id)
}
