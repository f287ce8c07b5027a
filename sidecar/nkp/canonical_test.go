package nkp

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCanonicalizeJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{
			name: "first-level keys in byte order: digits, upper case, underscore, lower case",
			in:   `{"b":1,"a":2,"B":3,"A":4,"_":5,"1":6,"a_b":7,"aB":8,"ab":9,"a1":10,"10":11,"9":12}`,
			want: `{"1":6,"10":11,"9":12,"A":4,"B":3,"_":5,"a":2,"a1":10,"aB":8,"a_b":7,"ab":9,"b":1}`,
		},
		{
			name: "byte order, not UTF-16 order, for keys beyond the BMP",
			in:   `{"😀":1,"！":2,"z":3,"中":4}`,
			want: `{"z":3,"中":4,"！":2,"😀":1}`,
		},
		{
			name: "prefix sorts first",
			in:   `{"req_seq_id":"2","req":"1","req_date":"3"}`,
			want: `{"req":"1","req_date":"3","req_seq_id":"2"}`,
		},
		{
			name: "empty values dropped at the first level",
			in:   `{"a":null,"b":"","c":{},"d":[],"e":0,"f":false,"g":" ","h":"x","i":"0","j":[0]}`,
			want: `{"e":0,"f":false,"g":" ","h":"x","i":"0","j":[0]}`,
		},
		{
			name: "empty values kept below the first level",
			in:   `{"a":{"z":[],"y":"","x":null,"w":{}},"b":[null,"",{},[]]}`,
			want: `{"a":{"z":[],"y":"","x":null,"w":{}},"b":[null,"",{},[]]}`,
		},
		{
			name: "all empty",
			in:   `{"a":null,"b":"","c":{},"d":[]}`,
			want: `{}`,
		},
		{
			name: "empty object",
			in:   `{}`,
			want: `{}`,
		},
		{
			name: "Chinese text as-is, escaped or not on input",
			in:   `{"goods_desc":"测试商品","remark":"\u6d4b\u8bd5"}`,
			want: `{"goods_desc":"测试商品","remark":"测试"}`,
		},
		{
			name: "emoji as-is, from a surrogate pair too",
			in:   `{"a":"🍵","b":"\ud83c\udf75"}`,
			want: `{"a":"🍵","b":"🍵"}`,
		},
		{
			name: "U+2028 and U+2029 as-is",
			in:   `{"a":"x\u2028y\u2029z","b":"` + "p\u2028q\u2029r" + `"}`,
			want: `{"a":"` + "x\u2028y\u2029z" + `","b":"` + "p\u2028q\u2029r" + `"}`,
		},
		{
			name: "lone surrogate escape becomes U+FFFD",
			in:   `{"a":"\ud800"}`,
			want: `{"a":"` + "\ufffd" + `"}`,
		},
		{
			name: "invalid UTF-8 becomes U+FFFD, one per bad byte",
			in:   "{\"a\":\"x\xffy\xc3\"}",
			want: "{\"a\":\"x\ufffdy\ufffd\"}",
		},
		{
			name: "slash, angle brackets and ampersand unescaped",
			in:   `{"notify_url":"https:\/\/a.example\/n?x=1\u0026y=\u003c2\u003e","raw":"</script>&<>"}`,
			want: `{"notify_url":"https://a.example/n?x=1&y=<2>","raw":"</script>&<>"}`,
		},
		{
			name: "quotes, backslashes and control characters escaped",
			in:   `{"a":"q\"b\\n\nr\rt\tb\bf\f","c":"\u0000\u0001\u001f\u007f"}`,
			want: `{"a":"q\"b\\n\nr\rt\tb\bf\f","c":"\u0000\u0001\u001f` + "\x7f" + `"}`,
		},
		{
			name: "escaped key",
			in:   `{"a\"b":1,"a\\b":2}`,
			want: `{"a\"b":1,"a\\b":2}`,
		},
		{
			name: "nested JSON strings kept byte for byte, not re-sorted",
			in:   `{"wx_data":"{\"sub_openid\":\"o1\",\"sub_appid\":\"wx1\"}","acct_split_bunch":"{ \"acct_infos\" : [ {\"div_amt\":\"0.10\"} ] }"}`,
			want: `{"acct_split_bunch":"{ \"acct_infos\" : [ {\"div_amt\":\"0.10\"} ] }","wx_data":"{\"sub_openid\":\"o1\",\"sub_appid\":\"wx1\"}"}`,
		},
		{
			name: "numbers keep their literal text",
			in:   `{"a":0.00,"b":1.10,"c":12345678901234567890123456789,"d":-0,"e":1e5,"f":1E+2,"g":-12.500,"h":0}`,
			want: `{"a":0.00,"b":1.10,"c":12345678901234567890123456789,"d":-0,"e":1e5,"f":1E+2,"g":-12.500,"h":0}`,
		},
		{
			name: "numbers inside arrays and objects keep their literal text",
			in:   `{"a":[1.10,0.00],"b":{"x":2.50}}`,
			want: `{"a":[1.10,0.00],"b":{"x":2.50}}`,
		},
		{
			name: "booleans",
			in:   `{"t":true,"f":false}`,
			want: `{"f":false,"t":true}`,
		},
		{
			name: "white space and pretty printing removed",
			in:   "{\n  \"b\" : [ 1 , 2 ] ,\n\t\"a\" : { \"y\" : \"  \" , \"x\" : 1 }\r\n}\n",
			want: `{"a":{"y":"  ","x":1},"b":[1,2]}`,
		},
		{
			name: "nested objects keep their key order, as official SDKs sign them",
			in:   `{"acct_split_bunch":{"percentage_flag":"N","acct_infos":[{"huifu_id":"6666000123456780","div_amt":"0.06"},{"div_amt":"0.04","huifu_id":"6666000123456781"}]},"risk_check_data":{"ip_addr":"203.0.113.7","base_station":"460,0,1,2"}}`,
			want: `{"acct_split_bunch":{"percentage_flag":"N","acct_infos":[{"huifu_id":"6666000123456780","div_amt":"0.06"},{"div_amt":"0.04","huifu_id":"6666000123456781"}]},"risk_check_data":{"ip_addr":"203.0.113.7","base_station":"460,0,1,2"}}`,
		},
		{
			name: "nested objects keep duplicate keys as written",
			in:   `{"a":{"z":1,"y":2,"z":3}}`,
			want: `{"a":{"z":1,"y":2,"z":3}}`,
		},
		{
			name: "nested escaping normalized, order kept",
			in:   "{\"wx_data\" : {\n \"sub_openid\" : \"o\\u003c1\\u003e\",\n \"sub_appid\":\"wx\\/1\", \"\\u6d4b\":[ 1.10 , true, null ]\n}}",
			want: `{"wx_data":{"sub_openid":"o<1>","sub_appid":"wx/1","测":[1.10,true,null]}}`,
		},
		{
			name: "empty nested object or array with white space dropped at the first level",
			in:   `{"a":{ },"b":[ ],"c":1}`,
			want: `{"c":1}`,
		},
		{
			name: "duplicate key: the last one wins",
			in:   `{"a":1,"a":2}`,
			want: `{"a":2}`,
		},
		{
			name: "duplicate key whose last value is empty is dropped",
			in:   `{"a":1,"a":""}`,
			want: `{}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CanonicalizeJSON([]byte(tt.in))
			if err != nil {
				t.Fatalf("CanonicalizeJSON: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("CanonicalizeJSON(%s)\n got %s\nwant %s", tt.in, got, tt.want)
			}
			if !json.Valid(got) || !utf8.Valid(got) {
				t.Errorf("canonical string %q is not valid UTF-8 JSON", got)
			}
			again, err := CanonicalizeJSON(got)
			if err != nil || string(again) != string(got) {
				t.Errorf("not idempotent: %q then %q (%v)", got, again, err)
			}
		})
	}
}

func TestCanonicalizeJSONRefuses(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"empty input", ``},
		{"white space only", "  \n"},
		{"null", `null`},
		{"array", `[{"a":1}]`},
		{"string", `"{\"a\":1}"`},
		{"number", `1`},
		{"truncated", `{"a":1`},
		{"trailing object", `{"a":1}{"b":2}`},
		{"trailing text", `{"a":1} x`},
		{"trailing close bracket", `{"a":1}]`},
		{"trailing close brace", `{"a":1}}`},
		{"trailing comma", `{"a":1},`},
		{"unquoted key", `{a:1}`},
		{"single quotes", `{'a':1}`},
		{"NaN", `{"a":NaN}`},
		{"leading zero", `{"a":01}`},
		{"raw control character", "{\"a\":\"x\ny\"}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CanonicalizeJSON([]byte(tt.in))
			if err == nil {
				t.Fatalf("CanonicalizeJSON(%q) = %q, want an error", tt.in, got)
			}
		})
	}
}

func TestCanonicalize(t *testing.T) {
	type nested struct {
		B string `json:"b"`
		A string `json:"a"`
	}
	var nilMap map[string]string
	var nilSlice []string
	var nilPtr *nested
	tests := []struct {
		name string
		in   map[string]any
		want string
	}{
		{
			name: "nil map",
			in:   nil,
			want: `{}`,
		},
		{
			name: "Go values",
			in: map[string]any{
				"s": "x", "i": 42, "i32": int32(-7), "i64": int64(math.MaxInt64), "u64": uint64(math.MaxUint64),
				"f": 1.5, "f32": float32(0.25), "big": 1e21, "t": true, "f0": false,
			},
			want: `{"big":1000000000000000000000,"f":1.5,"f0":false,"f32":0.25,"i":42,"i32":-7,"i64":9223372036854775807,"s":"x","t":true,"u64":18446744073709551615}`,
		},
		{
			name: "Fen is written as a yuan string",
			in:   map[string]any{"trans_amt": Fen(10), "ord_amt": Fen(123456), "zero": Fen(0)},
			want: `{"ord_amt":"1234.56","trans_amt":"0.10","zero":"0.00"}`,
		},
		{
			name: "json.Number keeps its text",
			in:   map[string]any{"a": json.Number("0.00"), "b": json.Number("1.10")},
			want: `{"a":0.00,"b":1.10}`,
		},
		{
			name: "typed empties dropped at the first level",
			in:   map[string]any{"m": nilMap, "s": nilSlice, "p": nilPtr, "e": map[string]int{}, "l": []int{}, "r": json.RawMessage(` null `), "x": 1},
			want: `{"x":1}`,
		},
		{
			name: "empty raw JSON dropped, non-empty raw JSON re-encoded canonically in the order written",
			in:   map[string]any{"a": json.RawMessage(`{}`), "b": json.RawMessage(`[]`), "c": json.RawMessage(`""`), "e": json.RawMessage(` { } `), "d": json.RawMessage(`{ "y":"\u003c&>" , "x":1.50 }`)},
			want: `{"d":{"y":"<&>","x":1.50}}`,
		},
		{
			name: "struct goes through encoding/json and is written with canonical escaping, in field order",
			in:   map[string]any{"n": nested{B: "<b>", A: "&"}},
			want: `{"n":{"b":"<b>","a":"&"}}`,
		},
		{
			name: "nested map sorted, nested slice in order",
			in:   map[string]any{"m": map[string]any{"b": 1, "a": []any{"y", "x"}}},
			want: `{"m":{"a":["y","x"],"b":1}}`,
		},
		{
			name: "invalid UTF-8 in Go strings becomes U+FFFD",
			in:   map[string]any{"a": "x\xffy", "b": "\xe6\xb5"},
			want: "{\"a\":\"x\ufffdy\",\"b\":\"\ufffd\ufffd\"}",
		},
		{
			name: "every control character escaped",
			in:   map[string]any{"c": "\x00\x07\x08\x09\x0a\x0b\x0c\x0d\x1b\x1f\x20\x7f"},
			want: `{"c":"\u0000\u0007\b\t\n\u000b\f\r\u001b\u001f ` + "\x7f" + `"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Canonicalize(tt.in)
			if err != nil {
				t.Fatalf("Canonicalize: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("Canonicalize\n got %s\nwant %s", got, tt.want)
			}
			if !json.Valid(got) {
				t.Errorf("canonical string %q is not valid JSON", got)
			}
		})
	}
}

