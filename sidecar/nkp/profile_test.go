package nkp

import (
	"maps"
	"testing"
)

func TestProfileRenames(t *testing.T) {
	tests := []struct {
		name    string
		profile Profile
		nkp     map[string]any
		wire    map[string]any
	}{
		{
			name:    "dougong renames both serials",
			profile: ProfileDouGong,
			nkp:     map[string]any{"nkp_seq_id": "n1", "org_nkp_seq_id": "o1", "req_seq_id": "r1", "huifu_id": "h"},
			wire:    map[string]any{"hf_seq_id": "n1", "org_hf_seq_id": "o1", "req_seq_id": "r1", "huifu_id": "h"},
		},
		{
			name:    "dougong leaves other fields alone",
			profile: ProfileDouGong,
			nkp:     map[string]any{"req_seq_id": "r1", "org_req_seq_id": "r0", "trans_amt": "0.10"},
			wire:    map[string]any{"req_seq_id": "r1", "org_req_seq_id": "r0", "trans_amt": "0.10"},
		},
		{
			name:    "nkp is a no-op",
			profile: ProfileNKP,
			nkp:     map[string]any{"nkp_seq_id": "n1", "org_nkp_seq_id": "o1"},
			wire:    map[string]any{"nkp_seq_id": "n1", "org_nkp_seq_id": "o1"},
		},
		{
			name:    "empty profile is a no-op",
			profile: "",
			nkp:     map[string]any{"nkp_seq_id": "n1"},
			wire:    map[string]any{"nkp_seq_id": "n1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := maps.Clone(tt.nkp)
			tt.profile.ToWire(m)
			if !maps.Equal(m, tt.wire) {
				t.Errorf("ToWire = %v, want %v", m, tt.wire)
			}
			tt.profile.FromWire(m)
			if !maps.Equal(m, tt.nkp) {
				t.Errorf("FromWire(ToWire(x)) = %v, want %v", m, tt.nkp)
			}
		})
	}
}

func TestProfileRenameKeepsExistingTarget(t *testing.T) {
	// A DouGong answer that carries both spellings keeps the NKP one.
	m := map[string]any{"hf_seq_id": "dougong", "nkp_seq_id": "nkp"}
	ProfileDouGong.FromWire(m)
	if want := map[string]any{"nkp_seq_id": "nkp"}; !maps.Equal(m, want) {
		t.Errorf("FromWire = %v, want %v", m, want)
	}
	// The NKP profile leaves DouGong names untouched.
	m = map[string]any{"hf_seq_id": "x"}
	ProfileNKP.FromWire(m)
	if want := map[string]any{"hf_seq_id": "x"}; !maps.Equal(m, want) {
		t.Errorf("NKP FromWire = %v, want %v", m, want)
	}
}

func TestProfileFields(t *testing.T) {
	tests := []struct {
		profile  Profile
		valid    bool
		seq, org string
	}{
		{ProfileNKP, true, "nkp_seq_id", "org_nkp_seq_id"},
		{ProfileDouGong, true, "hf_seq_id", "org_hf_seq_id"},
		{"", false, "nkp_seq_id", "org_nkp_seq_id"},
		{"DouGong", false, "nkp_seq_id", "org_nkp_seq_id"},
	}
	for _, tt := range tests {
		t.Run(string(tt.profile), func(t *testing.T) {
			if err := tt.profile.Validate(); (err == nil) != tt.valid {
				t.Errorf("Validate() = %v, want valid %v", err, tt.valid)
			}
			if got := tt.profile.SeqField(); got != tt.seq {
				t.Errorf("SeqField() = %q, want %q", got, tt.seq)
			}
			if got := tt.profile.OrgSeqField(); got != tt.org {
				t.Errorf("OrgSeqField() = %q, want %q", got, tt.org)
			}
			if got := tt.profile.DefaultHost(); got != "https://api.huifu.com" {
				t.Errorf("DefaultHost() = %q", got)
			}
		})
	}
}
