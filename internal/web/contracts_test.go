package web

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// The contracts are served without a login, byte for byte as in docs/.
func TestContractsServed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newStore(t), nil)
	for _, name := range []string{"asyncapi.yaml", "openapi.yaml"} {
		want, err := os.ReadFile(filepath.Join("..", "..", "docs", name))
		if err != nil {
			t.Fatal(err)
		}
		r := e.do(t, http.MethodGet, "/api/"+name, "", nil)
		if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/yaml" {
			t.Errorf("GET /api/%s: %d %q", name, r.status, r.header.Get("Content-Type"))
		}
		if !bytes.Equal(r.body, want) {
			t.Errorf("GET /api/%s: %d bytes, not docs/%s (%d bytes)", name, len(r.body), name, len(want))
		}
	}
}
