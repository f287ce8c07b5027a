package payments

import (
	"net"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sdk/plugin"
)

var (
	outNoPattern = regexp.MustCompile(`^[A-Za-z0-9_\-.|*]{1,64}$`)
	// MerchantPattern is the shape of a huifu_id.
	merchantPattern = regexp.MustCompile(`^[0-9]{1,32}$`)
)

// Bounds of a payment request.
const (
	maxDescriptionRunes = 127
	minExpiry           = 60 * time.Second
	maxExpiry           = 7 * 24 * time.Hour
	maxMetadataKeys     = 20
	maxMetadataKeyLen   = 40
	maxMetadataValueLen = 500
	maxBuyerFieldLen    = 128
)

// ValidMerchantID reports whether id has the shape of a huifu_id.
func ValidMerchantID(id string) bool { return merchantPattern.MatchString(id) }

// CheckText refuses, with CodeInvalidField naming field, text that an
// upstream, a log or a buyer's screen would take for something else: bytes
// that are not UTF-8 (the JSON decoder turns them into U+FFFD, which is
// refused as well), control characters (NUL included) and the
// bidirectional formatting characters that reorder what a reader sees.
func CheckText(field, s string) error {
	if !utf8.ValidString(s) {
		return errorf(CodeInvalidField, field, "%s is not valid UTF-8", field)
	}
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			return errorf(CodeInvalidField, field, "%s is not valid UTF-8 (or holds U+FFFD)", field)
		case unicode.IsControl(r):
			return errorf(CodeInvalidField, field, "%s must not hold control characters (found U+%04X)", field, r)
		case isBidiControl(r):
			return errorf(CodeInvalidField, field, "%s must not hold bidirectional formatting characters (found U+%04X)", field, r)
		}
	}
	return nil
}

