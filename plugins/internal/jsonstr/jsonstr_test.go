package jsonstr

import (
	"reflect"
	"testing"
)

func TestScalarMembers(t *testing.T) {
	cases := []struct {
		raw     string
		want    map[string]string
		wantErr bool
	}{
		{`{"a":"x","n":0.10,"b":true,"f":false,"o":{"z":1},"l":[1],"nil":null}`,
			map[string]string{"a": "x", "n": "0.10", "b": "true", "f": "false"}, false},
		{`{}`, map[string]string{}, false},
		{`null`, nil, true},
		{`[1]`, nil, true},
		{`{"a":1} {"b":2}`, nil, true},
		{`{"a":`, nil, true},
	}
	for _, c := range cases {
		got, err := ScalarMembers(c.raw)
		if (err != nil) != c.wantErr || (!c.wantErr && !reflect.DeepEqual(got, c.want)) {
			t.Errorf("ScalarMembers(%s) = %v, %v; want %v", c.raw, got, err, c.want)
		}
	}
}

func TestMarshalKeepsSignedBytes(t *testing.T) {
	got, err := Marshal(struct {
		Package string `json:"package"`
		Link    string `json:"link"`
	}{"prepay_id=wx<1>&2", "alipays://x?a=1&b=2"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"package":"prepay_id=wx<1>&2","link":"alipays://x?a=1&b=2"}`
	if string(got) != want {
		t.Errorf("Marshal = %s, want %s", got, want)
	}
}
