package model

import "fmt"

// Role orders what a user may do: viewer < analyst < operator < admin.
type Role string

const (
	RoleViewer   Role = "viewer"
	RoleAnalyst  Role = "analyst"
	RoleOperator Role = "operator"
	RoleAdmin    Role = "admin"
)

var roleRank = map[Role]int{RoleViewer: 1, RoleAnalyst: 2, RoleOperator: 3, RoleAdmin: 4}

// ParseRole returns the role named s, or an error naming the valid roles.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if _, ok := roleRank[r]; !ok {
		return "", fmt.Errorf("unknown role %q (want viewer, analyst, operator or admin)", s)
	}
	return r, nil
}

// AtLeast reports whether r grants everything min grants.
func (r Role) AtLeast(min Role) bool {
	return roleRank[r] > 0 && roleRank[r] >= roleRank[min]
}
