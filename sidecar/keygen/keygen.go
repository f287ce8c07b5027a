// Package keygen writes a fresh merchant RSA key pair to disk, both in the
// form the upstream's console hands out (one line of base64 DER) and as PEM.
//
// The private key files are created with mode 0600 and the public key files
// with mode 0644 whatever the process umask is. Existing files are never
// replaced unless the Force option is given; then they are replaced
// atomically, each by a rename.
package keygen

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// Names of the files Write creates inside its directory.
const (
	// PrivateKeyFile holds the private key as base64 PKCS#8 DER on one
	// line, the form the console hands out.
	PrivateKeyFile = "merchant_private_key.txt"
	// PublicKeyFile holds the public key as base64 X.509
	// SubjectPublicKeyInfo DER on one line, the form the console takes.
	PublicKeyFile = "merchant_public_key.txt"
	// PrivatePEMFile holds the private key as a PKCS#8 "PRIVATE KEY" PEM
	// block.
	PrivatePEMFile = "merchant_private_key.pem"
	// PublicPEMFile holds the public key as a "PUBLIC KEY" PEM block.
	PublicPEMFile = "merchant_public_key.pem"
)

// File modes Write sets, regardless of the umask.
const (
	// PrivateMode is the mode of the private key files.
	PrivateMode fs.FileMode = 0o600
	// PublicMode is the mode of the public key files.
	PublicMode fs.FileMode = 0o644
	// DirMode is the mode of the directory when Write creates it.
	DirMode fs.FileMode = 0o700
)

// Key sizes Write accepts.
const (
	// DefaultBits is the key size used when Write is given zero.
	DefaultBits = 2048
	// MinBits is the smallest key size Write accepts.
	MinBits = 2048
	// MaxBits is the largest key size Write accepts.
	MaxBits = 8192
)

// ErrExists is wrapped by the error Write returns when a file it would
// create already exists and Force was not given.
var ErrExists = errors.New("key file already exists")

// ErrBadSize is wrapped by the error Write returns for a key size outside
// MinBits..MaxBits.
var ErrBadSize = errors.New("unsupported key size")

// Files names what Write wrote.
type Files struct {
	// PrivateKey is the path of PrivateKeyFile.
	PrivateKey string
	// PublicKey is the path of PublicKeyFile.
	PublicKey string
	// PrivatePEM is the path of PrivatePEMFile.
	PrivatePEM string
	// PublicPEM is the path of PublicPEMFile.
	PublicPEM string
	// PublicBase64 is the public key as written to PublicKeyFile, ready to
	// be uploaded to the console. It is not secret.
	PublicBase64 string
}

// Option changes how Write behaves.
type Option func(*options)

type options struct {
	force bool
}

// Force lets Write replace existing key files. Each file is replaced by an
// atomic rename, so a reader sees either the old or the new file, and a
// replaced private key file gets mode 0600 even if the old one was readable
// by others.
func Force() Option {
	return func(o *options) { o.force = true }
}

// Write generates an RSA key pair of the given size in bits (DefaultBits
// when zero) and writes it into dir as PrivateKeyFile, PublicKeyFile,
// PrivatePEMFile and PublicPEMFile. dir is created with mode 0700 if it does
// not exist. Without Force, Write refuses with ErrExists before generating
// anything if any of the four files exists, and removes what it created if
// it fails part way.
func Write(dir string, bits int, opts ...Option) (Files, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if dir == "" {
		return Files{}, errors.New("keygen: no directory given")
	}
	if bits == 0 {
		bits = DefaultBits
	}
	if bits < MinBits || bits > MaxBits {
		return Files{}, fmt.Errorf("keygen: %w: %d bits (want %d to %d)", ErrBadSize, bits, MinBits, MaxBits)
	}
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return Files{}, fmt.Errorf("keygen: create directory: %w", err)
	}
	files := Files{
		PrivateKey: filepath.Join(dir, PrivateKeyFile),
		PublicKey:  filepath.Join(dir, PublicKeyFile),
		PrivatePEM: filepath.Join(dir, PrivatePEMFile),
		PublicPEM:  filepath.Join(dir, PublicPEMFile),
	}
	paths := []string{files.PrivateKey, files.PublicKey, files.PrivatePEM, files.PublicPEM}
	if !o.force {
		for _, p := range paths {
			if _, err := os.Lstat(p); err == nil {
				return Files{}, fmt.Errorf("keygen: %w: %s", ErrExists, p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return Files{}, fmt.Errorf("keygen: check %s: %w", p, err)
			}
		}
	}

	kp, _, err := nkp.GenerateKeyPair(bits)
	if err != nil {
		return Files{}, fmt.Errorf("keygen: %w", err)
	}
	files.PublicBase64 = kp.PublicBase64
	out := []file{
		{files.PrivateKey, []byte(kp.PrivateBase64 + "\n"), PrivateMode},
		{files.PublicKey, []byte(kp.PublicBase64 + "\n"), PublicMode},
		{files.PrivatePEM, []byte(kp.PrivatePEM), PrivateMode},
		{files.PublicPEM, []byte(kp.PublicPEM), PublicMode},
	}
	if o.force {
		err = replaceAll(dir, out)
	} else {
		err = createAll(out)
	}
	if err != nil {
		return Files{}, err
	}
	if err := syncDir(dir); err != nil {
		return Files{}, err
	}
	return files, nil
}

// file is one file to write.
type file struct {
	path    string
	content []byte
	mode    fs.FileMode
}

// createAll creates every file, failing if any exists, and removes the ones
// it created when one fails.
func createAll(files []file) error {
	var created []string
	for _, f := range files {
		if err := createNew(f); err != nil {
			for _, p := range created {
				_ = os.Remove(p)
			}
			return err
		}
		created = append(created, f.path)
	}
	return nil
}

// createNew writes f into a file that must not exist yet.
func createNew(f file) error {
	h, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("keygen: %w: %s", ErrExists, f.path)
		}
		return fmt.Errorf("keygen: create %s: %w", f.path, err)
	}
	if err := fill(h, f); err != nil {
		_ = os.Remove(f.path)
		return err
	}
	return nil
}

// replaceAll writes every file to a temporary file in dir and then renames
// each over its target, so that no target is ever seen half written.
func replaceAll(dir string, files []file) error {
	temps := make([]string, 0, len(files))
	defer func() {
		for _, t := range temps {
			_ = os.Remove(t)
		}
	}()
	for _, f := range files {
		h, err := os.CreateTemp(dir, "."+filepath.Base(f.path)+".*")
		if err != nil {
			return fmt.Errorf("keygen: create temporary file: %w", err)
		}
		temps = append(temps, h.Name())
		if err := fill(h, f); err != nil {
			return err
		}
	}
	for i, f := range files {
		if err := os.Rename(temps[i], f.path); err != nil {
			return fmt.Errorf("keygen: replace %s: %w", f.path, err)
		}
	}
	temps = nil
	return nil
}

// fill sets the mode of h, which the umask may have narrowed at creation,
// writes the content, flushes it to disk and closes h.
func fill(h *os.File, f file) error {
	err := h.Chmod(f.mode)
	if err == nil {
		_, err = h.Write(f.content)
	}
	if err == nil {
		err = h.Sync()
	}
	if cerr := h.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("keygen: write %s: %w", f.path, err)
	}
	return nil
}

// syncDir flushes the directory entries of dir to disk.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("keygen: open directory: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil && !errors.Is(err, fs.ErrInvalid) {
		return fmt.Errorf("keygen: sync directory: %w", err)
	}
	return nil
}
