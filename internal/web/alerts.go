package web

import "github.com/gofiber/fiber/v2"

// AlertService is what the alerts and rules REST routes need.
type AlertService interface{}

func (a *App) alertRoutes(api fiber.Router) {}
