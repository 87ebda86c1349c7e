package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/m2mauth/m2mauth/rs"
)

// Scopes of the usage API, as registered for it in m2mauth.
const (
	scopeCreateMeterTypes = "create:meter_types"
	scopeReadMeterTypes   = "read:meter_types"
	scopeCreateMeters     = "create:meters"
	scopeReadMeters       = "read:meters"
)

// maxBodyBytes bounds request bodies: 64 KiB.
const maxBodyBytes = 64 << 10

// MeterType is a kind of usage that is metered, e.g. "api_calls" in "requests".
type MeterType struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Unit      string    `json:"unit"`
	CreatedBy string    `json:"created_by"` // client_id of the creating application
	CreatedAt time.Time `json:"created_at"`
}

// Meter is one usage reading of a meter type.
type Meter struct {
	ID        string    `json:"id"`
	MeterType string    `json:"meter_type"` // a MeterType's Name
	Value     float64   `json:"value"`
	Timestamp time.Time `json:"timestamp"`
	CreatedBy string    `json:"created_by"`
	// TenantID is the token's tenant_id claim, a custom claim the
	// application's grant carries (m2mauth grant add ... --claim
	// tenant_id=t-42); absent when the token has none.
	TenantID string `json:"tenant_id,omitempty"`
}

// server holds the API's in-memory data.
type server struct {
	validator *rs.Validator
	now       func() time.Time

	mu         sync.Mutex // guards the fields below
	meterTypes []MeterType
	meters     []Meter
}

// newServer returns the usage API's handler, protected by v.
func newServer(v *rs.Validator) http.Handler {
	s := &server{validator: v, now: time.Now}
	return s.routes()
}

// routes maps each endpoint to its handler behind the token check and the
// scope it needs. Unknown paths get 404 and wrong methods 405 without a
// token check.
//
// Most routes take any valid token: a bearer token, a DPoP-bound token with
// its proof, or a certificate-bound one over mTLS. GET /meters/export hands
// out every reading at once, so it takes sender-constrained tokens only: a
// leaked token is useless there without its key.
func (s *server) routes() http.Handler {
	strict := s.validator.WithPolicy(rs.SenderConstrained)
	protect := func(v *rs.Validator, scope string, h http.HandlerFunc) http.Handler {
		return v.Middleware(rs.RequireScope(scope)(h))
	}
	mux := http.NewServeMux()
	mux.Handle("POST /meter-types", protect(s.validator, scopeCreateMeterTypes, s.createMeterType))
	mux.Handle("GET /meter-types", protect(s.validator, scopeReadMeterTypes, s.listMeterTypes))
	mux.Handle("POST /meters", protect(s.validator, scopeCreateMeters, s.createMeter))
	mux.Handle("GET /meters", protect(s.validator, scopeReadMeters, s.listMeters))
	mux.Handle("GET /meters/export", protect(strict, scopeReadMeters, s.listMeters))

	// RFC 9728 protected resource metadata, unauthenticated: where clients
	// (MCP's among them) learn the authorization server and the token
	// types this API takes. Its path follows from the audience (§3.1).
	meta := s.validator.Metadata()
	meta.ResourceName = "Usage API"
	meta.ScopesSupported = []string{scopeCreateMeterTypes, scopeReadMeterTypes, scopeCreateMeters, scopeReadMeters}
	if path, err := rs.MetadataPath(meta.Resource); err == nil {
		mux.Handle("GET "+path, rs.MetadataHandler(meta))
	}
	return mux
}

// createMeterTypeRequest is the body of POST /meter-types.
type createMeterTypeRequest struct {
	Name string `json:"name"`
	Unit string `json:"unit"`
}

