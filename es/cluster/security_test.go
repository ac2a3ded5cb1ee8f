package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/seed8b67a5e0/underflow/fpnet"
)

func TestServingBeyondLoopbackNeedsCredentials(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:4222": true, "localhost:4222": true, "[::1]:4222": true,
		"0.0.0.0:4222": false, ":4222": false, "192.0.2.1:4222": false} {
		_, _, err := CheckServe(addr, Security{})
		if ok != (err == nil) {
			t.Errorf("-serve %s without credentials: err %v", addr, err)
		}
		if _, _, err := CheckServe(addr, Security{Token: "s3cret"}); err != nil {
			t.Errorf("-serve %s with a token: %v", addr, err)
		}
	}
	if _, _, err := CheckServe("127.0.0.1:x", Security{}); err == nil {
		t.Error("port x accepted")
	}
}

func TestLoadSecurityReadsFilesAndEnvironment(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	s, err := LoadSecurity(SecurityFiles{TokenFile: write("token", "  s3cret\n")})
	if err != nil || s.Token != "s3cret" {
		t.Fatalf("token file: %+v, %v", s, err)
	}
	t.Setenv(EnvToken, "from-env")
	if s, err := LoadSecurity(SecurityFiles{}); err != nil || s.Token != "from-env" {
		t.Fatalf("$%s: %+v, %v", EnvToken, s, err)
	}
	if _, err := LoadSecurity(SecurityFiles{TokenFile: write("empty", "\n")}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("an empty token file: %v", err)
	}
	kp, _ := nkeys.CreateUser()
	seed, _ := kp.Seed()
	if _, err := LoadSecurity(SecurityFiles{NKeyFile: write("seed", string(seed))}); err == nil || !strings.Contains(err.Error(), "both") {
		t.Errorf("a token and an NKey: %v", err)
	}
	t.Setenv(EnvToken, "")
	if s, err := LoadSecurity(SecurityFiles{NKeyFile: write("seed", string(seed))}); err != nil || s.NKey == nil {
		t.Errorf("NKey seed file: %+v, %v", s, err)
	}
	if _, err := LoadSecurity(SecurityFiles{NKeyFile: write("bad", "SUnotaseed")}); err == nil {
		t.Error("a bad seed accepted")
	}
	acct, _ := nkeys.CreateAccount()
	aseed, _ := acct.Seed()
	if _, err := LoadSecurity(SecurityFiles{NKeyFile: write("acct", string(aseed))}); err == nil || !strings.Contains(err.Error(), "user seed") {
		t.Errorf("an account seed: %v", err)
	}
}

func TestServerRefusesWrongCredentials(t *testing.T) {
	user, _ := nkeys.CreateUser()
	stranger, _ := nkeys.CreateUser()
	for _, c := range []struct {
		name         string
		server, good Security
		bad          []Security
	}{
		{"token", Security{Token: "s3cret"}, Security{Token: "s3cret"}, []Security{{Token: "guess"}, {}}},
		{"nkey", Security{NKey: user}, Security{NKey: user}, []Security{{NKey: stranger}, {Token: "guess"}, {}}},
	} {
		ns, err := StartServer(ServerConfig{Addr: "127.0.0.1:-1", StoreDir: t.TempDir(), Security: c.server})
		if err != nil {
			t.Fatal(err)
		}
		url := ClientURL(ns, c.server)
		for _, bad := range c.bad {
			if nc, err := Connect(url, bad, "intruder", t.Logf); err == nil {
				nc.Close()
				t.Errorf("%s: a client with %+v got in", c.name, bad)
			} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
				t.Errorf("%s: the refusal does not say why: %v", c.name, err)
			}
		}
		nc, err := Connect(url, c.good, "member", t.Logf)
		if err != nil {
			t.Errorf("%s: the right credentials: %v", c.name, err)
		} else {
			nc.Close()
		}
		ns.Shutdown()
	}
}

// TestClusterOverTLS runs a job with the embedded server behind TLS: a
// worker that trusts the server's CA joins; one that does not is refused.
func TestClusterOverTLS(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := writeTestPKI(t, dir)
	sec := Security{TLSCert: cert, TLSKey: key}
	ns, err := StartServer(ServerConfig{Addr: "127.0.0.1:-1", StoreDir: t.TempDir(), Security: sec})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	url := ClientURL(ns, sec)
	if !strings.HasPrefix(url, "tls://") {
		t.Fatalf("client URL %s", url)
	}
	if nc, err := Connect(url, Security{}, "no-ca", t.Logf); err == nil {
		nc.Close()
		t.Fatal("a client that does not trust the server's CA connected")
	}
	client := Security{TLSCA: ca}
	const gens = 3
	want := tinyJob{}.reference(t, gens)
	tr, obj, start := tinyJob{}.trainer(t, 1)
	nc, err := Connect(url, client, "coordinator", t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := NewCoordinator(ctx, CoordinatorConfig{Conn: nc, Spec: NewSpec(tr, obj, fpnet.ParamsSHA256(start)), Trainer: tr, Fresh: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	wc, err := Connect(url, client, "worker", t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	w, err := NewWorker(WorkerConfig{Conn: wc, ID: "tls-worker", Slots: 1, Logf: t.Logf,
		Data: func() (*fpnet.Dataset, error) { return loadTrain(t), nil }})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.Run(wctx) }()
	for range gens {
		if _, err := c.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	c.Close(ctx, true)
	wcancel()
	<-done
	if got := fpnet.ParamsSHA256(tr.Params); got != want {
		t.Fatalf("over TLS: %s, one process %s", got, want)
	}
}

// writeTestPKI writes a CA and a certificate for localhost and 127.0.0.1
// signed by it; it returns the CA's, the certificate's and the key's paths.
func writeTestPKI(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "underflow test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	write := func(name, kind string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server.key", "EC PRIVATE KEY", keyDER)
}
