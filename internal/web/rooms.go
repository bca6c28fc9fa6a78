package web

import (
	"context"
	"errors"
	"net/url"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/watchroom/watchroom/internal/model"
)

// RoomService is what the rooms REST routes need.
type RoomService interface {
	// ListRooms returns every room with member and online counts, and
	// whether user is a member.
	ListRooms(ctx context.Context, user string) ([]model.RoomInfo, error)
	// Messages returns up to limit messages of room with ids below before
	// (0: the newest), oldest first; an unknown room is a not-found error
	// (model.ErrNotFound).
	Messages(ctx context.Context, room string, before int64, limit int) ([]model.ChatMessage, error)
}

// Page sizes of GET /api/rooms/{room}/messages, as the /ws history request.
const (
	defaultMessagesLimit = 50
	maxMessagesLimit     = 100
)

func (a *App) roomRoutes(api fiber.Router) {
	api.Get("/rooms", a.getRooms)
	api.Get("/rooms/:room/messages", a.getRoomMessages)
}

func (a *App) getRooms(c *fiber.Ctx) error {
	rooms, err := a.cfg.Rooms.ListRooms(c.UserContext(), claimsOf(c).User)
	if err != nil {
		return err
	}
	if rooms == nil {
		rooms = []model.RoomInfo{}
	}
	return c.JSON(fiber.Map{"rooms": rooms})
}

func (a *App) getRoomMessages(c *fiber.Ctx) error {
	// Fiber leaves path parameters escaped; a valid name needs no escaping,
	// but the error should show what the client meant.
	room, err := url.PathUnescape(c.Params("room"))
	if err != nil {
		room = c.Params("room")
	}
	if err := model.ValidRoomName(room); err != nil {
		return apiError(fiber.StatusBadRequest, "bad_request", "room name: "+err.Error())
	}
	var before int64
	if v := c.Query("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return apiError(fiber.StatusBadRequest, "bad_request", "before must be a message id (a non-negative integer)")
		}
		before = n
	}
	limit, err := intParam(c, "limit", defaultMessagesLimit, 1, maxMessagesLimit)
	if err != nil {
		return err
	}
	msgs, err := a.cfg.Rooms.Messages(c.UserContext(), room, before, limit)
	if errors.Is(err, model.ErrNotFound) {
		return apiError(fiber.StatusNotFound, "not_found", "no room "+strconv.Quote(room))
	}
	if err != nil {
		return err
	}
	if msgs == nil {
		msgs = []model.ChatMessage{}
	}
	return c.JSON(fiber.Map{"room": room, "messages": msgs})
}
