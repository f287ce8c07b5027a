package keygen

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// checkPair asserts that the four files in f exist with the right modes,
// hold one key pair in the right encodings, and that the two halves belong
// together. It returns the private key.
func checkPair(t *testing.T, f Files) *rsa.PrivateKey {
	t.Helper()
	for _, c := range []struct {
		path string
		mode fs.FileMode
	}{
		{f.PrivateKey, PrivateMode},
		{f.PublicKey, PublicMode},
		{f.PrivatePEM, PrivateMode},
		{f.PublicPEM, PublicMode},
	} {
		fi, err := os.Lstat(c.path)
		if err != nil {
			t.Fatalf("stat: %v", err)
		}
		if !fi.Mode().IsRegular() {
			t.Errorf("%s is %v, want a regular file", c.path, fi.Mode())
		}
		if got := fi.Mode().Perm(); got != c.mode {
			t.Errorf("%s has mode %v, want %v", c.path, got, c.mode)
		}
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	privTxt, pubTxt, privPEM, pubPEM := read(f.PrivateKey), read(f.PublicKey), read(f.PrivatePEM), read(f.PublicPEM)

	// The console forms are one line of base64 DER: PKCS#8 and X.509.
	for name, s := range map[string]string{"private": privTxt, "public": pubTxt} {
		line := strings.TrimSuffix(s, "\n")
		if strings.ContainsAny(line, "\r\n -") {
			t.Errorf("%s .txt is not one line of base64: %q", name, s)
		}
	}
	der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(privTxt))
	if err != nil {
		t.Fatalf("private .txt is not base64: %v", err)
	}
	if _, err := x509.ParsePKCS8PrivateKey(der); err != nil {
		t.Errorf("private .txt is not PKCS#8 DER: %v", err)
	}
	der, err = base64.StdEncoding.DecodeString(strings.TrimSpace(pubTxt))
	if err != nil {
		t.Fatalf("public .txt is not base64: %v", err)
	}
	if _, err := x509.ParsePKIXPublicKey(der); err != nil {
		t.Errorf("public .txt is not X.509 SubjectPublicKeyInfo DER: %v", err)
	}
	if f.PublicBase64 != strings.TrimSpace(pubTxt) {
		t.Errorf("Files.PublicBase64 differs from %s", f.PublicKey)
	}
	if !strings.HasPrefix(privPEM, "-----BEGIN PRIVATE KEY-----\n") || !strings.HasPrefix(pubPEM, "-----BEGIN PUBLIC KEY-----\n") {
		t.Errorf("PEM files have unexpected block types:\n%.40s\n%.40s", privPEM, pubPEM)
	}

	priv, err := nkp.ParsePrivateKey(privTxt)
	if err != nil {
		t.Fatalf("private .txt: %v", err)
	}
	priv2, err := nkp.ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatalf("private .pem: %v", err)
	}
	pub, err := nkp.ParsePublicKey(pubTxt)
	if err != nil {
		t.Fatalf("public .txt: %v", err)
	}
	pub2, err := nkp.ParsePublicKey(pubPEM)
	if err != nil {
		t.Fatalf("public .pem: %v", err)
	}
	if !priv.Equal(priv2) {
		t.Error("the private .txt and .pem hold different keys")
	}
	if !pub.Equal(pub2) {
		t.Error("the public .txt and .pem hold different keys")
	}
	if !pub.Equal(&priv.PublicKey) {
		t.Error("the public key does not belong to the private key")
	}
	msg := []byte(`{"huifu_id":"6666000123456789","trans_amt":"0.10"}`)
	sig, err := nkp.Sign(priv, msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := nkp.Verify(pub2, msg, sig); err != nil {
		t.Errorf("signature by the private key does not verify with the public key: %v", err)
	}
	return priv
}

func TestWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys", "merchant")
	f, err := Write(dir, 0)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	want := Files{
		PrivateKey: filepath.Join(dir, "merchant_private_key.txt"),
		PublicKey:  filepath.Join(dir, "merchant_public_key.txt"),
		PrivatePEM: filepath.Join(dir, "merchant_private_key.pem"),
		PublicPEM:  filepath.Join(dir, "merchant_public_key.pem"),
	}
	if f.PrivateKey != want.PrivateKey || f.PublicKey != want.PublicKey || f.PrivatePEM != want.PrivatePEM || f.PublicPEM != want.PublicPEM {
		t.Errorf("Files = %+v, want paths %+v", f, want)
	}
	priv := checkPair(t, f)
	if priv.N.BitLen() != DefaultBits {
		t.Errorf("key has %d bits, want %d", priv.N.BitLen(), DefaultBits)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != DirMode {
		t.Errorf("created directory has mode %v, want %v", fi.Mode().Perm(), DirMode)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 4 {
		t.Errorf("directory holds %d entries, want the 4 key files", len(entries))
	}
}

func TestWriteSize(t *testing.T) {
	f, err := Write(t.TempDir(), 3072)
	if err != nil {
		t.Fatal(err)
	}
	if priv := checkPair(t, f); priv.N.BitLen() != 3072 {
		t.Errorf("key has %d bits, want 3072", priv.N.BitLen())
	}
}

func TestWriteRefusesBadSize(t *testing.T) {
	for _, bits := range []int{-1, 512, 1024, 2047, MaxBits + 1} {
		dir := filepath.Join(t.TempDir(), "k")
		_, err := Write(dir, bits)
		if !errors.Is(err, ErrBadSize) {
			t.Errorf("Write(%d bits) error = %v, want ErrBadSize", bits, err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Write(%d bits) created its directory: %v", bits, err)
		}
	}
}

func TestWriteRefusesOverwrite(t *testing.T) {
	for _, name := range []string{PrivateKeyFile, PublicKeyFile, PrivatePEMFile, PublicPEMFile} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			existing := filepath.Join(dir, name)
			if err := os.WriteFile(existing, []byte("keep me"), 0o640); err != nil {
				t.Fatal(err)
			}
			_, err := Write(dir, 0)
			if !errors.Is(err, ErrExists) {
				t.Fatalf("Write error = %v, want ErrExists", err)
			}
			if !strings.Contains(err.Error(), name) {
				t.Errorf("error %q does not name the file", err)
			}
			b, err := os.ReadFile(existing)
			if err != nil || string(b) != "keep me" {
				t.Errorf("existing file changed: %q, %v", b, err)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				t.Errorf("Write left %d entries, want only the existing file", len(entries))
			}
		})
	}
}

func TestWriteRefusesDanglingSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.Symlink(target, filepath.Join(dir, PrivateKeyFile)); err != nil {
		t.Skipf("symlinks unavailable: %v", err)
	}
	if _, err := Write(dir, 0); !errors.Is(err, ErrExists) {
		t.Fatalf("Write error = %v, want ErrExists", err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Write followed the symlink: %v", err)
	}
}

func TestWriteForce(t *testing.T) {
	dir := t.TempDir()
	first, err := Write(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	old := checkPair(t, first)
	if _, err := Write(dir, 0); !errors.Is(err, ErrExists) {
		t.Fatalf("second Write error = %v, want ErrExists", err)
	}
	again := checkPair(t, first)
	if !again.Equal(old) {
		t.Fatal("a refused Write changed the key")
	}

	// An old private key file that others can read is replaced by one that
	// they cannot, and a symlink is replaced rather than followed.
	if err := os.Chmod(first.PrivateKey, 0o644); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "outside.pem")
	if err := os.WriteFile(outside, []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(first.PublicPEM); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, first.PublicPEM); err != nil {
		t.Fatal(err)
	}

	second, err := Write(dir, 0, Force())
	if err != nil {
		t.Fatalf("Write with Force: %v", err)
	}
	replaced := checkPair(t, second)
	if replaced.Equal(old) {
		t.Error("Write with Force kept the old key")
	}
	if b, err := os.ReadFile(outside); err != nil || string(b) != "outside" {
		t.Errorf("the symlink target changed: %q, %v", b, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 4 {
		names := make([]string, 0, len(entries))
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want the 4 key files and no temporary file", names)
	}

	// Force on an empty directory simply writes.
	fresh, err := Write(filepath.Join(t.TempDir(), "new"), 0, Force())
	if err != nil {
		t.Fatal(err)
	}
	checkPair(t, fresh)
}

func TestWriteIntoFile(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(notDir, 0); err == nil {
		t.Fatal("Write into a regular file succeeded")
	}
	if _, err := Write(notDir, 0, Force()); err == nil {
		t.Fatal("Write with Force into a regular file succeeded")
	}
	if _, err := Write("", 0); err == nil {
		t.Fatal("Write without a directory succeeded")
	}
}

// openssl returns the path of the openssl command, skipping the test when
// it is missing unless CI is set.
func openssl(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("openssl is required when CI is set: %v", err)
		}
		t.Skipf("openssl not found: %v", err)
	}
	return path
}

func TestOpenSSLReadsKeys(t *testing.T) {
	bin := openssl(t)
	f, err := Write(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	run := func(stdin []byte, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Stdin = bytes.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("openssl %s: %v: %s", strings.Join(args, " "), err, stderr.String())
		}
		return out
	}
	pubPEM, err := os.ReadFile(f.PublicPEM)
	if err != nil {
		t.Fatal(err)
	}

	if out := run(nil, "rsa", "-in", f.PrivatePEM, "-check", "-noout"); !bytes.Contains(out, []byte("RSA key ok")) {
		t.Errorf("openssl rsa -check: %s", out)
	}
	// openssl derives from the private PEM exactly the public PEM we wrote.
	if out := run(nil, "pkey", "-in", f.PrivatePEM, "-pubout"); !bytes.Equal(out, pubPEM) {
		t.Errorf("openssl's public key differs from %s:\n%s", f.PublicPEM, out)
	}
	// openssl reads the public PEM, and writes it back as the DER of the
	// public .txt file.
	der := run(nil, "pkey", "-pubin", "-in", f.PublicPEM, "-outform", "DER")
	if got := base64.StdEncoding.EncodeToString(der); got != f.PublicBase64 {
		t.Errorf("openssl's public DER differs from %s", f.PublicKey)
	}
	// openssl reads the private .txt file as DER.
	privTxt, err := os.ReadFile(f.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(privTxt)))
	if err != nil {
		t.Fatal(err)
	}
	if out := run(privDER, "pkey", "-inform", "DER", "-pubout"); !bytes.Equal(out, pubPEM) {
		t.Errorf("openssl's public key from the private .txt differs from %s:\n%s", f.PublicPEM, out)
	}
	// A signature openssl makes with the private PEM verifies with the
	// public .txt file.
	msg := []byte(`{"req_date":"20250101","trans_amt":"0.10"}`)
	msgFile := filepath.Join(t.TempDir(), "msg")
	if err := os.WriteFile(msgFile, msg, 0o600); err != nil {
		t.Fatal(err)
	}
	sig := run(nil, "dgst", "-sha256", "-sign", f.PrivatePEM, msgFile)
	pub, err := nkp.ParsePublicKey(f.PublicBase64)
	if err != nil {
		t.Fatal(err)
	}
	if err := nkp.Verify(pub, msg, base64.StdEncoding.EncodeToString(sig)); err != nil {
		t.Errorf("openssl's signature does not verify with the public key: %v", err)
	}
}
