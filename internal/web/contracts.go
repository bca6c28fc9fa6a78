package web

import (
	"github.com/gofiber/fiber/v2"

	"github.com/watchroom/watchroom/docs"
)

// contractRoutes serves the API contracts, the embedded docs/*.yaml, so
// that what is served is what CI validates. Public, like the dashboard's
// files: they describe the API, hold no data, and a client generator
// should not need a login to read them.
func (a *App) contractRoutes(api fiber.Router) {
	api.Get("/asyncapi.yaml", serveYAML(docs.AsyncAPI))
	api.Get("/openapi.yaml", serveYAML(docs.OpenAPI))
}

func serveYAML(doc []byte) fiber.Handler {
	return func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, "application/yaml") // RFC 9512
		c.Set(fiber.HeaderCacheControl, "no-cache")
		return c.Send(doc)
	}
}
