package sandbox

import (
	"crypto/rsa"
	"embed"
	"fmt"
	"strings"

	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// Fixed identities of the sandbox. They are public and for the sandbox only.
const (
	// DevSysID is the sys_id of the dev merchant, which signs with the dev
	// merchant key.
	DevSysID = "6666000100000001"
	// DevHuifuID is the huifu_id of the dev merchant, a directly connected
	// merchant, so it equals DevSysID.
	DevHuifuID = DevSysID
	// DevProductID is the product_id the dev merchant sends.
	DevProductID = "PAYSIDECAR_SANDBOX"
	// DevWeChatAppID is the dev WeChat official account app id (JSAPI).
	DevWeChatAppID = "wxsandbox00000001"
	// DevWeChatSecret is the app secret of DevWeChatAppID.
	DevWeChatSecret = "sandbox-only-official-account-secret"
	// DevMiniAppID is the dev WeChat mini-program app id.
	DevMiniAppID = "wxsandbox00000002"
	// DevMiniAppSecret is the app secret of DevMiniAppID.
	DevMiniAppSecret = "sandbox-only-mini-program-secret"
)

//go:embed devkeys/*.pkcs8.b64
var devKeyFiles embed.FS

// DevKeyPair is one fixed, sandbox-only RSA key pair in the console's base64
// DER forms and parsed.
type DevKeyPair struct {
	// PrivateBase64 is the PKCS#8 DER private key in standard base64.
	PrivateBase64 string
	// PublicBase64 is the X.509 SubjectPublicKeyInfo DER public key in
	// standard base64.
	PublicBase64 string
	// Private is the parsed private key.
	Private *rsa.PrivateKey
	// Public is the parsed public key.
	Public *rsa.PublicKey
}

// DevKeySet holds the four sandbox-only key pairs. They are embedded in the
// binary and published in the repository: never use them with a real
// upstream.
type DevKeySet struct {
	// Upstream signs the sandbox's answers and notifications; the sidecar
	// verifies with its public half.
	Upstream DevKeyPair
	// UpstreamNext is the upstream's second key, which the sandbox signs
	// with once told to (ControlSigningKey), to rehearse a key
	// switch-over.
	UpstreamNext DevKeyPair
	// Merchant signs the dev merchant's requests; the sidecar's embedded
	// defaults use it.
	Merchant DevKeyPair
	// WeChat signs paySign in pay_info.
	WeChat DevKeyPair
}

// DevKeys returns the fixed sandbox-only keys. Every call parses them anew,
// so callers own what they get.
func DevKeys() (DevKeySet, error) {
	var set DevKeySet
	for _, k := range []struct {
		name string
		dst  *DevKeyPair
	}{{"upstream", &set.Upstream}, {"upstream_next", &set.UpstreamNext}, {"merchant", &set.Merchant}, {"wechat", &set.WeChat}} {
		raw, err := devKeyFiles.ReadFile("devkeys/" + k.name + ".pkcs8.b64")
		if err != nil {
			return DevKeySet{}, fmt.Errorf("dev key %s: %w", k.name, err)
		}
		b64 := strings.TrimSpace(string(raw))
		priv, err := nkp.ParsePrivateKey(b64)
		if err != nil {
			return DevKeySet{}, fmt.Errorf("dev key %s: %w", k.name, err)
		}
		pub, err := nkp.PublicKeyBase64(&priv.PublicKey)
		if err != nil {
			return DevKeySet{}, fmt.Errorf("dev key %s: %w", k.name, err)
		}
		*k.dst = DevKeyPair{PrivateBase64: b64, PublicBase64: pub, Private: priv, Public: &priv.PublicKey}
	}
	return set, nil
}
