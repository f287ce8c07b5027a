package wechat

import "github.com/paysidecar/paysidecar/sdk/upstream"

// FieldPayInfo is the name of the answer field.
const FieldPayInfo = upstream.FieldPayInfo
