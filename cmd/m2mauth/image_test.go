package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestContainerImage builds the container image with deploy/build-image.sh
// (podman, no registry pull, a private vfs store), checks its
// configuration, exports its root filesystem without running a container
// (podman save --format oci-dir, the layers unpacked here), and runs the
// binary from that filesystem on this machine: version; serve with the
// image's environment, which must refuse to start without an issuer; serve
// on a loopback port, then healthcheck with the image's wildcard
// M2MAUTH_ADDR.
//
// Without podman it skips loudly; with M2MAUTH_TEST_REQUIRE_PODMAN=1 (set
// by .ci/run when podman is installed) it fails instead.
func TestContainerImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a container image; skipped with -short")
	}
	if _, err := exec.LookPath("podman"); err != nil {
		if os.Getenv("M2MAUTH_TEST_REQUIRE_PODMAN") == "1" {
			t.Fatalf("M2MAUTH_TEST_REQUIRE_PODMAN=1 but podman is not installed: %v", err)
		}
		// Loud: go test ./... shows a passing package's output to no one,
		// so the line also goes to the terminal, as internal/pgtest does.
		line := "=== podman not found: the container image test is SKIPPED " +
			"(apt-get install podman, or set M2MAUTH_TEST_REQUIRE_PODMAN=1 to fail instead)\n"
		fmt.Fprint(os.Stderr, line)
		if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
			fmt.Fprint(tty, line)
			tty.Close()
		}
		t.Skip(strings.TrimSpace(line))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// A store of its own: no interference with the machine's images, and
	// vfs works where overlay is not available.
	store := t.TempDir()
	podman := []string{"podman", "--root", filepath.Join(store, "root"), "--runroot", filepath.Join(store, "run"), "--storage-driver", "vfs"}
	const tag = "localhost/m2mauth:test"

	start := time.Now()
	build := exec.CommandContext(ctx, "deploy/build-image.sh", tag)
	build.Dir = "../.."
	build.Env = append(os.Environ(), "PODMAN="+strings.Join(podman, " "))
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("deploy/build-image.sh: %v\n%s", err, out)
	}
	t.Logf("image built in %v", time.Since(start).Round(100*time.Millisecond))

	t.Run("config", func(t *testing.T) {
		out, err := exec.CommandContext(ctx, podman[0], append(podman[1:], "image", "inspect", tag)...).Output()
		if err != nil {
			t.Fatalf("podman image inspect: %v", err)
		}
		var images []struct {
			Config struct {
				User         string
				Env          []string
				ExposedPorts map[string]any
				Volumes      map[string]any
				Entrypoint   []string
				Cmd          []string
			}
			Healthcheck *struct{ Test []string }
		}
		if err := json.Unmarshal(out, &images); err != nil || len(images) != 1 {
			t.Fatalf("podman image inspect: %v\n%s", err, out)
		}
		img := images[0]
		if img.Config.User != "65532:65532" {
			t.Errorf("User = %q, want 65532:65532", img.Config.User)
		}
		for _, kv := range []string{"M2MAUTH_DATA_DIR=/data", "M2MAUTH_ADDR=0.0.0.0:8080"} {
			if !slices.Contains(img.Config.Env, kv) {
				t.Errorf("Env %v lacks %s", img.Config.Env, kv)
			}
		}
		for _, kv := range img.Config.Env {
			// The issuer is the operator's to set: a default here would
			// be wrong for everyone.
			if strings.HasPrefix(kv, "M2MAUTH_ISSUER=") || strings.HasPrefix(kv, "M2MAUTH_MASTER_KEY") {
				t.Errorf("Env sets %s", kv)
			}
		}
		if _, ok := img.Config.ExposedPorts["8080/tcp"]; !ok || len(img.Config.ExposedPorts) != 1 {
			t.Errorf("ExposedPorts = %v, want 8080/tcp", img.Config.ExposedPorts)
		}
		if _, ok := img.Config.Volumes["/data"]; !ok {
			t.Errorf("Volumes = %v, want /data", img.Config.Volumes)
		}
		if !slices.Equal(img.Config.Entrypoint, []string{"/m2mauth"}) || !slices.Equal(img.Config.Cmd, []string{"serve"}) {
			t.Errorf("Entrypoint %v, Cmd %v; want [/m2mauth] [serve]", img.Config.Entrypoint, img.Config.Cmd)
		}
		if img.Healthcheck == nil || !slices.Equal(img.Healthcheck.Test, []string{"CMD", "/m2mauth", "healthcheck"}) {
			t.Errorf("Healthcheck = %+v, want CMD /m2mauth healthcheck", img.Healthcheck)
		}
	})

	oci := filepath.Join(t.TempDir(), "oci")
	if out, err := exec.CommandContext(ctx, podman[0], append(podman[1:], "save", "--format", "oci-dir", "-o", oci, tag)...).CombinedOutput(); err != nil {
		t.Fatalf("podman save: %v\n%s", err, out)
	}
	rootfs := t.TempDir()
	entries := unpackOCI(t, oci, rootfs)

	t.Run("filesystem", func(t *testing.T) {
		want := map[string]struct {
			typ      byte
			mode     fs.FileMode // permission and sticky bits
			uid, gid int
		}{
			"m2mauth":                           {tar.TypeReg, 0o755, 0, 0},
			"data":                              {tar.TypeDir, 0o700, 65532, 65532},
			"tmp":                               {tar.TypeDir, 0o777 | fs.ModeSticky, 0, 0},
			"etc/ssl/certs/ca-certificates.crt": {tar.TypeReg, 0o644, 0, 0},
		}
		for name, w := range want {
			h, ok := entries[name]
			if !ok {
				t.Errorf("/%s is not in the image", name)
				continue
			}
			mode := h.FileInfo().Mode() & (fs.ModePerm | fs.ModeSticky)
			if h.Typeflag != w.typ || mode != w.mode || h.Uid != w.uid || h.Gid != w.gid {
				t.Errorf("/%s: type %c mode %v owner %d:%d; want type %c mode %v owner %d:%d",
					name, h.Typeflag, mode, h.Uid, h.Gid, w.typ, w.mode, w.uid, w.gid)
			}
		}
		// Nothing else but the directories leading there: no shell, no
		// package manager, no libc.
		for name, h := range entries {
			if _, ok := want[name]; ok {
				continue
			}
			if h.Typeflag != tar.TypeDir {
				t.Errorf("unexpected file /%s in the image", name)
			} else if mode := h.FileInfo().Mode().Perm(); mode != 0o755 || h.Uid != 0 {
				// The image user must reach the CA bundle.
				t.Errorf("/%s: mode %v owner %d, want 0755 and root's", name, mode, h.Uid)
			}
		}
		bin, err := elf.Open(filepath.Join(rootfs, "m2mauth"))
		if err != nil {
			t.Fatal(err)
		}
		defer bin.Close()
		for _, p := range bin.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("/m2mauth is dynamically linked: it cannot run FROM scratch")
			}
		}
	})

	t.Run("run from the exported filesystem", func(t *testing.T) {
		bin := filepath.Join(rootfs, "m2mauth")
		if out, err := exec.Command(bin, "version").CombinedOutput(); err != nil {
			t.Errorf("m2mauth version: %v\n%s", err, out)
		} else {
			t.Logf("the image's m2mauth version:\n%s", out)
		}
		addr := freeAddr(t)
		port := addr[strings.LastIndex(addr, ":")+1:]

		// The image's own environment: the operator must set the issuer.
		noIssuer, cancelNoIssuer := context.WithTimeout(ctx, 20*time.Second)
		defer cancelNoIssuer()
		refuse := exec.CommandContext(noIssuer, bin, "serve")
		refuse.Env = append(os.Environ(), "M2MAUTH_ADDR=0.0.0.0:"+port, "M2MAUTH_DATA_DIR="+t.TempDir())
		if out, err := refuse.CombinedOutput(); err == nil || noIssuer.Err() != nil || !strings.Contains(string(out), "issuer") {
			t.Errorf("serve with the image's environment and no M2MAUTH_ISSUER: %v, want a refusal naming the issuer\n%s", err, out)
		}

		// The image's environment, but on loopback and with a data dir of
		// this test's: nothing here runs in a container.
		logs := logFile(t)
		serve := exec.Command(bin, "serve")
		serve.Env = append(os.Environ(), "M2MAUTH_ADDR="+addr, "M2MAUTH_ISSUER=http://"+addr, "M2MAUTH_DATA_DIR="+t.TempDir())
		serve.Stdout, serve.Stderr = logs, logs
		if err := serve.Start(); err != nil {
			t.Fatal(err)
		}
		stopped := false
		stop := func() {
			if !stopped {
				stopped = true
				_ = serve.Process.Signal(os.Interrupt)
				_ = serve.Wait()
			}
		}
		t.Cleanup(stop)
		waitReady(t, "http://"+addr+"/healthz")

		resp, err := http.Get("http://" + addr + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		var meta struct{ Issuer string }
		err = json.NewDecoder(resp.Body).Decode(&meta)
		resp.Body.Close()
		if err != nil || meta.Issuer != "http://"+addr {
			t.Errorf("discovery of the image's binary: issuer %q, %v", meta.Issuer, err)
		}

		// As the image's HEALTHCHECK runs it: M2MAUTH_ADDR is the
		// wildcard the image sets.
		healthcheck := func() (string, error) {
			cmd := exec.Command(bin, "healthcheck")
			cmd.Env = append(os.Environ(), "M2MAUTH_ADDR=0.0.0.0:"+port)
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		if out, err := healthcheck(); err != nil || out != "ok\n" {
			t.Errorf("healthcheck of the running server: %v\n%s", err, out)
		}
		stop()
		out, err := healthcheck()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Errorf("healthcheck of a stopped server: %v, want exit status 1\n%s", err, out)
		}
	})
}

