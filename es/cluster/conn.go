// Package cluster runs ES across machines on NATS JetStream: a coordinator
// that turns each generation into tasks, gathers the fitness bits and
// publishes the outcome, and workers of any architecture that evaluate
// tasks at their own copy of θ and take every step themselves. The bytes
// on the wire are es/wire's; this package owns the server, the
// connections, the streams and the state machines around them.
package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Environment variables that may hold the secrets instead of files. A
// secret never comes from the command line, where ps shows it.
const (
	EnvToken = "UNDERFLOW_NATS_TOKEN" // a shared token
	EnvNKey  = "UNDERFLOW_NATS_NKEY"  // an NKey seed (SU...): challenge–response, the seed never travels
)

// Security is how a process proves itself to the server and, for the
// embedded server, what it demands. The zero value is no authentication
// and no TLS, which the embedded server accepts only on loopback.
type Security struct {
	Token     string        // shared token
	NKey      nkeys.KeyPair // user NKey, from its seed
	CredsFile string        // a NATS .creds file (JWT and seed), for an external server that uses them
	// TLS, from PEM files: the server's or client's certificate and key,
	// and the CA that verifies the other side (clients: the server; the
	// embedded server: client certificates, which it then requires).
	TLSCert, TLSKey, TLSCA string
}

// SecurityFiles are the flags' values: paths only.
type SecurityFiles struct {
	TokenFile, NKeyFile, CredsFile string
	TLSCert, TLSKey, TLSCA         string
}

// LoadSecurity reads the secrets from the files named and, where no file is
// named, from EnvToken and EnvNKey. A token and an NKey together are
// refused: the server accepts one kind.
func LoadSecurity(f SecurityFiles) (Security, error) {
	s := Security{CredsFile: f.CredsFile, TLSCert: f.TLSCert, TLSKey: f.TLSKey, TLSCA: f.TLSCA}
	token, err := secret(f.TokenFile, EnvToken, "-nats-token-file")
	if err != nil {
		return s, err
	}
	s.Token = token
	seed, err := secret(f.NKeyFile, EnvNKey, "-nats-nkey-file")
	if err != nil {
		return s, err
	}
	if seed != "" {
		kp, err := nkeys.FromSeed([]byte(seed))
		if err != nil {
			return s, fmt.Errorf("the NKey seed (%s): %v", sourceName(f.NKeyFile, EnvNKey), err)
		}
		if pub, _ := kp.PublicKey(); !strings.HasPrefix(pub, "U") {
			return s, fmt.Errorf("the NKey seed (%s) is not a user seed (SU...)", sourceName(f.NKeyFile, EnvNKey))
		}
		s.NKey = kp
	}
	if s.Token != "" && s.NKey != nil {
		return s, errors.New("both a token and an NKey are given; use one")
	}
	if (s.TLSCert == "") != (s.TLSKey == "") {
		return s, errors.New("-nats-tls-cert and -nats-tls-key go together")
	}
	for _, p := range []string{s.CredsFile, s.TLSCert, s.TLSKey, s.TLSCA} {
		if p != "" {
			if _, err := os.Stat(p); err != nil {
				return s, err
			}
		}
	}
	return s, nil
}

func sourceName(file, env string) string {
	if file != "" {
		return file
	}
	return "$" + env
}

// maxSecretBytes bounds a token or seed file.
const maxSecretBytes = 64 << 10

// secret reads a secret from file, or from the environment variable when no
// file is named; surrounding white space is dropped.
func secret(file, env, flag string) (string, error) {
	if file == "" {
		return strings.TrimSpace(os.Getenv(env)), nil
	}
	// A secret is a line, not a stream: a device or a huge file is refused
	// before it is read.
	st, err := os.Stat(file)
	if err != nil {
		return "", fmt.Errorf("%s: %v", flag, err)
	}
	if !st.Mode().IsRegular() || st.Size() > maxSecretBytes {
		return "", fmt.Errorf("%s %s: want a regular file of at most %d bytes", flag, file, maxSecretBytes)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: %v", flag, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s %s is empty", flag, file)
	}
	return s, nil
}

// Authenticated reports whether the security names a credential.
func (s Security) Authenticated() bool { return s.Token != "" || s.NKey != nil || s.CredsFile != "" }

// clientOptions are the nats.Options that present the credentials.
func (s Security) clientOptions() ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case s.Token != "":
		opts = append(opts, nats.Token(s.Token))
	case s.NKey != nil:
		pub, err := s.NKey.PublicKey()
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Nkey(pub, s.NKey.Sign))
	}
	if s.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(s.CredsFile))
	}
	if s.TLSCA != "" {
		opts = append(opts, nats.RootCAs(s.TLSCA))
	}
	if s.TLSCert != "" {
		opts = append(opts, nats.ClientCert(s.TLSCert, s.TLSKey))
	}
	return opts, nil
}

