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
