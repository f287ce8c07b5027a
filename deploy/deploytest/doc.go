// Package deploytest checks the deployment files under deploy/ and the
// Dockerfile against the code they describe. Its tests parse every YAML and
// JSON file under deploy/; check that every metric the Prometheus alerts and
// the Grafana dashboard reference is registered by the Go code; check the
// alert rules' and dashboard's structure (and run promtool's rule unit tests
// where promtool is installed); check the Kubernetes manifests (probes,
// ports, security context, resources, volumes, secrets); and load the
// ConfigMap's configuration with the real configuration loader, with the
// image's and the Deployment's environment, for the SQLite and the
// PostgreSQL variants.
package deploytest
