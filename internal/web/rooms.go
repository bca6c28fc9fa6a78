package web

import "github.com/gofiber/fiber/v2"

// RoomService is what the rooms REST routes need.
type RoomService interface{}

func (a *App) roomRoutes(api fiber.Router) {}
