package web

import (
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"path"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// static serves the embedded dashboard. Files under assets/ have content
// hashes in their names and are cached for a year; index.html is never
// cached, so a new release is picked up on the next load. Unknown paths
// outside /api get index.html (the dashboard routes in the browser).
func (a *App) static(f *fiber.App) {
	f.Get("/*", func(c *fiber.Ctx) error {
		p := strings.TrimPrefix(path.Clean("/"+c.Params("*")), "/")
		if p == "" {
			p = "index.html"
		}
		b, err := readFile(a.cfg.Static, p)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid) {
			if strings.HasPrefix(p, "assets/") || path.Ext(p) != "" && p != "index.html" {
				return apiError(fiber.StatusNotFound, "not_found", "no such file: /"+p)
			}
			p = "index.html"
			b, err = readFile(a.cfg.Static, p)
		}
		if err != nil {
			return err
		}
		if strings.HasPrefix(p, "assets/") {
			c.Set(fiber.HeaderCacheControl, "public, max-age=31536000, immutable")
		} else {
			c.Set(fiber.HeaderCacheControl, "no-cache")
		}
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		c.Set(fiber.HeaderContentType, ct)
		c.Set("X-Content-Type-Options", "nosniff")
		if p == "index.html" {
			c.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
			c.Set("X-Frame-Options", "DENY")
		}
		return c.Send(b)
	})
}

// readFile reads a file of fsys; a directory counts as missing. Reading a
// directory fails in os.DirFS and embed.FS with an error that is neither
// ErrNotExist nor ErrInvalid, which would otherwise be a 500 for "/assets".
func readFile(fsys fs.FS, name string) ([]byte, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		if fi, serr := fs.Stat(fsys, name); serr == nil && fi.IsDir() {
			return nil, fmt.Errorf("%s is a directory: %w", name, fs.ErrNotExist)
		}
	}
	return b, err
}
