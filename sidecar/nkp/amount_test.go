package nkp

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
)

func TestParseYuan(t *testing.T) {
	tests := []struct {
		in   string
		want Fen
	}{
		{"0.01", 1},
		{"0.10", 10},
		{"0.1", 10},
		{"1", 100},
		{"12", 1200},
		{"12.3", 1230},
		{"12.30", 1230},
		{"12.34", 1234},
		{"0.100", 10},
		{"0.10000000", 10},
		{"0", 0},
		{"0.00", 0},
		{"-0.01", -1},
		{"-12.3", -1230},
		{"007.50", 750},
		{"123456789.99", 12345678999},
		{"1000000000000", MaxFen},
		{"1000000000000.00", MaxFen},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseYuan(tt.in)
			if err != nil {
				t.Fatalf("ParseYuan(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseYuan(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseYuanRefuses(t *testing.T) {
	for _, in := range []string{
		"0.001", "0.009", "1.234", "1e2", "1E2", "+1", " 1", "1 ", "1,00", "1,000.00", "", ".5", "5.",
		"abc", "-", "--1", "-.5", "1.2.3", "0x10", "1_000", "１２", "NaN", "Inf", "0.1-",
		"1000000000000.01", "9999999999999.99", "999999999999999", "1000000000000000",
		"99999999999999999999", "92233720368547758.07", "-1000000000000.01",
	} {
		t.Run(in, func(t *testing.T) {
			got, err := ParseYuan(in)
			if !errors.Is(err, ErrBadAmount) {
				t.Fatalf("ParseYuan(%q) = %d, %v; want ErrBadAmount", in, got, err)
			}
			if got != 0 {
				t.Errorf("ParseYuan(%q) returned %d with its error", in, got)
			}
		})
	}
}

func TestYuan(t *testing.T) {
	tests := []struct {
		in   Fen
		want string
	}{
		{0, "0.00"},
		{1, "0.01"},
		{10, "0.10"},
		{99, "0.99"},
		{100, "1.00"},
		{1230, "12.30"},
		{12345, "123.45"},
		{MaxFen, "1000000000000.00"},
		{-1, "-0.01"},
		{-1230, "-12.30"},
		{math.MaxInt64, "92233720368547758.07"},
		{math.MinInt64, "-92233720368547758.08"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.in.Yuan(); got != tt.want {
				t.Errorf("Fen(%d).Yuan() = %q, want %q", int64(tt.in), got, tt.want)
			}
			if got := tt.in.String(); got != tt.want {
				t.Errorf("Fen(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
			}
		})
	}
}

func TestYuanRoundTrip(t *testing.T) {
	values := []Fen{MaxFen, -MaxFen, MaxFen - 1}
	for v := Fen(-1000); v <= 100000; v += 7 {
		values = append(values, v)
	}
	for _, v := range values {
		got, err := ParseYuan(v.Yuan())
		if err != nil || got != v {
			t.Fatalf("ParseYuan(Fen(%d).Yuan() = %q) = %d, %v", int64(v), v.Yuan(), got, err)
		}
	}
}

func TestFenJSON(t *testing.T) {
	type order struct {
		Amt Fen  `json:"trans_amt"`
		Opt *Fen `json:"ord_amt,omitempty"`
	}
	b, err := json.Marshal(order{Amt: 10})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"trans_amt":"0.10"}` {
		t.Errorf("Marshal = %s, want {\"trans_amt\":\"0.10\"}", b)
	}

	tests := []struct {
		in      string
		want    Fen
		wantErr bool
	}{
		{`{"trans_amt":"0.10"}`, 10, false},
		{`{"trans_amt":0.10}`, 10, false},
		{`{"trans_amt":12}`, 1200, false},
		{`{"trans_amt":12.3}`, 1230, false},
		{`{"trans_amt":"12.30"}`, 1230, false},
		{`{"trans_amt":""}`, 0, false},
		{`{"trans_amt":null}`, 77, false},
		{`{}`, 77, false},
		{`{"trans_amt":"0.001"}`, 0, true},
		{`{"trans_amt":0.001}`, 0, true},
		{`{"trans_amt":1e2}`, 0, true},
		{`{"trans_amt":"abc"}`, 0, true},
		{`{"trans_amt":true}`, 0, true},
		{`{"trans_amt":"1 "}`, 0, true},
		{`{"trans_amt":99999999999999999999}`, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			o := order{Amt: 77}
			err := json.Unmarshal([]byte(tt.in), &o)
			if tt.wantErr {
				if !errors.Is(err, ErrBadAmount) {
					t.Fatalf("Unmarshal(%s) error = %v, want ErrBadAmount", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal(%s): %v", tt.in, err)
			}
			if o.Amt != tt.want {
				t.Errorf("Unmarshal(%s) = %d, want %d", tt.in, o.Amt, tt.want)
			}
		})
	}

	for _, v := range []Fen{0, 1, 10, 1230, MaxFen, -5} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var back Fen
		if err := json.Unmarshal(b, &back); err != nil || back != v {
			t.Errorf("JSON round trip of %d via %s = %d, %v", int64(v), b, back, err)
		}
	}
}