// Connect connects to the server at url as a long-lived participant: it
// reconnects forever (a restarted server or coordinator is waited for) and
// buffers publishes while disconnected. A server that is not up yet is
// waited for too; one that refuses the credentials or the TLS handshake is
// an error at once. name is shown in the server's monitoring.
func Connect(url string, sec Security, name string, logf func(string, ...any)) (*nats.Conn, error) {
	opts, err := sec.clientOptions()
	if err != nil {
		return nil, err
	}
	opts = append(opts, nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond),
		nats.ReconnectBufSize(64<<20), nats.PingInterval(5*time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logf("nats: disconnected: %v", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { logf("nats: reconnected to %s", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				logf("nats: %s: %v", sub.Subject, err)
			} else {
				logf("nats: %v", err)
			}
		}))
	nc, err := nats.Connect(url, opts...)
	if err == nil {
		return nc, nil
	}
	var tlsErr *tls.CertificateVerificationError
	if errors.Is(err, nats.ErrAuthorization) || errors.As(err, &tlsErr) || errors.Is(err, nats.ErrSecureConnRequired) ||
		errors.Is(err, nats.ErrSecureConnWanted) || strings.Contains(strings.ToLower(err.Error()), "authorization") {
		return nil, fmt.Errorf("nats %s: %v", url, err)
	}
	logf("nats: %s: %v; waiting for the server", url, err)
	nc, err = nats.Connect(url, append(opts, nats.RetryOnFailedConnect(true))...)
	if err != nil {
		return nil, fmt.Errorf("nats %s: %v", url, err)
	}
	return nc, nil
}

// ServerConfig configures the NATS server a coordinator embeds.
type ServerConfig struct {
	Addr     string // host:port to listen on
	StoreDir string // JetStream's file storage: streams survive a restart
	Security Security
	// Logf, when set, receives the server's notices and errors.
	Logf func(string, ...any)
}

// StartServer starts a NATS server with JetStream in this process. A server
// that listens on anything but loopback requires a token or an NKey: an
// open port on a network would let anyone read the job and forge results.
func StartServer(cfg ServerConfig) (*server.Server, error) {
	host, port, err := CheckServe(cfg.Addr, cfg.Security)
	if err != nil {
		return nil, err
	}
	sec := cfg.Security
	opts := &server.Options{
		ServerName: "underflow-es", Host: host, Port: port,
		JetStream: true, StoreDir: cfg.StoreDir, NoSigs: true, NoLog: cfg.Logf == nil,
		DisableJetStreamBanner: true,
		// A generation's outcome is 8 bytes a member; wire.MaxPop fits.
		MaxPayload: 1 << 20,
	}
	if sec.Token != "" {
		opts.Authorization = sec.Token
	}
	if sec.NKey != nil {
		pub, err := sec.NKey.PublicKey()
		if err != nil {
			return nil, err
		}
		opts.Nkeys = []*server.NkeyUser{{Nkey: pub}}
	}
	if sec.TLSCert != "" {
		tc, err := serverTLS(sec)
		if err != nil {
			return nil, err
		}
		opts.TLS, opts.TLSConfig, opts.TLSVerify = true, tc, sec.TLSCA != ""
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %v", err)
	}
	if cfg.Logf != nil {
		ns.SetLogger(serverLogger{cfg.Logf}, false, false)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("nats server on %s did not start within 10 s (is the port taken?)", cfg.Addr)
	}
	return ns, nil
}

func serverTLS(sec Security) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(sec.TLSCert, sec.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("-nats-tls-cert/-nats-tls-key: %v", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if sec.TLSCA != "" {
		pem, err := os.ReadFile(sec.TLSCA)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-nats-tls-ca %s holds no PEM certificate", sec.TLSCA)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// CheckServe checks an address to serve on, with its security: a server
// that listens on anything but loopback requires a token or an NKey, and
// the embedded server takes no .creds file.
func CheckServe(addr string, sec Security) (host string, port int, err error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("-serve %q: %v", addr, err)
	}
	// Port -1 asks for any free port (nats-server's convention; 0 is 4222).
	if _, err := fmt.Sscan(portStr, &port); err != nil || port < -1 || port > 65535 {
		return "", 0, fmt.Errorf("-serve %q: port %q", addr, portStr)
	}
	if !isLoopback(host) && sec.Token == "" && sec.NKey == nil {
		return "", 0, fmt.Errorf("-serve %s listens beyond loopback: give a token or an NKey seed (-nats-token-file, -nats-nkey-file, $%s or $%s)", addr, EnvToken, EnvNKey)
	}
	if sec.CredsFile != "" {
		return "", 0, errors.New("-nats-creds is for an external server (-nats); the embedded server takes a token or an NKey")
	}
	return host, port, nil
}

// isLoopback reports whether host names only this machine. An empty host
// (all interfaces) does not.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ClientURL is the URL this process's own clients use for a server it
// embeds: loopback when the server listens on every interface.
func ClientURL(ns *server.Server, sec Security) string {
	addr := ns.Addr().(*net.TCPAddr)
	host := "127.0.0.1"
	if addr.IP.To4() == nil && addr.IP.IsLoopback() {
		host = "::1"
	}
	scheme := "nats"
	if sec.TLSCert != "" {
		scheme = "tls"
		host = "localhost" // the name a test certificate is likely to carry
	}
	return fmt.Sprintf("%s://%s", scheme, net.JoinHostPort(host, fmt.Sprint(addr.Port)))
}

type serverLogger struct{ logf func(string, ...any) }

func (l serverLogger) Noticef(format string, v ...any) { l.logf("nats server: "+format, v...) }
func (l serverLogger) Warnf(format string, v ...any)   { l.logf("nats server: warning: "+format, v...) }
func (l serverLogger) Fatalf(format string, v ...any)  { l.logf("nats server: fatal: "+format, v...) }
func (l serverLogger) Errorf(format string, v ...any)  { l.logf("nats server: error: "+format, v...) }
func (l serverLogger) Debugf(string, ...any)           {}
func (l serverLogger) Tracef(string, ...any)           {}