func TestCanonicalizeRefuses(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
	}{
		{"NaN", map[string]any{"a": math.NaN()}},
		{"infinity", map[string]any{"a": math.Inf(1)}},
		{"nested infinity", map[string]any{"a": []any{math.Inf(-1)}}},
		{"json.Number that is not a number", map[string]any{"a": json.Number("abc")}},
		{"json.Number holding a string", map[string]any{"a": json.Number(`"1"`)}},
		{"json.Number holding an object", map[string]any{"a": json.Number(`{}`)}},
		{"json.Number with white space", map[string]any{"a": json.Number(" 1")}},
		{"json.Number with a leading plus", map[string]any{"a": json.Number("+1")}},
		{"invalid raw JSON", map[string]any{"a": json.RawMessage(`{"x":`)}},
		{"raw JSON with trailing data", map[string]any{"a": json.RawMessage(`{"x":1} 2`)}},
		{"raw JSON of two values", map[string]any{"a": json.RawMessage(`[1][2]`)}},
		{"unmarshalable value", map[string]any{"a": make(chan int)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Canonicalize(tt.in)
			if err == nil {
				t.Fatalf("Canonicalize = %q, want an error", got)
			}
			if !strings.Contains(err.Error(), `key "a"`) {
				t.Errorf("error %q does not name the key", err)
			}
		})
	}
}

