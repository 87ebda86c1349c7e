package server

import (
	"context"
	"errors"
	"log/slog"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// openPostgres opens the PostgreSQL store.
func openPostgres(ctx context.Context, url string, log *slog.Logger) (authz.Store, error) {
	return nil, errors.New("PostgreSQL store: waiting for internal/store/postgres")
}
