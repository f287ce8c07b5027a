package plugin

// The gRPC contract in proto/ is compiled into internal/flowv1 with protoc and
// the code generators pinned as tools in go.mod.
//go:generate sh -c "protoc --proto_path=proto --plugin=protoc-gen-go=$(go tool -n protoc-gen-go) --plugin=protoc-gen-go-grpc=$(go tool -n protoc-gen-go-grpc) --go_out=internal/flowv1 --go_opt=module=github.com/paysidecar/paysidecar/sdk/plugin/internal/flowv1 --go-grpc_out=internal/flowv1 --go-grpc_opt=module=github.com/paysidecar/paysidecar/sdk/plugin/internal/flowv1 paysidecar/flow/v1/flow.proto"
