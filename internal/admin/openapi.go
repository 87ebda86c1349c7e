package admin

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// Operation describes one management API endpoint for the OpenAPI
// document: what it does, what it takes and what it answers.
type Operation struct {
	Summary string
	Query   []QueryParam
	Request any // a value of the body's type, nil for none
	// OptionalBody marks a request body that may be left out.
	OptionalBody bool
	Status       int // success status
	Result       any // a value of the success body's type, nil for none
}

// QueryParam is one query parameter of an operation.
type QueryParam struct {
	Name, Description, Type string
}

// Route is a management API endpoint as the OpenAPI document lists it.
type Route struct {
	Method, Path, Scope string
	Op                  Operation
}

// OpenAPI builds the OpenAPI 3.1 document of the management API from its
// routes: paths, parameters, request and response schemas (reflected from
// the Go types the handlers encode), the scope each needs, and the
// problem-details errors (RFC 9457).
func OpenAPI(issuer string, routes []Route) ([]byte, error) {
	g := &schemaGen{defs: map[string]any{}}
	g.defs["Problem"] = map[string]any{
		"type": "object", "description": "RFC 9457 problem details",
		"required": []string{"type", "title", "status", "code"},
		"properties": map[string]any{
			"type": map[string]any{"type": "string"}, "title": map[string]any{"type": "string"},
			"status": map[string]any{"type": "integer"}, "detail": map[string]any{"type": "string"},
			"code": map[string]any{"type": "string", "enum": []string{CodeInvalidToken, CodeInsufficientScope, CodeValidation, CodeNotFound, CodeConflict, CodeLastAdministrator, CodeLimitReached, CodeTooLarge, CodeUnavailable, CodeServerError}},
			"missing_scopes": map[string]any{"type": "array", "items": map[string]any{"type": "string"},
				"description": "on a 403: the management scopes the caller lacks for this action"},
			"instance": map[string]any{"type": "string", "description": "on a 500: the problem id, also in the server's log line"},
		},
	}
	problemResp := func(desc string) map[string]any {
		return map[string]any{"description": desc, "content": map[string]any{
			"application/problem+json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Problem"}},
		}}
	}
	scopes := map[string]string{}
	for _, s := range authz.ManagementScopes {
		scopes[s.Value] = s.Description
	}
	paths := map[string]map[string]any{}
	for _, rt := range routes {
		op := map[string]any{
			"summary":     rt.Op.Summary,
			"operationId": operationID(rt.Method, rt.Path),
			"security":    []any{map[string]any{"oauth2": []string{rt.Scope}}},
		}
		var params []any
		for _, name := range pathParams(rt.Path) {
			params = append(params, map[string]any{"name": name, "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, q := range rt.Op.Query {
			typ := q.Type
			if typ == "" {
				typ = "string"
			}
			params = append(params, map[string]any{"name": q.Name, "in": "query", "description": q.Description, "schema": map[string]any{"type": typ}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.Op.Request != nil {
			op["requestBody"] = map[string]any{"required": !rt.Op.OptionalBody, "content": map[string]any{
				"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(rt.Op.Request), false)},
			}}
		}
		ok := map[string]any{"description": http.StatusText(rt.Op.Status)}
		if rt.Op.Result != nil {
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": g.schema(reflect.TypeOf(rt.Op.Result), true)}}
		}
		responses := map[string]any{
			strconv.Itoa(rt.Op.Status): ok,
			"401":                      problemResp("No valid bearer token for the management API (invalid_token)"),
			"403":                      problemResp("The token lacks scope " + rt.Scope + ", or the action is beyond the caller's own management scopes (insufficient_scope, type urn:m2mauth:problem:insufficient-scope, missing_scopes names them)"),
			"500":                      problemResp("The server failed; nothing was changed (server_error; instance is the problem id in the server's log)"),
			"503":                      problemResp("The database is unavailable; nothing was changed (Retry-After)"),
		}
		if rt.Op.Request != nil || len(rt.Op.Query) > 0 {
			responses["400"] = problemResp("Invalid input (validation_failed)")
		}
		if rt.Op.Request != nil {
			responses["413"] = problemResp("Request body over 1 MiB")
		}
		if len(pathParams(rt.Path)) > 0 {
			responses["404"] = problemResp("No such resource")
		}
		if rt.Method == http.MethodPost || rt.Method == http.MethodPatch || rt.Method == http.MethodDelete {
			responses["409"] = problemResp("Conflicts with the current state (conflict), a limit is reached (limit_reached), or the change would leave no administrator (last_administrator, type urn:m2mauth:problem:last-administrator)")
		}
		op["responses"] = responses
		if paths[rt.Path] == nil {
			paths[rt.Path] = map[string]any{}
		}
		paths[rt.Path][strings.ToLower(rt.Method)] = op
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "m2mauth management API",
			"version":     "v1",
			"description": "Manage APIs (resource servers), applications (OAuth clients), their grants and secrets, signing keys and the audit log. Every endpoint takes a bearer access token issued by this server for the audience " + authz.ManagementAudience + " with the scope the operation names.",
		},
		"servers": []any{map[string]any{"url": issuer}},
		"paths":   paths,
		"components": map[string]any{
			"schemas": g.defs,
			"securitySchemes": map[string]any{"oauth2": map[string]any{
				"type": "oauth2",
				"flows": map[string]any{"clientCredentials": map[string]any{
					"tokenUrl": issuer + "/oauth/token",
					"scopes":   scopes,
				}},
			}},
		},
	}
	return json.MarshalIndent(doc, "", "  ")
}

var paramRE = regexp.MustCompile(`\{([a-z_]+)\}`)

func pathParams(p string) []string {
	var out []string
	for _, m := range paramRE.FindAllStringSubmatch(p, -1) {
		out = append(out, m[1])
	}
	return out
}

// operationID is e.g. "get_applications_client_id_secrets".
func operationID(method, path string) string {
	p := strings.NewReplacer("/admin/v1/", "", "/", "_", "{", "", "}", "", "-", "_").Replace(path)
	return strings.ToLower(method) + "_" + p
}

// schemaGen turns Go types into JSON Schema (2020-12, as OpenAPI 3.1
// uses), collecting named structs under components/schemas.
type schemaGen struct {
	defs map[string]any
}

var timeType = reflect.TypeOf(time.Time{})
var rawType = reflect.TypeOf(json.RawMessage{})

// claimConditionType encodes as a string or an array of strings.
var claimConditionType = reflect.TypeOf(authz.ClaimCondition{})

func (g *schemaGen) schema(t reflect.Type, response bool) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		return map[string]any{"type": "object"}
	case t == tokenReusePatchType:
		return map[string]any{"oneOf": []any{g.schema(reflect.TypeOf(TokenReuse{}), response), map[string]any{"type": "null"}}}
	case t == claimConditionType:
		return map[string]any{"oneOf": []any{
			map[string]any{"type": "string"},
			map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "minItems": 1},
		}}
	}
	switch t.Kind() {
	case reflect.Pointer:
		inner := g.schema(t.Elem(), response)
		if typ, ok := inner["type"].(string); ok {
			inner["type"] = []string{typ, "null"}
			return inner
		}
		return map[string]any{"oneOf": []any{inner, map[string]any{"type": "null"}}}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.schema(t.Elem(), response)}
	case reflect.Map:
		if t.Elem() == rawType { // any JSON value
			return map[string]any{"type": "object", "additionalProperties": true}
		}
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem(), response)}
	case reflect.Struct:
		name := schemaName(t)
		if _, done := g.defs[name]; !done {
			g.defs[name] = map[string]any{} // placeholder against recursion
			props, required := map[string]any{}, []string{}
			g.fields(t, response, props, &required)
			s := map[string]any{"type": "object", "properties": props}
			if len(required) > 0 {
				sort.Strings(required)
				s["required"] = required
			}
			if !response {
				s["additionalProperties"] = false // unknown fields are refused
			}
			g.defs[name] = s
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{}
}

// fields adds t's JSON fields (flattening embedded structs). In responses
// a field without omitempty/omitzero is required.
func (g *schemaGen) fields(t reflect.Type, response bool, props map[string]any, required *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			g.fields(f.Type, response, props, required)
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = g.schema(f.Type, response)
		if response && !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
			*required = append(*required, name)
		}
	}
}

// schemaName names a struct type: List[admin.APIResource] becomes
// ListOfAPIResource.
func schemaName(t reflect.Type) string {
	n := t.Name()
	if i := strings.Index(n, "["); i >= 0 {
		inner := n[i+1 : len(n)-1]
		inner = inner[strings.LastIndex(inner, ".")+1:]
		return n[:i] + "Of" + inner
	}
	return n
}
