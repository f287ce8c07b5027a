package nkp

import "fmt"

// Profile selects the field dialect and default host of the upstream. The
// NKP guide calls the global serial "nkp_seq_id"; DouGong calls it
// "hf_seq_id". Every other name is shared.
type Profile string

// The supported profiles.
const (
	ProfileNKP     Profile = "nkp"
	ProfileDouGong Profile = "dougong"
)

// DefaultHost is the production host of the upstream for both profiles;
// the NKP Open API is served by the DouGong platform. The host is always
// configurable.
const DefaultHost = "https://api.huifu.com"

// Validate reports whether p is a known profile.
func (p Profile) Validate() error {
	switch p {
	case ProfileNKP, ProfileDouGong:
		return nil
	}
	return fmt.Errorf("unknown profile %q (want %q or %q)", string(p), ProfileNKP, ProfileDouGong)
}

// DefaultHost returns the production host for p.
func (p Profile) DefaultHost() string { return DefaultHost }

// seqRenames maps the NKP names, which the typed structs of this package use,
// to their DouGong names.
var seqRenames = [][2]string{
	{"nkp_seq_id", "hf_seq_id"},
	{"org_nkp_seq_id", "org_hf_seq_id"},
}

// SeqField returns the wire name of the global serial for p.
func (p Profile) SeqField() string {
	if p == ProfileDouGong {
		return "hf_seq_id"
	}
	return "nkp_seq_id"
}

// OrgSeqField returns the wire name of the original global serial (used in
// refunds, queries and closes) for p.
func (p Profile) OrgSeqField() string {
	if p == ProfileDouGong {
		return "org_hf_seq_id"
	}
	return "org_nkp_seq_id"
}

// ToWire renames the serial fields of m, written in NKP names, into p's
// dialect, in place.
func (p Profile) ToWire(m map[string]any) {
	if p != ProfileDouGong {
		return
	}
	for _, r := range seqRenames {
		rename(m, r[0], r[1])
	}
}

// FromWire renames the serial fields of m, written in p's dialect, into NKP
// names, in place. A server that accepts both dialects calls it with
// ProfileDouGong on every input.
func (p Profile) FromWire(m map[string]any) {
	if p != ProfileDouGong {
		return
	}
	for _, r := range seqRenames {
		rename(m, r[1], r[0])
	}
}

func rename(m map[string]any, from, to string) {
	v, ok := m[from]
	if !ok {
		return
	}
	delete(m, from)
	if _, exists := m[to]; !exists {
		m[to] = v
	}
}