func (s *server) createMeterType(w http.ResponseWriter, r *http.Request) {
	var req createMeterTypeRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if err := checkName(req.Name); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "name: "+err.Error())
		return
	}
	if err := checkUnit(req.Unit); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "unit: "+err.Error())
		return
	}
	claims, _ := rs.ClaimsFromContext(r.Context())

	s.mu.Lock()
	if slices.ContainsFunc(s.meterTypes, func(mt MeterType) bool { return mt.Name == req.Name }) {
		s.mu.Unlock()
		writeError(w, http.StatusConflict, "conflict", "a meter type with this name exists")
		return
	}
	mt := MeterType{
		ID:        fmt.Sprintf("mt_%d", len(s.meterTypes)+1),
		Name:      req.Name,
		Unit:      req.Unit,
		CreatedBy: claims.ClientID,
		CreatedAt: s.now().UTC(),
	}
	s.meterTypes = append(s.meterTypes, mt)
	s.mu.Unlock()

	writeJSON(w, http.StatusCreated, mt)
}

func (s *server) listMeterTypes(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	list := slices.Clone(s.meterTypes)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, nonNil(list))
}

// createMeterRequest is the body of POST /meters. Value is a pointer so a
// missing value is told apart from 0.
type createMeterRequest struct {
	MeterType string     `json:"meter_type"`
	Value     *float64   `json:"value"`
	Timestamp *time.Time `json:"timestamp"` // RFC 3339; default: now
}

func (s *server) createMeter(w http.ResponseWriter, r *http.Request) {
	var req createMeterRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	switch {
	case req.MeterType == "":
		writeError(w, http.StatusBadRequest, "invalid_request", "meter_type is required")
		return
	case req.Value == nil:
		writeError(w, http.StatusBadRequest, "invalid_request", "value is required")
		return
	case *req.Value < 0:
		writeError(w, http.StatusBadRequest, "invalid_request", "value must not be negative")
		return
	}
	claims, _ := rs.ClaimsFromContext(r.Context())
	var tenant string
	if _, err := claims.Claim("tenant_id", &tenant); err != nil {
		writeError(w, http.StatusForbidden, "invalid_token", "tenant_id must be a string")
		return
	}
	ts := s.now().UTC()
	if req.Timestamp != nil {
		ts = req.Timestamp.UTC()
	}

	s.mu.Lock()
	if !slices.ContainsFunc(s.meterTypes, func(mt MeterType) bool { return mt.Name == req.MeterType }) {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, "invalid_request", "unknown meter_type")
		return
	}
	m := Meter{
		ID:        fmt.Sprintf("m_%d", len(s.meters)+1),
		MeterType: req.MeterType,
		Value:     *req.Value,
		Timestamp: ts,
		CreatedBy: claims.ClientID,
		TenantID:  tenant,
	}
	s.meters = append(s.meters, m)
	s.mu.Unlock()

	writeJSON(w, http.StatusCreated, m)
}

// listMeters answers GET /meters, optionally filtered by ?meter_type=.
func (s *server) listMeters(w http.ResponseWriter, r *http.Request) {
	want := r.URL.Query().Get("meter_type")
	s.mu.Lock()
	var list []Meter
	for _, m := range s.meters {
		if want == "" || m.MeterType == want {
			list = append(list, m)
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, nonNil(list))
}

// checkName accepts 1 to 64 characters of a-z, 0-9, "_", "-" and ".".
func checkName(name string) error {
	if name == "" || len(name) > 64 {
		return errors.New("must be 1 to 64 characters")
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return errors.New("may hold only a-z, 0-9, _, - and .")
		}
	}
	return nil
}

// checkUnit accepts 1 to 32 printable ASCII characters.
func checkUnit(unit string) error {
	if unit == "" || len(unit) > 32 {
		return errors.New("must be 1 to 32 characters")
	}
	for _, c := range []byte(unit) {
		if c < 0x20 || c > 0x7e {
			return errors.New("may hold only printable ASCII")
		}
	}
	return nil
}

// decodeJSON reads exactly one JSON object of at most maxBodyBytes into dst,
// refusing unknown fields. Its errors are fit for the client.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return fmt.Errorf("body larger than %d bytes", maxBodyBytes)
		}
		return fmt.Errorf("body is not valid JSON: %v", err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return errors.New("body holds more than one JSON value")
	}
	return nil
}

// nonNil turns a nil slice into an empty one, so it encodes as [].
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes the same {"error", "error_description"} body as rs.
func writeError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}
