package plugin

// The gRPC contracts in proto/ are compiled into internal/flowv1 and
// internal/flowv2 with protoc and the code generators pinned as tools in
// the sidecar's go.mod (make proto runs this inside the workspace).
//go:generate sh -c "protoc --proto_path=proto --plugin=protoc-gen-go=$(go tool -n protoc-gen-go) --plugin=protoc-gen-go-grpc=$(go tool -n protoc-gen-go-grpc) --go_out=internal/flowv1 --go_opt=module=github.com/paysidecar/paysidecar/sdk/plugin/internal/flowv1 --go-grpc_out=internal/flowv1 --go-grpc_opt=module=github.com/paysidecar/paysidecar/sdk/plugin/internal/flowv1 paysidecar/flow/v1/flow.proto"
//go:generate sh -c "mkdir -p internal/flowv2 && protoc --proto_path=proto --plugin=protoc-gen-go=$(go tool -n protoc-gen-go) --plugin=protoc-gen-go-grpc=$(go tool -n protoc-gen-go-grpc) --go_out=internal/flowv2 --go_opt=module=github.com/paysidecar/paysidecar/sdk/plugin/internal/flowv2 --go-grpc_out=internal/flowv2 --go-grpc_opt=module=github.com/paysidecar/paysidecar/sdk/plugin/internal/flowv2 paysidecar/flow/v2/flow.proto"
