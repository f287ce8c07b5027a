package deploytest

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/app"
	"github.com/paysidecar/paysidecar/sidecar/config"
	"github.com/paysidecar/paysidecar/sidecar/keygen"
)

// appShutdownBudget is the time the manifests leave the application to
// stop before the sidecar's drain begins.
const appShutdownBudget = 15 * time.Second

// TestNativeSidecar checks the pod layout: paysidecar is a native sidecar
// (an init container that keeps running), the application starts once the
// sidecar's startup probe passes, the grace period covers the
// application's shutdown and then the sidecar's drain, and the pod gets no
// service-link variables.
func TestNativeSidecar(t *testing.T) {
	dep := baseDeployment(t)
	pod := dep.Spec.Template.Spec
	if slices.ContainsFunc(pod.Containers, func(c container) bool { return c.Name == "paysidecar" }) {
		t.Fatal("paysidecar is an ordinary container; make it a native sidecar (an init container with restartPolicy: Always)")
	}
	side := pod.container(t, "paysidecar")
	if side.RestartPolicy != "Always" {
		t.Errorf("the paysidecar init container's restartPolicy is %q: without Always it must exit before the application starts", side.RestartPolicy)
	}
	if side.StartupProbe == nil || side.StartupProbe.HTTPGet == nil || side.StartupProbe.HTTPGet.Port != "admin" {
		t.Error("the sidecar needs a startup probe on the admin port: the application starts once it passes")
	}
	for _, c := range pod.Containers {
		if c.RestartPolicy != "" {
			t.Errorf("container %s sets restartPolicy, which only init containers may", c.Name)
		}
	}
	if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
		t.Error("set enableServiceLinks: false; the namespace's Services need not appear in the environment")
	}

	cfg, err := config.Load(configMapFile(t), func() []string {
		return append(imageEnv(t), containerEnv(t, side, secretValues(t))...)
	})
	if err != nil {
		t.Fatal(err)
	}
	// The sidecar drains its servers, then waits for a delivery in
	// flight; a few seconds more stop the plugins and close the store.
	drain := app.DrainTimeout + cfg.Webhook.Timeout + 5*time.Second
	grace := time.Duration(pod.TerminationGracePeriodSeconds) * time.Second
	if grace < appShutdownBudget+drain {
		t.Errorf("terminationGracePeriodSeconds is %s; the application's %s and the sidecar's drain of %s need %s",
			grace, appShutdownBudget, drain, appShutdownBudget+drain)
	}
	if grace > 2*(appShutdownBudget+drain) {
		t.Errorf("terminationGracePeriodSeconds is %s, far beyond what a stop needs (%s): a stuck pod lingers", grace, appShutdownBudget+drain)
	}
}

var keyPathRe = regexp.MustCompile(`keys/([A-Za-z0-9_.-]+)`)

// TestKeyFileNamesMatchKeygen checks that every merchant key file the
// deployment docs and the Dockerfile name is one keygen writes, and that
// the private key given to the Secret is keygen's base64 DER file.
func TestKeyFileNamesMatchKeygen(t *testing.T) {
	written := []string{keygen.PrivateKeyFile, keygen.PublicKeyFile, keygen.PrivatePEMFile, keygen.PublicPEMFile}
	files := []string{
		filepath.Join(deployDir, "README.md"),
		filepath.Join(deployDir, "kubernetes", "base", "secret.example.yaml"),
		filepath.Join(repoRoot, "Dockerfile"),
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		refs := keyPathRe.FindAllStringSubmatch(text, -1)
		if len(refs) == 0 {
			t.Errorf("%s names no key file", f)
		}
		for _, m := range refs {
			name := m[1]
			if strings.HasPrefix(name, "merchant_") && !slices.Contains(written, name) {
				t.Errorf("%s names keys/%s, which keygen does not write (it writes %v)", f, name, written)
			}
		}
		for _, line := range strings.Split(text, "\n") {
			if strings.Contains(line, "upstream-private-key=keys/") && !strings.Contains(line, "keys/"+keygen.PrivateKeyFile) {
				t.Errorf("%s: the Secret's private key must be keygen's %s: %s", f, keygen.PrivateKeyFile, strings.TrimSpace(line))
			}
			if strings.Contains(line, "PRIVATE_KEY=") && strings.Contains(line, "keys/") && !strings.Contains(line, "keys/"+keygen.PrivateKeyFile) {
				t.Errorf("%s: the private key variable must be read from keygen's %s: %s", f, keygen.PrivateKeyFile, strings.TrimSpace(line))
			}
		}
	}
}
