package riskcheck

import (
	"testing"

	"github.com/paysidecar/paysidecar/sdk/plugin"
)

func TestData(t *testing.T) {
	cases := []struct {
		in, want string
		wantErr  bool
	}{
		{"", "", false},
		{"203.0.113.7", `{"ip_addr":"203.0.113.7"}`, false},
		{" 2001:db8::1 ", `{"ip_addr":"2001:db8::1"}`, false},
		{"::ffff:198.51.100.2", `{"ip_addr":"198.51.100.2"}`, false},
		{"fe80::1%eth0", "", true},
		{"localhost", "", true},
		{"1.2.3.4:80", "", true},
	}
	for _, c := range cases {
		got, err := Data(c.in)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("Data(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
		if err != nil && plugin.ErrorCode(err) != plugin.CodeInvalidRequest {
			t.Errorf("Data(%q) error code = %q", c.in, plugin.ErrorCode(err))
		}
	}
}