// unpackOCI extracts the layers of the one image in the OCI layout dir
// into rootfs, in order, and returns the tar header of every path (without
// a leading slash) as the last layer left it. Files are written with
// mode 0700 at most; the headers keep the image's modes and owners.
func unpackOCI(t *testing.T, dir, rootfs string) map[string]*tar.Header {
	t.Helper()
	blob := func(digest string) []byte {
		algo, hex, ok := strings.Cut(digest, ":")
		if !ok || strings.ContainsAny(hex, "/.") {
			t.Fatalf("digest %q", digest)
		}
		b, err := os.ReadFile(filepath.Join(dir, "blobs", algo, hex))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	type descriptor struct{ MediaType, Digest string }
	var index struct{ Manifests []descriptor }
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %v\n%s", err, b)
	}
	var manifest struct{ Layers []descriptor }
	if err := json.Unmarshal(blob(index.Manifests[0].Digest), &manifest); err != nil || len(manifest.Layers) == 0 {
		t.Fatalf("manifest: %v, %d layers", err, len(manifest.Layers))
	}
	entries := map[string]*tar.Header{}
	for _, layer := range manifest.Layers {
		var r io.Reader = bytes.NewReader(blob(layer.Digest))
		br := bufio.NewReader(r)
		if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
			zr, err := gzip.NewReader(br)
			if err != nil {
				t.Fatal(err)
			}
			r = zr
		} else {
			r = br
		}
		tr := tar.NewReader(r)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("layer %s: %v", layer.Digest, err)
			}
			name := strings.TrimSuffix(path.Clean(strings.TrimPrefix(h.Name, "./")), "/")
			if name == "." || name == "" {
				continue
			}
			if !fs.ValidPath(name) || strings.HasPrefix(path.Base(name), ".wh.") {
				t.Fatalf("layer %s: entry %q (a whiteout or outside the root): not expected FROM scratch", layer.Digest, h.Name)
			}
			target := filepath.Join(rootfs, filepath.FromSlash(name))
			switch h.Typeflag {
			case tar.TypeDir:
				if err := os.MkdirAll(target, 0o700); err != nil {
					t.Fatal(err)
				}
			case tar.TypeReg:
				if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
					t.Fatal(err)
				}
				f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, h.FileInfo().Mode().Perm()&0o700)
				if err != nil {
					t.Fatal(err)
				}
				_, err = io.Copy(f, tr)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					t.Fatal(err)
				}
			default:
				t.Fatalf("layer %s: %q has type %c: not expected in this image", layer.Digest, h.Name, h.Typeflag)
			}
			entries[name] = h
		}
	}
	return entries
}
