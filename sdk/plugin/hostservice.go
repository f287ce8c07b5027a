package plugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/paysidecar/paysidecar/sdk/plugin/internal/flowv2"
)

// hostServer serves a host's Host to its plugin over go-plugin's broker.
type hostServer struct {
	flowv2.UnimplementedHostServiceServer
	host Host
}

// Sign serves Host.Sign.
func (s *hostServer) Sign(ctx context.Context, req *flowv2.SignRequest) (*flowv2.SignResponse, error) {
	sig, err := s.host.Sign(ctx, req.GetKey(), req.GetAlgorithm(), req.GetData())
	if err != nil {
		return nil, toStatus(err)
	}
	return &flowv2.SignResponse{Signature: sig}, nil
}

// Verify serves Host.Verify; a signature that does not verify is an
// answer, not an error.
func (s *hostServer) Verify(ctx context.Context, req *flowv2.VerifyRequest) (*flowv2.VerifyResponse, error) {
	err := s.host.Verify(ctx, req.GetKey(), req.GetAlgorithm(), req.GetData(), req.GetSignature())
	switch {
	case err == nil:
		return &flowv2.VerifyResponse{Valid: true}, nil
	case errors.Is(err, ErrInvalidSignature):
		return &flowv2.VerifyResponse{Valid: false}, nil
	}
	return nil, toStatus(err)
}

// Log serves Host.Log.
func (s *hostServer) Log(ctx context.Context, req *flowv2.LogRequest) (*flowv2.LogResponse, error) {
	if err := s.host.Log(ctx, slog.Level(req.GetLevel()), req.GetMessage(), attrsFromProto(req.GetAttrs())...); err != nil {
		return nil, toStatus(err)
	}
	return &flowv2.LogResponse{}, nil
}

// ExportSpans serves SpanHost.ExportSpans, when the host's Host is one.
func (s *hostServer) ExportSpans(ctx context.Context, req *flowv2.ExportSpansRequest) (*flowv2.ExportSpansResponse, error) {
	sh, ok := s.host.(SpanHost)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "the host takes no spans")
	}
	batch, err := proto.Marshal(req)
	if err != nil {
		return nil, toStatus(fmt.Errorf("encode the plugin's spans: %w", err))
	}
	if err := sh.ExportSpans(ctx, batch); err != nil {
		return nil, toStatus(err)
	}
	return &flowv2.ExportSpansResponse{}, nil
}

// hostClient is the Host a plugin calls over go-plugin's broker.
type hostClient struct {
	rpc flowv2.HostServiceClient
}

var _ Host = (*hostClient)(nil)

// Sign implements Host.
func (c *hostClient) Sign(ctx context.Context, key, algorithm string, data []byte) ([]byte, error) {
	resp, err := c.rpc.Sign(ctx, &flowv2.SignRequest{Key: key, Algorithm: algorithm, Data: data})
	if err != nil {
		return nil, fromStatus(ctx, "host Sign", err)
	}
	return resp.GetSignature(), nil
}

// Verify implements Host.
func (c *hostClient) Verify(ctx context.Context, key, algorithm string, data, signature []byte) error {
	resp, err := c.rpc.Verify(ctx, &flowv2.VerifyRequest{Key: key, Algorithm: algorithm, Data: data, Signature: signature})
	if err != nil {
		return fromStatus(ctx, "host Verify", err)
	}
	if !resp.GetValid() {
		return fmt.Errorf("host key %s: %w", key, ErrInvalidSignature)
	}
	return nil
}

// Log implements Host.
func (c *hostClient) Log(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) error {
	_, err := c.rpc.Log(ctx, &flowv2.LogRequest{Level: int32(level), Message: msg, Attrs: attrsToProto(attrs)})
	return fromStatus(ctx, "host Log", err)
}
