package sqlite

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestFederatedLookupsUseIndexes: the token endpoint's two reads of a
// federated authentication, the trusted issuer by its issuer and the
// credentials that name it, are each one search of an index, already in
// the order asked: no table scan, no sort.
func TestFederatedLookupsUseIndexes(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "m2mauth.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct{ name, query, index string }{
		{"trusted issuer by issuer", trustedIssuerByIssuerQuery, "sqlite_autoindex_trusted_issuers_2"},
		{"federated credentials", federatedCredentialsQuery, "credentials_trusted_issuer"},
	} {
		plan := queryPlan(t, s, tc.query, "x")
		if len(plan) != 1 || !strings.HasPrefix(plan[0], "SEARCH ") || !strings.Contains(plan[0], "INDEX "+tc.index+" ") {
			t.Errorf("%s: query plan %q, want one SEARCH using index %s", tc.name, plan, tc.index)
		}
	}
}
