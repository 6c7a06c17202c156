package app

import (
	"context"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/store/postgres"
)

func openPostgres(ctx context.Context, url string) (core.Storage, error) {
	s, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return s, nil
}
