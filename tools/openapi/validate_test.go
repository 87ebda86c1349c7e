// Package openapi validates m2mauth's management API document against the
// OpenAPI 3.1 specification's JSON Schema, with pb33f/libopenapi-validator.
// It is its own module so that the validator stays out of the server's
// dependencies.
package openapi

import (
	"os"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
)

// docPath is the golden copy of the served document, kept equal to what
// the server serves by internal/server's TestOpenAPIGolden.
const docPath = "../../internal/server/testdata/openapi.json"

func TestDocumentIsValidOpenAPI31(t *testing.T) {
	spec, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(spec), `"openapi": "3.1.0"`) {
		t.Fatal("not an OpenAPI 3.1 document")
	}
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("building the validator: %v", errs)
	}
	ok, verrs := v.ValidateDocument()
	for _, e := range verrs {
		t.Errorf("%s: %s", e.Message, e.Reason)
		for _, se := range e.SchemaValidationErrors {
			t.Errorf("  %s at %s", se.Reason, se.FieldPath)
		}
	}
	if !ok {
		t.Fatal("the document is not valid OpenAPI 3.1")
	}
	model, merrs := doc.BuildV3Model()
	if merrs != nil {
		t.Fatalf("building the model: %v", merrs)
	}
	if model.Model.Paths.PathItems.Len() < 10 {
		t.Fatalf("only %d paths", model.Model.Paths.PathItems.Len())
	}
}

// TestValidatorRejectsABrokenDocument shows the check can fail.
func TestValidatorRejectsABrokenDocument(t *testing.T) {
	broken := []byte(`{"openapi":"3.1.0","info":{"title":"x"},"paths":{"/a":{"get":{"responses":{"200":{"description":1}}}}}}`)
	doc, err := libopenapi.NewDocument(broken)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := validator.NewValidator(doc)
	if ok, _ := v.ValidateDocument(); ok {
		t.Fatal("a document without info.version and with a numeric description passed")
	}
}
