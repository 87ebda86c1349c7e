package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// k8sObject is what these tests read of a Kubernetes object: the fields
// of the kinds in deploy/kubernetes, decoded from YAML through JSON.
type k8sObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	// Secret
	StringData map[string]string `json:"stringData"`
	// Kustomization
	Resources []string `json:"resources"`
	Spec      struct {
		// Deployment
		Replicas int `json:"replicas"`
		Strategy struct {
			Type string `json:"type"`
		} `json:"strategy"`
		Selector json.RawMessage `json:"selector"` // a label selector, or the Service's map
		Template struct {
			Metadata struct {
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
			Spec k8sPodSpec `json:"spec"`
		} `json:"template"`
		// Service
		Ports []struct {
			Name       string `json:"name"`
			Port       int    `json:"port"`
			TargetPort any    `json:"targetPort"`
		} `json:"ports"`
		// PodDisruptionBudget
		MaxUnavailable any `json:"maxUnavailable"`
		MinAvailable   any `json:"minAvailable"`
	} `json:"spec"`
}

type k8sPodSpec struct {
	AutomountServiceAccountToken *bool `json:"automountServiceAccountToken"`
	EnableServiceLinks           *bool `json:"enableServiceLinks"`
	SecurityContext              struct {
		RunAsNonRoot *bool `json:"runAsNonRoot"`
		RunAsUser    int   `json:"runAsUser"`
	} `json:"securityContext"`
	Containers []struct {
		Name  string `json:"name"`
		Image string `json:"image"`
		Ports []struct {
			Name          string `json:"name"`
			ContainerPort int    `json:"containerPort"`
		} `json:"ports"`
		Env []struct {
			Name      string  `json:"name"`
			Value     *string `json:"value"`
			ValueFrom *struct {
				SecretKeyRef *struct {
					Name string `json:"name"`
					Key  string `json:"key"`
				} `json:"secretKeyRef"`
			} `json:"valueFrom"`
		} `json:"env"`
		StartupProbe    *k8sProbe `json:"startupProbe"`
		LivenessProbe   *k8sProbe `json:"livenessProbe"`
		ReadinessProbe  *k8sProbe `json:"readinessProbe"`
		SecurityContext struct {
			RunAsNonRoot             *bool `json:"runAsNonRoot"`
			ReadOnlyRootFilesystem   *bool `json:"readOnlyRootFilesystem"`
			AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
			Capabilities             struct {
				Drop []string `json:"drop"`
			} `json:"capabilities"`
		} `json:"securityContext"`
		VolumeMounts []struct {
			Name      string `json:"name"`
			MountPath string `json:"mountPath"`
		} `json:"volumeMounts"`
	} `json:"containers"`
	Volumes []struct {
		Name     string `json:"name"`
		EmptyDir any    `json:"emptyDir"`
	} `json:"volumes"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `json:"path"`
		Port any    `json:"port"`
	} `json:"httpGet"`
}

// readManifests parses every document of every deploy/kubernetes/*.yaml.
func readManifests(t *testing.T) map[string][]k8sObject {
	t.Helper()
	files, err := filepath.Glob("../../deploy/kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/kubernetes: %v", err)
	}
	out := map[string][]k8sObject{}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b), yaml.Strict())
		for i := 0; ; i++ {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s, document %d: %v", filepath.Base(file), i, err)
			}
			if doc == nil {
				continue
			}
			j, err := json.Marshal(doc)
			if err != nil {
				t.Fatalf("%s, document %d: %v", filepath.Base(file), i, err)
			}
			var obj k8sObject
			if err := json.Unmarshal(j, &obj); err != nil {
				t.Fatalf("%s, document %d: %v", filepath.Base(file), i, err)
			}
			if obj.APIVersion == "" || obj.Kind == "" || (obj.Metadata.Name == "" && obj.Kind != "Kustomization") {
				t.Errorf("%s, document %d: apiVersion %q, kind %q, metadata.name %q", filepath.Base(file), i, obj.APIVersion, obj.Kind, obj.Metadata.Name)
			}
			out[filepath.Base(file)] = append(out[filepath.Base(file)], obj)
		}
	}
	return out
}

// TestKubernetesManifests parses deploy/kubernetes and checks that the
// objects fit together (selectors, ports, Secret keys, settings) and hold
// what production needs: non-root, read-only root filesystem, probes on
// /readyz and /healthz, which a real server answers 200.
func TestKubernetesManifests(t *testing.T) {
	files := readManifests(t)
	byKind := map[string][]k8sObject{}
	apiVersions := map[string]string{
		"Deployment": "apps/v1", "Service": "v1", "Secret": "v1",
		"PodDisruptionBudget": "policy/v1", "Kustomization": "kustomize.config.k8s.io/v1beta1",
	}
	for file, objs := range files {
		for _, o := range objs {
			if want, ok := apiVersions[o.Kind]; !ok || o.APIVersion != want {
				t.Errorf("%s: %s %s, want one of %v", file, o.APIVersion, o.Kind, apiVersions)
			}
			byKind[o.Kind] = append(byKind[o.Kind], o)
		}
	}
	for kind := range apiVersions {
		if len(byKind[kind]) != 1 {
			t.Fatalf("%d objects of kind %s, want 1", len(byKind[kind]), kind)
		}
	}
	dep, svc, secret, pdb, kust := byKind["Deployment"][0], byKind["Service"][0], byKind["Secret"][0], byKind["PodDisruptionBudget"][0], byKind["Kustomization"][0]

	// The Kustomization lists every other file.
	var others []string
	for file := range files {
		if file != "kustomization.yaml" {
			others = append(others, file)
		}
	}
	slices.Sort(others)
	if got := slices.Sorted(slices.Values(kust.Resources)); !slices.Equal(got, others) {
		t.Errorf("kustomization.yaml resources %v, want %v", got, others)
	}

	// Selectors: the Deployment's, the Service's and the PDB's all pick
	// the pods of the template.
	podLabels := dep.Spec.Template.Metadata.Labels
	var depSel, pdbSel struct {
		MatchLabels map[string]string `json:"matchLabels"`
	}
	var svcSel map[string]string
	for _, s := range []struct {
		name string
		raw  json.RawMessage
		into any
	}{{"Deployment", dep.Spec.Selector, &depSel}, {"PodDisruptionBudget", pdb.Spec.Selector, &pdbSel}, {"Service", svc.Spec.Selector, &svcSel}} {
		if err := json.Unmarshal(s.raw, s.into); err != nil {
			t.Fatalf("%s selector: %v", s.name, err)
		}
	}
	for name, sel := range map[string]map[string]string{"Deployment": depSel.MatchLabels, "PodDisruptionBudget": pdbSel.MatchLabels, "Service": svcSel} {
		if len(sel) == 0 {
			t.Errorf("%s selects every pod", name)
		}
		for k, v := range sel {
			if podLabels[k] != v {
				t.Errorf("%s selector %s=%s does not match the pod labels %v", name, k, v, podLabels)
			}
		}
	}

	// Replicas, upgrades, disruptions (docs/production.md).
	if dep.Spec.Replicas < 2 {
		t.Errorf("replicas = %d, want at least 2", dep.Spec.Replicas)
	}
	if dep.Spec.Strategy.Type != "Recreate" {
		t.Errorf("strategy %q: replicas of two versions would run side by side (docs/production.md, Upgrades)", dep.Spec.Strategy.Type)
	}
	if pdb.Spec.MaxUnavailable == nil && pdb.Spec.MinAvailable == nil {
		t.Error("the PodDisruptionBudget sets neither maxUnavailable nor minAvailable")
	}

	pod := dep.Spec.Template.Spec
	if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
		t.Error("enableServiceLinks is not false: the Service m2mauth would put M2MAUTH_* variables in the environment")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken is not false")
	}
	if p := pod.SecurityContext.RunAsNonRoot; p == nil || !*p || pod.SecurityContext.RunAsUser != 65532 {
		t.Errorf("pod securityContext: runAsNonRoot %v, runAsUser %d; want true, 65532 (the image's user)", p, pod.SecurityContext.RunAsUser)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
		t.Errorf("container securityContext %+v: want runAsNonRoot, readOnlyRootFilesystem, no privilege escalation, capabilities dropped", sc)
	}
	// A read-only root filesystem: the data dir and /tmp are volumes.
	volumes := map[string]bool{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v.EmptyDir != nil
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
		if !volumes[m.Name] {
			t.Errorf("mount %s: volume %q is not an emptyDir of the pod", m.MountPath, m.Name)
		}
	}
	for _, p := range []string{"/data", "/tmp"} {
		if mounts[p] == "" {
			t.Errorf("nothing is mounted on %s, which the read-only root filesystem needs", p)
		}
	}

	// Ports: the container's, the address it listens on, the Service's.
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 8080 || c.Ports[0].Name != "http" {
		t.Fatalf("container ports %+v, want http 8080", c.Ports)
	}
	if len(svc.Spec.Ports) != 1 || (svc.Spec.Ports[0].TargetPort != "http" && svc.Spec.Ports[0].TargetPort != float64(8080)) {
		t.Errorf("Service ports %+v, want one targeting the container's http port", svc.Spec.Ports)
	}

	// Environment: every variable is a setting; the secrets come from the
	// Secret, under keys it has; the issuer is an https URL.
	settingsEnv := map[string]bool{}
	for _, s := range serveSettings {
		settingsEnv[s.env] = s.secret
	}
	env := map[string]string{}
	for _, e := range c.Env {
		isSecret, ok := settingsEnv[e.Name]
		if !ok {
			t.Errorf("env %s is not a setting of serve", e.Name)
		}
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if ref.Name != secret.Metadata.Name || secret.StringData[ref.Key] == "" {
				t.Errorf("env %s from Secret %s key %s, which the Secret %s (keys %v) lacks", e.Name, ref.Name, ref.Key, secret.Metadata.Name, slices.Sorted(maps.Keys(secret.StringData)))
			}
			env[e.Name] = secret.StringData[ref.Key]
		case e.Value != nil:
			if isSecret {
				t.Errorf("env %s is a secret written in the Deployment", e.Name)
			}
			env[e.Name] = *e.Value
		default:
			t.Errorf("env %s has neither a value nor a Secret reference", e.Name)
		}
	}
	for _, name := range []string{"M2MAUTH_ISSUER", "M2MAUTH_DATABASE_URL", "M2MAUTH_MASTER_KEY"} {
		if env[name] == "" {
			t.Errorf("env %s is not set: a replica on PostgreSQL behind a wildcard address needs it", name)
		}
	}
	if !strings.HasPrefix(env["M2MAUTH_ISSUER"], "https://") {
		t.Errorf("M2MAUTH_ISSUER %q is not the public https URL", env["M2MAUTH_ISSUER"])
	}
	if addr := env["M2MAUTH_ADDR"]; addr != "" && !strings.HasSuffix(addr, ":8080") {
		t.Errorf("M2MAUTH_ADDR %q does not listen on the container port 8080", addr)
	}
	// serve chmods its data dir to 0700, which an emptyDir's mount point,
	// owned by root, refuses to the image's user: a directory inside it.
	if dir := env["M2MAUTH_DATA_DIR"]; mounts[filepath.Dir(dir)] == "" {
		t.Errorf("M2MAUTH_DATA_DIR %q is not a directory inside a mounted emptyDir", dir)
	}
	if !strings.HasPrefix(env["M2MAUTH_DATABASE_URL"], "postgres://") {
		t.Errorf("database-url %q is not a postgres:// URL", env["M2MAUTH_DATABASE_URL"])
	}
	// The example master key must not work: copied as it is, it would be
	// everyone's key.
	if k, err := base64.StdEncoding.DecodeString(env["M2MAUTH_MASTER_KEY"]); err == nil && len(k) == 32 {
		t.Error("the Secret's placeholder master key is a usable key")
	}

	// Probes: HTTP on the container's port, on paths the server answers.
	probes := map[string]*k8sProbe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe}
	wantPath := map[string]string{"startup": "/healthz", "liveness": "/healthz", "readiness": "/readyz"}
	ts := startServer(t)
	for name, p := range probes {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("no %s httpGet probe", name)
			continue
		}
		if p.HTTPGet.Path != wantPath[name] || (p.HTTPGet.Port != "http" && p.HTTPGet.Port != float64(8080)) {
			t.Errorf("%s probe GET %s on port %v, want %s on the http port", name, p.HTTPGet.Path, p.HTTPGet.Port, wantPath[name])
		}
		resp, err := http.Get(ts.URL + p.HTTPGet.Path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s probe: GET %s answers %d, want 200", name, p.HTTPGet.Path, resp.StatusCode)
		}
	}
}

// readUnit parses a systemd unit file into section → key → values (a key
// may repeat), as systemd reads it: # and ; comments, no continuations.
func readUnit(t *testing.T, file string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	unit := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			unit[section] = map[string][]string{}
		case strings.HasSuffix(line, `\`):
			t.Fatalf("%s:%d: a continued line, which this parser does not read", file, n)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: %q is neither a section nor key=value in one", file, n, line)
			}
			unit[section][strings.TrimSpace(k)] = append(unit[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return unit
}

// TestSystemdUnit parses deploy/systemd/m2mauth.service, checks its
// hardening and its settings, and has systemd-analyze verify it when
// systemd-analyze is installed.
func TestSystemdUnit(t *testing.T) {
	const file = "../../deploy/systemd/m2mauth.service"
	unit := readUnit(t, file)
	svc := unit["Service"]
	if svc == nil || unit["Unit"] == nil || unit["Install"] == nil {
		t.Fatalf("sections %v, want Unit, Service and Install", slices.Collect(maps.Keys(unit)))
	}
	for key, want := range map[string]string{
		"ExecStart":               "/usr/local/bin/m2mauth serve",
		"DynamicUser":             "yes",
		"StateDirectory":          "m2mauth",
		"StateDirectoryMode":      "0700",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"NoNewPrivileges":         "yes",
		"CapabilityBoundingSet":   "",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"LoadCredential":          "master.key:/etc/m2mauth/master.key",
	} {
		if got, ok := svc[key]; !ok || !slices.Contains(got, want) {
			t.Errorf("[Service] %s = %q, want %q among them", key, got, want)
		}
	}
	if got := svc["SystemCallFilter"]; len(got) == 0 || got[0] != "@system-service" {
		t.Errorf("[Service] SystemCallFilter = %q, want @system-service first", got)
	}
	// The data dir is the state directory; the master key the credential.
	env := map[string]string{}
	for _, e := range svc["Environment"] {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
		found := false
		for _, s := range serveSettings {
			found = found || s.env == k
		}
		if !found {
			t.Errorf("Environment %s is not a setting of serve", k)
		}
	}
	if env["M2MAUTH_DATA_DIR"] != "/var/lib/m2mauth" || env["M2MAUTH_MASTER_KEY_FILE"] != "%d/master.key" {
		t.Errorf("Environment %v: want M2MAUTH_DATA_DIR=/var/lib/m2mauth (StateDirectory) and M2MAUTH_MASTER_KEY_FILE=%%d/master.key (LoadCredential)", env)
	}
	if _, ok := env["M2MAUTH_MASTER_KEY"]; ok {
		t.Error("the master key is written in the unit")
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed: the unit is parsed, not verified")
		return
	}
	// verify wants ExecStart's binary to exist: any executable will do,
	// this test's own.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(t.TempDir(), "m2mauth.service")
	if err := os.WriteFile(copied, bytes.ReplaceAll(b, []byte("/usr/local/bin/m2mauth"), []byte(self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", copied).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
