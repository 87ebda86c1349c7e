package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m2mauth/m2mauth/internal/authz"
)

func TestWrapUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name        string
		err         error
		unavailable bool
		also        error // also in the chain
	}{
		{"connection failure (SQLSTATE class 08)", &pgconn.PgError{Code: "08006"}, true, nil},
		{"administrator shutdown", &pgconn.PgError{Code: "57P01"}, true, nil},
		{"crash shutdown", &pgconn.PgError{Code: "57P02"}, true, nil},
		{"cannot connect now", &pgconn.PgError{Code: "57P03"}, true, nil},
		{"network error", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, true, nil},
		{"unexpected EOF", fmt.Errorf("reading: %w", io.ErrUnexpectedEOF), true, io.ErrUnexpectedEOF},
		{"closed connection", fmt.Errorf("writing: %w", net.ErrClosed), true, net.ErrClosed},
		{"closed pgconn", fmt.Errorf("exec: %w", pgconn.ErrConnClosed), true, pgconn.ErrConnClosed},
		{"deadline", fmt.Errorf("waiting: %w", context.DeadlineExceeded), true, context.DeadlineExceeded},
		{"cancelled", fmt.Errorf("waiting: %w", context.Canceled), false, context.Canceled},
		{"syntax error", &pgconn.PgError{Code: "42601"}, false, nil},
		{"disk full", &pgconn.PgError{Code: "53100"}, false, nil},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false, authz.ErrConflict},
		{"no rows", pgx.ErrNoRows, false, authz.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := wrap("op", tc.err)
			if got := errors.Is(err, authz.ErrUnavailable); got != tc.unavailable {
				t.Errorf("errors.Is(wrap(%v), ErrUnavailable) = %v, want %v", tc.err, got, tc.unavailable)
			}
			if tc.also != nil && !errors.Is(err, tc.also) {
				t.Errorf("wrap(%v) = %v, want one wrapping %v", tc.err, err, tc.also)
			}
			var pe *pgconn.PgError
			if tc.unavailable && errors.As(tc.err, &pe) && !errors.As(err, &pe) {
				t.Errorf("wrap(%v) = %v lost the driver's error", tc.err, err)
			}
		})
	}
	if wrap("op", nil) != nil {
		t.Error("wrap(nil) is not nil")
	}
}

// TestConnectFailureIsUnavailable: a pool whose server does not answer
// reports authz.ErrUnavailable, with pgconn's ConnectError in the chain.
func TestConnectFailureIsUnavailable(t *testing.T) {
	cfg, err := poolConfig("postgres://m2mauth@127.0.0.1:1/m2mauth?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	s := &Store{logger: testLogger(t)}
	if s.pool, err = pgxpool.NewWithConfig(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	defer s.pool.Close()
	_, err = s.GetApplication(t.Context(), "app_1")
	var ce *pgconn.ConnectError
	if !errors.Is(err, authz.ErrUnavailable) || !errors.As(err, &ce) {
		t.Errorf("GetApplication without a server: %v, want one wrapping %q and a ConnectError", err, authz.ErrUnavailable)
	}
}
