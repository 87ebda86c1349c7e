package authz

import (
	"math"
	"net/netip"
	"testing"
)

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{"5/s": 5, "5": 5, "300/m": 5, "1800/h": 0.5, " 2.5/s ": 2.5} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0/s", "-1/s", "5/d", "x/s", "Inf", "NaN/s"} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) accepted", in)
		}
	}
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"5/s", "300/m", "1/h", "1e308/s", "NaN"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err == nil && (!(r > 0) || math.IsInf(r, 0)) {
			t.Fatalf("ParseRate(%q) = %v", s, r)
		}
	})
}

func TestPolicyRoundTrip(t *testing.T) {
	p := Policy{Rate: &Rate{PerSecond: 5, Burst: 5}, Quota: &Quota{PerHour: 100}, Mode: PolicyObserve,
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}}
	s, err := EncodePolicy(p)
	if err != nil || s != `{"rate":{"per_second":5,"burst":5},"quota":{"per_hour":100},"mode":"observe","allowed_ips":["10.0.0.0/8","2001:db8::/32"]}` {
		t.Fatalf("EncodePolicy = %s, %v", s, err)
	}
	back, err := DecodePolicy(s)
	if err != nil || !back.AllowsAddr(netip.MustParseAddr("::ffff:10.1.1.1")) || back.AllowsAddr(netip.MustParseAddr("192.0.2.1")) || *back.Rate != *p.Rate {
		t.Fatalf("DecodePolicy = %+v, %v", back, err)
	}
	if s, _ := EncodePolicy(Policy{}); s != "" {
		t.Fatalf("zero policy encodes as %q", s)
	}
	if !(Policy{}).AllowsAddr(netip.Addr{}) {
		t.Fatal("no allow-list refuses")
	}
}