func TestCanonicalizeRefusesInvalidKeys(t *testing.T) {
	// Both keys would be written as "a\ufffd": the signed string would
	// carry a duplicate key that no receiver can rebuild.
	tests := []map[string]any{
		{"a\xff": 1, "a\xfe": 2},
		{"ok": map[string]any{"a\xff": 1}},
		{"ok": []any{map[string]any{"\xc3": 1}}},
	}
	for _, in := range tests {
		if got, err := Canonicalize(in); err == nil {
			t.Errorf("Canonicalize(%q) = %q, want an error", in, got)
		}
	}
	// An empty value under a bad key is dropped before the key is looked at.
	if got, err := Canonicalize(map[string]any{"a\xff": "", "b": 1}); err != nil || string(got) != `{"b":1}` {
		t.Errorf("Canonicalize = %q, %v; want {\"b\":1}", got, err)
	}
}

func TestCanonicalizeMatchesCanonicalizeJSON(t *testing.T) {
	// The Go map a client builds and the JSON a server receives must give
	// the same canonical string.
	data := jspayData()
	fromMap, err := Canonicalize(data)
	if err != nil {
		t.Fatal(err)
	}
	pretty, err := json.MarshalIndent(data, "", "    ")
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := CanonicalizeJSON(pretty)
	if err != nil {
		t.Fatal(err)
	}
	if string(fromMap) != string(fromJSON) {
		t.Errorf("Canonicalize and CanonicalizeJSON differ:\n%s\n%s", fromMap, fromJSON)
	}
	const want = `{"goods_desc":"会员月卡 VIP monthly","huifu_id":"6666000123456789","notify_url":"https://pay.example.com:8443/notify?x=1&y=<2>","req_date":"20250101","req_seq_id":"20250101123456789012345","risk_check_data":"{\"ip_addr\":\"203.0.113.7\"}","time_expire":"20250101140000","trade_type":"T_JSAPI","trans_amt":"0.10","wx_data":"{\"sub_appid\":\"wx1234567890abcdef\",\"sub_openid\":\"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o\"}"}`
	if string(fromMap) != want {
		t.Errorf("jspay canonical string\n got %s\nwant %s", fromMap, want)
	}
}