// isBidiControl reports the characters Unicode lists as bidirectional
// formatting controls (UAX #9): marks, embeddings, overrides and isolates.
func isBidiControl(r rune) bool {
	switch {
	case r == 0x061C, r == 0x200E, r == 0x200F:
		return true
	case r >= 0x202A && r <= 0x202E:
		return true
	case r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// RunningFlows describes the flows that are running, sorted by name. The
// service knows no flow by name: it accepts exactly these, as the plugins
// describe themselves.
func (s *Service) RunningFlows() []plugin.Info {
	infos := s.flows.Infos()
	slices.SortFunc(infos, func(a, b plugin.Info) int { return strings.Compare(a.Name, b.Name) })
	return infos
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

// CheckFlow checks that *name is a running flow, refusing with
// CodeMissingField or CodeUnknownFlow, whose messages name the running
// flows. An empty name becomes the running flow with capability need when
// there is exactly one; with need empty, or several candidates, a name is
// required. A named flow without the capability is left to the plugin,
// which answers unsupported.
func (s *Service) CheckFlow(name *string, need plugin.Capability) error {
	running := s.RunningFlows()
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
		return errorf(CodeMissingField, "flow", "flow is required: one of %s", flowNames(candidates))
	}
	for _, i := range running {
		if i.Name == *name {
			return nil
		}
	}
	return errorf(CodeUnknownFlow, "flow", "unknown flow %q: the running flows are %s", *name, flowNames(running))
}

// checkFlow refuses a create request whose flow is missing or not
// running, or that lacks a buyer the flow declares it needs.
func (s *Service) checkFlow(req *client.CreatePaymentRequest) error {
	if err := s.CheckFlow(&req.Flow, ""); err != nil {
		return err
	}
	for _, i := range s.flows.Infos() {
		if i.Name == req.Flow && i.Buyer == plugin.BuyerRequired && (req.Buyer == nil || (req.Buyer.OpenID == "" && req.Buyer.Code == "")) {
			return errorf(CodeMissingBuyer, "buyer", "flow %s needs buyer.openid or buyer.code", req.Flow)
		}
	}
	return nil
}

// validatePayment checks a create request and fills in the default
// merchant. amountGiven tells a missing amount_fen from a zero one.
func (s *Service) validatePayment(req *client.CreatePaymentRequest, amountGiven bool) error {
	if err := s.checkFlow(req); err != nil {
		return err
	}
	if req.OutTradeNo == "" {
		return errorf(CodeMissingField, "out_trade_no", "out_trade_no is required")
	}
	if !outNoPattern.MatchString(req.OutTradeNo) {
		return errorf(CodeInvalidField, "out_trade_no", "out_trade_no must be 1 to 64 letters, digits or _-.|*")
	}
	if !amountGiven {
		return errorf(CodeMissingField, "amount_fen", "amount_fen is required: a positive integer number of fen (1 = 0.01 yuan)")
	}
	if err := s.validateAmount("amount_fen", req.AmountFen); err != nil {
		return err
	}
	if strings.TrimSpace(req.Description) == "" {
		return errorf(CodeMissingField, "description", "description is required")
	}
	if err := CheckText("description", req.Description); err != nil {
		return err
	}
	if utf8.RuneCountInString(req.Description) > maxDescriptionRunes {
		return errorf(CodeInvalidField, "description", "description must be valid UTF-8 of at most %d characters", maxDescriptionRunes)
	}
	if b := req.Buyer; b != nil {
		if b.OpenID != "" && b.Code != "" {
			return errorf(CodeInvalidField, "buyer", "give buyer.openid or buyer.code, not both")
		}
		for _, f := range []struct{ name, v string }{{"buyer.openid", b.OpenID}, {"buyer.app_id", b.AppID}, {"buyer.code", b.Code}} {
			if len(f.v) > maxBuyerFieldLen {
				return errorf(CodeInvalidField, f.name, "%s takes at most %d bytes", f.name, maxBuyerFieldLen)
			}
			if err := CheckText(f.name, f.v); err != nil {
				return err
			}
		}
	}
	if req.ExpiresInSeconds != 0 {
		// Compared in seconds: a huge value multiplied into a Duration
		// would wrap around into the allowed range.
		if req.ExpiresInSeconds < int64(minExpiry/time.Second) || req.ExpiresInSeconds > int64(maxExpiry/time.Second) {
			return errorf(CodeInvalidField, "expires_in_seconds", "expires_in_seconds must be between %d and %d", int(minExpiry.Seconds()), int(maxExpiry.Seconds()))
		}
	}
	if req.ClientIP != "" && net.ParseIP(req.ClientIP) == nil {
		return errorf(CodeInvalidField, "client_ip", "client_ip must be an IPv4 or IPv6 address")
	}
	if len(req.Metadata) > maxMetadataKeys {
		return errorf(CodeInvalidField, "metadata", "metadata takes at most %d keys", maxMetadataKeys)
	}
	for k, v := range req.Metadata {
		if k == "" || len(k) > maxMetadataKeyLen || len(v) > maxMetadataValueLen {
			return errorf(CodeInvalidField, "metadata", "metadata keys are 1 to %d bytes, values at most %d", maxMetadataKeyLen, maxMetadataValueLen)
		}
		if err := CheckText("metadata", k); err != nil {
			return err
		}
		if err := CheckText("metadata", v); err != nil {
			return err
		}
	}
	if req.MerchantID == "" {
		req.MerchantID = s.cfg.MerchantID
	} else if !ValidMerchantID(req.MerchantID) {
		return errorf(CodeInvalidField, "merchant_id", "merchant_id must be the merchant's huifu_id (digits)")
	}
	return s.checkMerchant(req.MerchantID)
}

// validateRefund checks a refund request.
func (s *Service) validateRefund(req *client.CreateRefundRequest, amountGiven bool) error {
	if req.OutRefundNo == "" {
		return errorf(CodeMissingField, "out_refund_no", "out_refund_no is required")
	}
	if !outNoPattern.MatchString(req.OutRefundNo) {
		return errorf(CodeInvalidField, "out_refund_no", "out_refund_no must be 1 to 64 letters, digits or _-.|*")
	}
	if !amountGiven {
		return errorf(CodeMissingField, "amount_fen", "amount_fen is required: a positive integer number of fen (1 = 0.01 yuan)")
	}
	if err := s.validateAmount("amount_fen", req.AmountFen); err != nil {
		return err
	}
	if err := CheckText("reason", req.Reason); err != nil {
		return err
	}
	if utf8.RuneCountInString(req.Reason) > maxDescriptionRunes {
		return errorf(CodeInvalidField, "reason", "reason takes at most %d characters", maxDescriptionRunes)
	}
	return nil
}

func (s *Service) validateAmount(field string, fen int64) error {
	if fen <= 0 {
		return errorf(CodeAmountInvalid, field, "%s must be a positive integer number of fen (1 = 0.01 yuan)", field)
	}
	if fen > s.cfg.MaxAmountFen {
		return errorf(CodeAmountTooLarge, field, "%s must not exceed %d fen", field, s.cfg.MaxAmountFen)
	}
	return nil
}
