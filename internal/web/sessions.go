package web

import (
	"github.com/gofiber/fiber/v2"

	"github.com/watchroom/watchroom/internal/protocol"
)

// postLogout revokes the token of the request (SECURITY.md, "Sessions"):
// it is refused from now on, on REST and /ws, on every instance; sockets
// opened with it close within a second.
func (a *App) postLogout(c *fiber.Ctx) error {
	if err := a.cfg.Tokens.Revoke(c.UserContext(), claimsOf(c)); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// postRefresh returns a fresh token for the caller, with the role they
// have now: the dashboard calls it before its token expires and sends the
// new token on its open WebSocket as an auth message.
func (a *App) postRefresh(c *fiber.Ctx) error {
	cl := claimsOf(c)
	tok, exp, err := a.cfg.Tokens.Issue(c.UserContext(), cl.User, cl.Role)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"token": tok, "expires_at": protocol.FormatTime(exp), "user": cl.User, "role": cl.Role})
}
