package plugin

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/paysidecar/paysidecar/sdk/plugin/internal/flowv2"
	"github.com/paysidecar/paysidecar/sdk/plugin/internal/hostlink"
)

// server serves a Flow over contract version 2 inside a plugin process.
type server struct {
	flowv2.UnimplementedFlowServiceServer
	impl   Flow
	broker *goplugin.GRPCBroker
	// logger is the flow's logger when the host offers no services.
	logger   *slog.Logger
	logLevel slog.Leveler
	dialOpts []grpc.DialOption
	// spans receives the host's span service when the host takes the
	// plugin's spans; nil when nothing exports them.
	spans *hostlink.Link

	mu       sync.Mutex
	hostID   uint32
	hostConn *grpc.ClientConn
}

// GetInfo serves the method of the same name of the flow.
func (s *server) GetInfo(ctx context.Context, _ *flowv2.GetInfoRequest) (*flowv2.GetInfoResponse, error) {
	info, err := s.info(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &flowv2.GetInfoResponse{Info: infoToProto(info)}, nil
}

func (s *server) info(ctx context.Context) (Info, error) {
	info, err := s.impl.Info(ctx)
	if err != nil {
		return Info{}, err
	}
	if len(info.APIVersions) == 0 {
		info.APIVersions = APIVersions()
	}
	return info, nil
}

// Configure checks the settings against the flow's schema, connects to
// the host's services and only then hands the flow its configuration.
func (s *server) Configure(ctx context.Context, req *flowv2.ConfigureRequest) (*flowv2.ConfigureResponse, error) {
	info, err := s.info(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := info.Settings.Check(); err != nil {
		return nil, toStatus(&Error{Code: CodeInternal, Message: fmt.Sprintf("the flow declares an invalid settings schema: %v", err)})
	}
	env := environmentFromProto(req.GetEnvironment())
	settings, err := info.Settings.Apply(req.GetSettings(), env)
	if err != nil {
		return nil, toStatus(err)
	}
	merchants, err := info.Settings.applyMerchants(req.GetSettings(), req.GetMerchants(), env)
	if err != nil {
		return nil, toStatus(err)
	}
	c := Config{
		Settings:    settings,
		APIVersion:  int(req.GetApiVersion()),
		Environment: env,
		Host:        noHost{},
		HostKeys:    req.GetHostKeys(),
		Logger:      s.logger,
		Merchants:   merchants,
	}
	var spans flowv2.HostServiceClient
	if id := req.GetHostBrokerId(); id != 0 && s.broker != nil {
		conn, err := s.dialHost(id)
		if err != nil {
			return nil, toStatus(&Error{Code: CodeInternal, Message: fmt.Sprintf("connect to the host's services: %v", err)})
		}
		rpc := flowv2.NewHostServiceClient(conn)
		c.Host = &hostClient{rpc: rpc}
		c.Logger = HostLogger(c.Host, s.logLevel)
		if req.GetHostSpans() {
			spans = rpc
		}
	}
	if err := s.impl.Configure(ctx, c); err != nil {
		return nil, toStatus(err)
	}
	if s.spans != nil {
		s.spans.Set(spans)
	}
	return &flowv2.ConfigureResponse{}, nil
}

// dialHost returns the connection to the host's services served under
// id, dialing it the first time.
func (s *server) dialHost(id uint32) (*grpc.ClientConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hostConn != nil && s.hostID == id {
		return s.hostConn, nil
	}
	conn, err := s.broker.DialWithOptions(id, s.dialOpts...)
	if err != nil {
		return nil, err
	}
	if s.hostConn != nil {
		_ = s.hostConn.Close()
	}
	s.hostID, s.hostConn = id, conn
	return conn, nil
}

// close closes the connection to the host's services.
func (s *server) close() {
	if s.spans != nil {
		s.spans.Set(nil)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hostConn != nil {
		_ = s.hostConn.Close()
		s.hostConn = nil
	}
}

// ShapeOrder serves the method of the same name of the flow.
func (s *server) ShapeOrder(ctx context.Context, req *flowv2.ShapeOrderRequest) (*flowv2.ShapeOrderResponse, error) {
	out, err := s.impl.ShapeOrder(ctx, orderInputFromProto(req))
	if err != nil {
		return nil, toStatus(err)
	}
	return orderShapeToProto(out), nil
}

// PayParams serves the method of the same name of the flow.
func (s *server) PayParams(ctx context.Context, req *flowv2.PayParamsRequest) (*flowv2.PayParamsResponse, error) {
	out, err := s.impl.PayParams(ctx, payParamsInputFromProto(req))
	if err != nil {
		return nil, toStatus(err)
	}
	return payParamsToProto(out), nil
}

// AuthorizeURL serves the method of the same name of the flow.
func (s *server) AuthorizeURL(ctx context.Context, req *flowv2.AuthorizeURLRequest) (*flowv2.AuthorizeURLResponse, error) {
	out, err := s.impl.AuthorizeURL(ctx, authorizeInputFromProto(req))
	if err != nil {
		return nil, toStatus(err)
	}
	return &flowv2.AuthorizeURLResponse{Url: out}, nil
}

// ExchangeCode serves the method of the same name of the flow.
func (s *server) ExchangeCode(ctx context.Context, req *flowv2.ExchangeCodeRequest) (*flowv2.ExchangeCodeResponse, error) {
	out, err := s.impl.ExchangeCode(ctx, exchangeInputFromProto(req))
	if err != nil {
		return nil, toStatus(err)
	}
	return &flowv2.ExchangeCodeResponse{Identity: identityToProto(out)}, nil
}

// LaunchLinks serves the method of the same name of the flow.
func (s *server) LaunchLinks(ctx context.Context, req *flowv2.LaunchLinksRequest) (*flowv2.LaunchLinksResponse, error) {
	out, err := s.impl.LaunchLinks(ctx, launchInputFromProto(req))
	if err != nil {
		return nil, toStatus(err)
	}
	return launchLinksToProto(out), nil
}

// Check serves the method of the same name of the flow.
func (s *server) Check(ctx context.Context, _ *flowv2.CheckRequest) (*flowv2.CheckResponse, error) {
	if err := s.impl.Check(ctx); err != nil {
		return nil, toStatus(err)
	}
	return &flowv2.CheckResponse{}, nil
}
