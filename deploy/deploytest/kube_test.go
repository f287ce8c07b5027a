package deploytest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/paysidecar/paysidecar/internal/testenv"
	"github.com/paysidecar/paysidecar/sidecar/config"
	"github.com/paysidecar/paysidecar/sidecar/delivery"
)

// The parts of Kubernetes objects the tests look at.
type (
	objectMeta struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	}
	deploymentObject struct {
		Metadata objectMeta `yaml:"metadata"`
		Spec     struct {
			Replicas int `yaml:"replicas"`
			Strategy struct {
				Type string `yaml:"type"`
			} `yaml:"strategy"`
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			Template struct {
				Metadata objectMeta `yaml:"metadata"`
				Spec     podSpec    `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	podSpec struct {
		AutomountServiceAccountToken  *bool `yaml:"automountServiceAccountToken"`
		EnableServiceLinks            *bool `yaml:"enableServiceLinks"`
		TerminationGracePeriodSeconds int   `yaml:"terminationGracePeriodSeconds"`
		SecurityContext               struct {
			RunAsNonRoot *bool `yaml:"runAsNonRoot"`
			RunAsUser    int   `yaml:"runAsUser"`
		} `yaml:"securityContext"`
		InitContainers []container `yaml:"initContainers"`
		Containers     []container `yaml:"containers"`
		Volumes        []struct {
			Name     string `yaml:"name"`
			EmptyDir *struct {
				Medium    string `yaml:"medium"`
				SizeLimit string `yaml:"sizeLimit"`
			} `yaml:"emptyDir"`
			ConfigMap *struct {
				Name string `yaml:"name"`
			} `yaml:"configMap"`
		} `yaml:"volumes"`
	}
	container struct {
		Name          string   `yaml:"name"`
		Image         string   `yaml:"image"`
		RestartPolicy string   `yaml:"restartPolicy"`
		Args          []string `yaml:"args"`
		Ports         []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		Env            []envVar `yaml:"env"`
		LivenessProbe  *probe   `yaml:"livenessProbe"`
		ReadinessProbe *probe   `yaml:"readinessProbe"`
		StartupProbe   *probe   `yaml:"startupProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext struct {
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
			Capabilities             struct {
				Drop []string `yaml:"drop"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	}
	envVar struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	}
	probe struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"`
		} `yaml:"httpGet"`
	}
	serviceObject struct {
		Spec struct {
			Type     string            `yaml:"type"`
			Selector map[string]string `yaml:"selector"`
			Ports    []struct {
				Port       int    `yaml:"port"`
				TargetPort string `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	kustomization struct {
		Resources []string `yaml:"resources"`
		Replicas  []struct {
			Name  string `yaml:"name"`
			Count int    `yaml:"count"`
		} `yaml:"replicas"`
		Patches []struct {
			Path string `yaml:"path"`
		} `yaml:"patches"`
	}
)

func decodeInto[T any](t *testing.T, d document) T {
	t.Helper()
	var v T
	if err := yaml.Unmarshal(d.Raw, &v); err != nil {
		t.Fatalf("%s: %v", d.File, err)
	}
	return v
}

func kind(d document) string {
	m, _ := d.Data.(map[string]any)
	k, _ := m["kind"].(string)
	return k
}

func (c container) port(name string) int {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

func (c container) mount(volume string) string {
	for _, m := range c.VolumeMounts {
		if m.Name == volume {
			return m.MountPath
		}
	}
	return ""
}

// container returns the container or init container of that name.
func (p podSpec) container(t *testing.T, name string) container {
	t.Helper()
	for _, c := range append(slices.Clone(p.InitContainers), p.Containers...) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return container{}
}

func baseDeployment(t *testing.T) deploymentObject {
	t.Helper()
	return decodeInto[deploymentObject](t, documentsIn(t, filepath.Join("kubernetes", "base", "deployment.yaml"))[0])
}

func TestManifestsAreWellFormed(t *testing.T) {
	n := 0
	for _, d := range deployDocuments(t) {
		rel, _ := filepath.Rel(deployDir, d.File)
		if !strings.HasPrefix(rel, "kubernetes"+string(filepath.Separator)) {
			continue
		}
		n++
		m, ok := d.Data.(map[string]any)
		if !ok {
			t.Errorf("%s: a document is not a mapping", rel)
			continue
		}
		if m["apiVersion"] == nil || m["kind"] == nil {
			t.Errorf("%s: a document lacks apiVersion or kind", rel)
		}
		if md, _ := m["metadata"].(map[string]any); kind(d) != "Kustomization" && (md == nil || md["name"] == nil) {
			t.Errorf("%s: %s has no metadata.name", rel, kind(d))
		}
	}
	if n < 7 {
		t.Errorf("found only %d Kubernetes documents", n)
	}
}

func TestSidecarContainer(t *testing.T) {
	dep := baseDeployment(t)
	pod := dep.Spec.Template.Spec
	c := pod.container(t, "paysidecar")

	if !mapsContain(dep.Spec.Template.Metadata.Labels, dep.Spec.Selector.MatchLabels) {
		t.Errorf("the selector %v does not match the pod's labels %v", dep.Spec.Selector.MatchLabels, dep.Spec.Template.Metadata.Labels)
	}
	if got := dep.Spec.Template.Metadata.Annotations["prometheus.io/port"]; got != strconv.Itoa(c.port("admin")) {
		t.Errorf("prometheus.io/port = %q, the admin port is %d", got, c.port("admin"))
	}
	tests := []struct {
		name string
		p    *probe
		path string
	}{
		{"liveness", c.LivenessProbe, "/healthz"},
		{"readiness", c.ReadinessProbe, "/readyz"},
	}
	src := goSources(t)
	for _, tt := range tests {
		if tt.p == nil || tt.p.HTTPGet == nil || tt.p.HTTPGet.Path != tt.path || tt.p.HTTPGet.Port != "admin" {
			t.Errorf("%s probe = %+v, want GET %s on the admin port", tt.name, tt.p, tt.path)
		}
		if !bytes.Contains(src, []byte(`"GET `+tt.path+`"`)) {
			t.Errorf("no Go code serves GET %s", tt.path)
		}
	}
	if path := dep.Spec.Template.Metadata.Annotations["prometheus.io/path"]; !bytes.Contains(src, []byte(`"`+path+`"`)) && !bytes.Contains(src, []byte(`"GET `+path+`"`)) {
		t.Errorf("prometheus.io/path = %q, which no Go code serves", path)
	}
	if c.port("notify") != 8001 || c.port("admin") != 9090 {
		t.Errorf("ports = %+v, want notify 8001 and admin 9090", c.Ports)
	}
	if c.port("api") != 0 {
		t.Error("the app API must not be exposed as a container port; it listens on loopback")
	}
	sc := c.SecurityContext
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("container securityContext = %+v, want a read-only root, no privilege escalation, all capabilities dropped", sc)
	}
	if pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.RunAsUser == 0 {
		t.Errorf("pod securityContext = %+v, want a non-root user", pod.SecurityContext)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the pod needs no Kubernetes API token; set automountServiceAccountToken: false")
	}
	for _, k := range []string{"cpu", "memory"} {
		if c.Resources.Requests[k] == "" {
			t.Errorf("no %s request", k)
		}
	}
	if c.Resources.Limits["memory"] == "" {
		t.Error("no memory limit")
	}
	emptyDirs := map[string]bool{}
	for _, v := range pod.Volumes {
		if v.EmptyDir != nil {
			emptyDirs[v.Name] = true
		}
	}
	for _, want := range []string{"/var/lib/paysidecar", "/tmp"} {
		found := false
		for _, m := range c.VolumeMounts {
			found = found || (m.MountPath == want && emptyDirs[m.Name])
		}
		if !found {
			t.Errorf("%s is not an emptyDir mount; with a read-only root nothing else is writable", want)
		}
	}
	for _, e := range c.Env {
		if strings.Contains(e.Name, "KEY") || strings.Contains(e.Name, "SECRET") || strings.Contains(e.Name, "TOKEN") || strings.Contains(e.Name, "DSN") {
			if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				t.Errorf("%s must come from a Secret, not a literal value", e.Name)
			}
		}
	}
}

func mapsContain(have, want map[string]string) bool {
	if len(want) == 0 {
		return false
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func TestServiceReachesTheNotifyPort(t *testing.T) {
	dep := baseDeployment(t)
	svc := decodeInto[serviceObject](t, documentsIn(t, filepath.Join("kubernetes", "base", "service.yaml"))[0])
	if !mapsContain(dep.Spec.Template.Metadata.Labels, svc.Spec.Selector) {
		t.Errorf("the Service selects %v, the pods are labelled %v", svc.Spec.Selector, dep.Spec.Template.Metadata.Labels)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort != "notify" || svc.Spec.Ports[0].Port != 8001 {
		t.Errorf("Service ports = %+v, want only 8001 to the notify port", svc.Spec.Ports)
	}
}

// secretValues returns test values for every key of the example Secret:
// freshly generated keys where the sidecar parses them.
func secretValues(t *testing.T) map[string]string {
	t.Helper()
	var secret struct {
		StringData map[string]string `yaml:"stringData"`
	}
	d := documentsIn(t, filepath.Join("kubernetes", "base", "secret.example.yaml"))[0]
	if err := yaml.Unmarshal(d.Raw, &secret); err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]string{}
	for k := range secret.StringData {
		values[k] = "test-value-of-" + k
	}
	values["upstream-private-key"] = base64.StdEncoding.EncodeToString(priv)
	values["upstream-public-key"] = base64.StdEncoding.EncodeToString(pub)
	values["webhook-secret"] = delivery.SecretPrefix + base64.StdEncoding.EncodeToString([]byte("a-webhook-key-of-32-bytes-length"))
	values["postgres-dsn"] = "postgres://paysidecar@db:5432/paysidecar?sslmode=disable"
	return values
}

// imageEnv returns the environment the Dockerfile's final stage sets.
func imageEnv(t *testing.T) []string {
	t.Helper()
	var env []string
	for _, ins := range dockerInstructions(t, true) {
		if rest, ok := strings.CutPrefix(ins, "ENV "); ok {
			for _, kv := range strings.Fields(rest) {
				if !strings.Contains(kv, "=") {
					t.Fatalf("ENV %q: write ENV KEY=VALUE", rest)
				}
				env = append(env, kv)
			}
		}
	}
	return env
}

// dockerInstructions returns the Dockerfile's instructions with line
// continuations joined and comments dropped; finalOnly keeps those of the
// last stage.
func dockerInstructions(t *testing.T, finalOnly bool) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var out []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(line)
		ins := cur.String()
		cur.Reset()
		if finalOnly && strings.HasPrefix(ins, "FROM ") {
			out = out[:0]
		}
		out = append(out, ins)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// containerEnv resolves a container's environment with the Secret's test
// values, failing on a reference to a key the example Secret lacks.
func containerEnv(t *testing.T, c container, secrets map[string]string) []string {
	t.Helper()
	var env []string
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			ref := e.ValueFrom.SecretKeyRef
			var ok bool
			if v, ok = secrets[ref.Key]; !ok || ref.Name != "paysidecar-secrets" {
				t.Errorf("%s refers to %s/%s, which secret.example.yaml does not define", e.Name, ref.Name, ref.Key)
			}
		}
		env = append(env, e.Name+"="+v)
	}
	return env
}

// configMapFile writes the ConfigMap's config.yaml to a temporary file.
func configMapFile(t *testing.T) string {
	t.Helper()
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	d := documentsIn(t, filepath.Join("kubernetes", "base", "configmap.yaml"))[0]
	if err := yaml.Unmarshal(d.Raw, &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data["config.yaml"] == "" {
		t.Fatal("the ConfigMap has no config.yaml")
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(cm.Data["config.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// overlayEnv applies the PostgreSQL overlay's patch to the sidecar's
// environment the way a strategic merge does: variables merge by name.
func overlayEnv(t *testing.T, base []envVar) ([]envVar, int) {
	t.Helper()
	docs := documentsIn(t, filepath.Join("kubernetes", "postgres", "kustomization.yaml"))
	k := decodeInto[kustomization](t, docs[0])
	if !slices.Contains(k.Resources, "../base") {
		t.Errorf("the overlay's resources %v do not include ../base", k.Resources)
	}
	replicas := 0
	for _, r := range k.Replicas {
		if r.Name == "shop" {
			replicas = r.Count
		}
	}
	if len(k.Patches) != 1 {
		t.Fatalf("want one patch, got %+v", k.Patches)
	}
	patch := decodeInto[deploymentObject](t, documentsIn(t, filepath.Join("kubernetes", "postgres", k.Patches[0].Path))[0])
	merged := slices.Clone(base)
	pod := patch.Spec.Template.Spec
	for _, pc := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		if pc.Name != "paysidecar" {
			continue
		}
		for _, e := range pc.Env {
			i := slices.IndexFunc(merged, func(b envVar) bool { return b.Name == e.Name })
			if i >= 0 {
				merged[i] = e
			} else {
				merged = append(merged, e)
			}
		}
	}
	return merged, replicas
}

func TestConfigurationLoads(t *testing.T) {
	dep := baseDeployment(t)
	pod := dep.Spec.Template.Spec
	side := pod.container(t, "paysidecar")
	app := pod.container(t, "app")
	secrets := secretValues(t)
	file := configMapFile(t)
	if !slices.Contains(side.Args, "--config") || side.mount("config") == "" || !slices.Contains(side.Args, side.mount("config")+"/config.yaml") {
		t.Errorf("args %v do not point --config at the mounted ConfigMap (%s)", side.Args, side.mount("config"))
	}
	pgEnv, replicas := overlayEnv(t, side.Env)
	if replicas < 2 {
		t.Errorf("the PostgreSQL overlay runs %d replicas, want at least 2", replicas)
	}
	if dep.Spec.Strategy.Type != "Recreate" {
		t.Errorf("the SQLite Deployment's strategy is %q; two pods must not run side by side with their own files", dep.Spec.Strategy.Type)
	}
	tests := []struct {
		name   string
		env    []envVar
		driver string
	}{
		{"sqlite", side.Env, "sqlite"},
		{"postgres", pgEnv, "postgres"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := side
			s.Env = tt.env
			// The container's environment comes after the image's, so it wins.
			environ := append(imageEnv(t), containerEnv(t, s, secrets)...)
			cfg, err := config.Load(file, func() []string { return environ })
			if err != nil {
				t.Fatalf("the deployed configuration does not load: %v", err)
			}
			if cfg.Store.Driver != tt.driver {
				t.Errorf("store.driver = %q, want %q", cfg.Store.Driver, tt.driver)
			}
			if tt.driver == "postgres" && cfg.Store.PostgresDSN != secrets["postgres-dsn"] {
				t.Errorf("store.postgres_dsn does not come from the Secret")
			}
			if tt.driver == "sqlite" && filepath.Dir(cfg.Store.SQLitePath) != side.mount("data") {
				t.Errorf("store.sqlite_path = %q, not on the data emptyDir at %s", cfg.Store.SQLitePath, side.mount("data"))
			}
			checkListen(t, "api.listen", cfg.API.Listen, "127.0.0.1", 0)
			checkListen(t, "notify.listen", cfg.Notify.Listen, "0.0.0.0", side.port("notify"))
			checkListen(t, "admin.listen", cfg.Admin.Listen, "0.0.0.0", side.port("admin"))
			if want := fmt.Sprintf("http://127.0.0.1:%d/webhook", app.port("http")); cfg.Webhook.URL != want {
				t.Errorf("webhook.url = %q, want the app container's %s", cfg.Webhook.URL, want)
			}
			if cfg.Webhook.Secret != secrets["webhook-secret"] || cfg.API.Token != secrets["api-token"] {
				t.Error("the webhook secret or the API token does not come from the Secret")
			}
			if got := cfg.Plugins.Flows["wechat-jsapi"].Settings["app_secret"]; got != secrets["wechat-jsapi-app-secret"] {
				t.Errorf("plugins.flows.wechat-jsapi.settings.app_secret = %q, want the Secret's value", got)
			}
			if got := cfg.Plugins.Flows["wechat-miniapp"].Settings["app_secret"]; got != secrets["wechat-miniapp-app-secret"] {
				t.Errorf("plugins.flows.wechat-miniapp.settings.app_secret = %q, want the Secret's value", got)
			}
			if len(cfg.Hints) != 0 {
				t.Errorf("the deployed configuration uses old forms: %v", cfg.Hints)
			}
			if cfg.Plugins.Dir != "/usr/lib/paysidecar/plugins" {
				t.Errorf("plugins.dir = %q, want where the image installs them", cfg.Plugins.Dir)
			}
			for name, f := range cfg.Plugins.Flows {
				for _, v := range f.Settings {
					if strings.Contains(v, "127.0.0.1") {
						t.Errorf("plugin %s still points at the sandbox: %s", name, v)
					}
				}
			}
			if strings.Contains(cfg.Upstream.BaseURL, "127.0.0.1") || cfg.SandboxKeysAllowed() {
				t.Errorf("upstream.base_url %q is the sandbox", cfg.Upstream.BaseURL)
			}
		})
	}
}

func checkListen(t *testing.T, key, addr, wantHost string, wantPort int) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Errorf("%s = %q: %v", key, addr, err)
		return
	}
	if host != wantHost || (wantPort != 0 && port != strconv.Itoa(wantPort)) {
		t.Errorf("%s = %q, want host %s and port %d", key, addr, wantHost, wantPort)
	}
}

func TestDockerfile(t *testing.T) {
	all := dockerInstructions(t, false)
	final := dockerInstructions(t, true)
	froms := 0
	for _, ins := range all {
		if strings.HasPrefix(ins, "FROM ") {
			froms++
		}
	}
	if froms < 2 {
		t.Errorf("%d stages; build in one and run from a small base in another", froms)
	}
	text := strings.Join(all, "\n")
	// Every directory under plugins/ that holds a main package is built,
	// and no flow is named: adding a flow is adding a directory.
	for _, want := range []string{"./sidecar/cmd/paysidecar", `"./plugins/${flow}"`, "for dir in plugins/*/", "= main ]"} {
		if !strings.Contains(text, want) {
			t.Errorf("the Dockerfile does not build %s", want)
		}
	}
	dirs, err := os.ReadDir(filepath.Join(repoRoot, "plugins"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if d.IsDir() && strings.Contains(text, d.Name()) {
			t.Errorf("the Dockerfile names the flow %s", d.Name())
		}
	}
	var user, copiesPlugins bool
	for _, ins := range final {
		if u, ok := strings.CutPrefix(ins, "USER "); ok {
			user = !strings.HasPrefix(u, "0") && !strings.HasPrefix(u, "root")
		}
		copiesPlugins = copiesPlugins || (strings.HasPrefix(ins, "COPY ") && strings.HasSuffix(ins, " /usr/lib/paysidecar/plugins/"))
	}
	if !user {
		t.Error("the final stage must run as a non-root USER")
	}
	if !copiesPlugins {
		t.Error("the final stage does not install the plugins in /usr/lib/paysidecar/plugins")
	}
	if !slices.Contains(imageEnv(t), "PAYSIDECAR_PLUGINS__DIR=/usr/lib/paysidecar/plugins") {
		t.Error("the image does not point plugins.dir at its plugins")
	}
	if _, err := os.Stat(filepath.Join(repoRoot, ".dockerignore")); err != nil {
		t.Errorf("no .dockerignore: %v", err)
	}
}

// TestKustomizeBuilds renders both variants with kubectl where it is
// installed and checks what the PostgreSQL overlay changes.
func TestKustomizeBuilds(t *testing.T) {
	kubectl := testenv.LookPath(t, "renders the kustomizations", "kubectl")
	render := func(dir string) []document {
		out, err := exec.Command(kubectl, "kustomize", filepath.Join(deployDir, "kubernetes", dir)).Output()
		if err != nil {
			t.Fatalf("kubectl kustomize %s: %v", dir, err)
		}
		var docs []document
		for _, part := range strings.Split(string(out), "\n---\n") {
			var v map[string]any
			if err := yaml.Unmarshal([]byte(part), &v); err != nil {
				t.Fatalf("%s: %v", dir, err)
			}
			docs = append(docs, document{File: dir, Data: v, Raw: []byte(part)})
		}
		return docs
	}
	deployment := func(docs []document) deploymentObject {
		for _, d := range docs {
			if kind(d) == "Deployment" {
				return decodeInto[deploymentObject](t, d)
			}
		}
		t.Fatal("no Deployment rendered")
		return deploymentObject{}
	}
	base, pg := deployment(render("base")), deployment(render("postgres"))
	if base.Spec.Replicas != 1 || pg.Spec.Replicas != 2 {
		t.Errorf("replicas = %d and %d, want 1 and 2", base.Spec.Replicas, pg.Spec.Replicas)
	}
	if pg.Spec.Strategy.Type != "RollingUpdate" {
		t.Errorf("the PostgreSQL variant's strategy is %q", pg.Spec.Strategy.Type)
	}
	side := pg.Spec.Template.Spec.container(t, "paysidecar")
	merged, _ := overlayEnv(t, base.Spec.Template.Spec.container(t, "paysidecar").Env)
	if len(side.Env) != len(merged) {
		t.Errorf("kubectl renders %d variables, the test's merge %d", len(side.Env), len(merged))
	}
	for _, e := range merged {
		if !slices.ContainsFunc(side.Env, func(r envVar) bool { return r.Name == e.Name && r.Value == e.Value }) {
			t.Errorf("kubectl's rendering lacks %s", e.Name)
		}
	}
}
