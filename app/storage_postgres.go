package app

import (
	"context"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/store/postgres"
)

func openPostgres(ctx context.Context, url string) (core.Storage, error) {
	return postgres.Open(ctx, url, postgres.Options{})
}
