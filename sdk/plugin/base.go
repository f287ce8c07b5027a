package plugin

import "context"

// UnsupportedFlow implements the optional methods of Flow: Configure
// accepts any configuration (the SDK has already checked the settings
// against the schema), Check reports healthy, and AuthorizeURL,
// ExchangeCode and LaunchLinks fail with CodeUnsupported. A flow embeds it and implements
// what it supports, so that it needs no hand-written stubs and keeps
// compiling when the contract grows optional methods:
//
//	type Flow struct {
//		plugin.UnsupportedFlow
//		...
//	}
type UnsupportedFlow struct{}

// Configure implements Flow and accepts any configuration.
func (UnsupportedFlow) Configure(context.Context, Config) error { return nil }

// Check implements Flow and reports healthy.
func (UnsupportedFlow) Check(context.Context) error { return nil }

// AuthorizeURL implements Flow and fails with CodeUnsupported.
func (UnsupportedFlow) AuthorizeURL(context.Context, AuthorizeInput) (string, error) {
	return "", &Error{Code: CodeUnsupported, Message: "the flow does not support AuthorizeURL"}
}

// LaunchLinks implements Flow and fails with CodeUnsupported.
func (UnsupportedFlow) LaunchLinks(context.Context, LaunchInput) (LaunchLinks, error) {
	return LaunchLinks{}, &Error{Code: CodeUnsupported, Message: "the flow does not support LaunchLinks"}
}

// ExchangeCode implements Flow and fails with CodeUnsupported.
func (UnsupportedFlow) ExchangeCode(context.Context, ExchangeInput) (Identity, error) {
	return Identity{}, &Error{Code: CodeUnsupported, Message: "the flow does not support ExchangeCode"}
}