func TestDecodeObject(t *testing.T) {
	m, err := DecodeObject([]byte(` {"a":0.10,"b":{"c":1.0}} `))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := m["a"].(json.Number); !ok || got != "0.10" {
		t.Errorf("a = %#v, want json.Number(\"0.10\")", m["a"])
	}
	inner, ok := m["b"].(map[string]any)
	if !ok {
		t.Fatalf("b = %#v, want an object", m["b"])
	}
	if got, ok := inner["c"].(json.Number); !ok || got != "1.0" {
		t.Errorf("b.c = %#v, want json.Number(\"1.0\")", inner["c"])
	}
}

func TestDecodeData(t *testing.T) {
	m, err := DecodeData([]byte(` {"a":0.10,"b":{"y":1.0, "x":[2]},"c":[ 1 ],"d":"s","e":null,"b":{"z":1,"y":2}} `))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := m["a"].(json.Number); !ok || got != "0.10" {
		t.Errorf("a = %#v, want json.Number(\"0.10\")", m["a"])
	}
	// Nested values stay as written; the last duplicate first-level key
	// wins.
	if got, ok := m["b"].(json.RawMessage); !ok || string(got) != `{"z":1,"y":2}` {
		t.Errorf("b = %#v, want the raw text of the last b", m["b"])
	}
	if got, ok := m["c"].(json.RawMessage); !ok || string(got) != `[ 1 ]` {
		t.Errorf("c = %#v, want the raw text [ 1 ]", m["c"])
	}
	if m["d"] != "s" || m["e"] != nil || len(m) != 5 {
		t.Errorf("DecodeData = %#v", m)
	}
	for _, bad := range []string{``, `null`, `[]`, `{"a":1}x`, `{"a":`} {
		if _, err := DecodeData([]byte(bad)); err == nil {
			t.Errorf("DecodeData(%q) succeeded, want an error", bad)
		}
	}
}

// wxData has the members of wx_data, for a struct's nested encoding.
type wxData struct {
	SubAppID  string `json:"sub_appid,omitempty"`
	OpenID    string `json:"openid,omitempty"`
	SubOpenID string `json:"sub_openid,omitempty"`
}

func TestEncodeNested(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"wx_data with sub ids", wxData{SubAppID: "wx1", SubOpenID: "o<&>"}, `{"sub_appid":"wx1","sub_openid":"o<&>"}`},
		{"wx_data with openid only", wxData{OpenID: "o1"}, `{"openid":"o1"}`},
		{"wx_data in field order", wxData{SubAppID: "wx1", OpenID: "o0", SubOpenID: "o1"}, `{"sub_appid":"wx1","openid":"o0","sub_openid":"o1"}`},
		{"map sorted", map[string]any{"z": "中", "a": Fen(1)}, `{"a":"0.01","z":"中"}`},
		{"empties kept below the first level", map[string]any{"a": "", "b": nil}, `{"a":"","b":null}`},
		{"string", "a/b", `"a/b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeNested(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("EncodeNested = %s, want %s", got, tt.want)
			}
		})
	}
	if _, err := EncodeNested(math.NaN()); err == nil {
		t.Error("EncodeNested(NaN) succeeded, want an error")
	}
}
