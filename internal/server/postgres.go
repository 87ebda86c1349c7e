package server

import (
	"context"
	"log/slog"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/store/postgres"
)

// openPostgres opens the PostgreSQL store shared by every replica.
func openPostgres(ctx context.Context, url string, log *slog.Logger) (authz.Store, error) {
	return postgres.Open(ctx, url, log)
}
