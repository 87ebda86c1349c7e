package server

import (
	"errors"
	"testing"
)

func TestObservabilitySettingsValidate(t *testing.T) {
	for _, c := range []struct {
		name    string
		cfg     Config
		setting string // the FieldError expected; "" for none
	}{
		{"metrics off", Config{}, ""},
		{"metrics on loopback", Config{MetricsAddr: "127.0.0.1:9100", MetricsPerClient: true}, ""},
		{"metrics address without a port", Config{MetricsAddr: "127.0.0.1"}, "metrics-addr"},
		{"per-client metrics without metrics", Config{MetricsPerClient: true}, "metrics-per-client"},
		{"audit sink stdout", Config{AuditSink: "stdout"}, ""},
		{"audit sink file", Config{AuditSink: "file:/var/log/m2mauth/audit.jsonl"}, ""},
		{"audit sink file without a path", Config{AuditSink: "file:"}, "audit-sink"},
		{"audit sink of an unknown kind", Config{AuditSink: "syslog"}, "audit-sink"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			var got string // the complaint about one of these settings
			var errs []error
			if j, ok := cfg.Validate().(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			}
			for _, e := range errs {
				var fe *FieldError
				if errors.As(e, &fe) && (fe.Setting == "metrics-addr" || fe.Setting == "metrics-per-client" || fe.Setting == "audit-sink") {
					got += fe.Setting
				}
			}
			if got != c.setting {
				t.Errorf("complaints about %q, want %q (%v)", got, c.setting, errs)
			}
		})
	}
}
