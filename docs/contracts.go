// Package docs holds the API contracts, embedded so that the server serves
// the very files that tools/contracts and cmd/watchroom/contracts_test.go
// check: docs/asyncapi.yaml (the WebSocket) and docs/openapi.yaml (REST),
// at /api/asyncapi.yaml and /api/openapi.yaml. Read-only, safe for
// concurrent use.
package docs

import _ "embed"

// AsyncAPI is docs/asyncapi.yaml.
//
//go:embed asyncapi.yaml
var AsyncAPI []byte

// OpenAPI is docs/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
